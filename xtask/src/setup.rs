//! `cargo xtask setup`: everything builds and tests need, each step skipped
//! when it is already done.

use crate::env;
use anyhow::{Context, Result};
use std::process::Command;

/// The PyTorch version that `tch = "=0.24.0"` links against.
pub const TORCH_VERSION: &str = "2.11.0";

/// Python packages in `.venv` besides torch (benchmark peers and checkers).
/// `ziglang` is the zig that `cargo zigbuild` links old-glibc board binaries with.
const PIP_EXTRAS: &[&str] = &["numpy", "onnx", "onnxruntime", "safetensors", "ziglang"];

/// Debian packages the tests need: ARM linkers and emulators, the MQTT
/// broker, an SSH server and a headless browser.
pub const DEBIAN_PACKAGES: &[&str] = &[
    "gcc-aarch64-linux-gnu",
    "gcc-arm-linux-gnueabihf",
    "libc6-dev-arm64-cross",
    "libc6-dev-armhf-cross",
    "qemu-user-static",
    "mosquitto",
    "mosquitto-clients",
    "openssh-server",
    "openssh-client",
    "systemd",
    "chromium",
    "libclang-dev",
];

/// ARM targets the runtime cross-compiles to.
pub const RUST_TARGETS: &[&str] = &["aarch64-unknown-linux-gnu", "armv7-unknown-linux-gnueabihf"];

/// Arguments of `cargo xtask setup`.
#[derive(clap::Args)]
pub struct Args {
    /// Skip the Debian packages (when you installed them another way).
    #[arg(long)]
    pub no_apt: bool,
    /// Skip the Python virtualenv.
    #[arg(long)]
    pub no_venv: bool,
}

/// Run every set-up step.
pub fn run(args: &Args) -> Result<()> {
    if !args.no_venv {
        venv().context("setting up the Python virtualenv (.venv)")?;
    }
    rust_targets().context("adding the ARM rustup targets")?;
    if !args.no_apt {
        apt().context("installing Debian packages")?;
    }
    cargo_zigbuild().context("installing cargo-zigbuild")?;
    eprintln!("xtask: set-up complete");
    Ok(())
}

fn venv() -> Result<()> {
    let py = env::venv_python();
    let check = format!(
        "import torch, sys; sys.exit(0 if torch.__version__.split('+')[0] == '{TORCH_VERSION}' else 1)"
    );
    let torch_ok = py.exists() && env::succeeds(Command::new(&py).args(["-c", &check]));
    let extras_check = format!("import {}", PIP_EXTRAS.join(", "));
    let extras_ok = py.exists() && env::succeeds(Command::new(&py).args(["-c", &extras_check]));
    if torch_ok && extras_ok {
        eprintln!("xtask: [venv] torch {TORCH_VERSION} and extras present, skipped");
        return Ok(());
    }
    if !py.exists() {
        env::run(
            "venv",
            Command::new("python3")
                .arg("-m")
                .arg("venv")
                .arg(env::venv()),
        )?;
    }
    if !torch_ok {
        check_free_space(&env::root(), VENV_NEEDS_GIB)?;
    }
    let mut pip = pip_install();
    if !torch_ok {
        pip.arg(format!("torch=={TORCH_VERSION}"));
    }
    pip.args(PIP_EXTRAS);
    env::run("venv: pip install (torch is about 4.7 GB)", &mut pip)
}

/// Free space the torch install needs: the installed venv is about 5.3 GB and
/// pip unpacks the wheels beside it.
const VENV_NEEDS_GIB: u64 = 7;

/// Fail early, naming the folder and both sizes, when the disk holding `dir`
/// has less than `gib` GiB free (pip would otherwise die half-way with ENOSPC).
fn check_free_space(dir: &std::path::Path, gib: u64) -> Result<()> {
    let out = Command::new("df")
        .args(["-Pk"])
        .arg(dir)
        .output()
        .context("running df")?;
    let text = String::from_utf8_lossy(&out.stdout);
    // POSIX format: header, then `fs blocks used available capacity mount`.
    let avail_kib: Option<u64> = text
        .lines()
        .nth(1)
        .and_then(|l| l.split_whitespace().nth(3))
        .and_then(|v| v.parse().ok());
    match avail_kib {
        Some(kib) if kib < gib * 1024 * 1024 => anyhow::bail!(
            "only {:.1} GiB free on the disk holding {}; installing torch {TORCH_VERSION} into .venv needs about {gib} GiB (free space, e.g. old target directories, and rerun)",
            kib as f64 / (1024.0 * 1024.0),
            dir.display()
        ),
        Some(kib) => {
            eprintln!(
                "xtask: [venv] {:.1} GiB free on the disk holding {}",
                kib as f64 / (1024.0 * 1024.0),
                dir.display()
            );
            Ok(())
        }
        None => {
            eprintln!("xtask: [venv] could not read free space from df, going on");
            Ok(())
        }
    }
}

fn rust_targets() -> Result<()> {
    let out = Command::new("rustup")
        .args(["target", "list", "--installed"])
        .output()
        .context("running rustup (is the Rust toolchain installed with rustup?)")?;
    let installed = String::from_utf8_lossy(&out.stdout);
    let missing: Vec<&str> = RUST_TARGETS
        .iter()
        .copied()
        .filter(|t| !installed.lines().any(|l| l.trim() == *t))
        .collect();
    if missing.is_empty() {
        eprintln!("xtask: [rustup] ARM targets present, skipped");
        return Ok(());
    }
    env::run(
        "rustup target add",
        Command::new("rustup")
            .arg("target")
            .arg("add")
            .args(&missing),
    )
}

fn apt() -> Result<()> {
    let missing: Vec<&str> = DEBIAN_PACKAGES
        .iter()
        .copied()
        .filter(|p| {
            let out = Command::new("dpkg-query")
                .args(["-W", "-f=${Status}", p])
                .output();
            !matches!(out, Ok(o) if String::from_utf8_lossy(&o.stdout).contains("install ok installed"))
        })
        .collect();
    if missing.is_empty() {
        eprintln!("xtask: [apt] Debian packages present, skipped");
        return Ok(());
    }
    let sudo = !is_root();
    let apt = |args: &[&str]| {
        let mut c = if sudo {
            let mut c = Command::new("sudo");
            c.arg("apt-get");
            c
        } else {
            Command::new("apt-get")
        };
        c.env("DEBIAN_FRONTEND", "noninteractive")
            .args(["-o", "DPkg::Lock::Timeout=600"])
            .args(args);
        c
    };
    env::run("apt-get update", &mut apt(&["update", "-qq"]))?;
    let mut install = apt(&["install", "-y", "-qq", "--no-install-recommends"]);
    install.args(&missing);
    env::run(
        &format!("apt-get install {}", missing.join(" ")),
        &mut install,
    )
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

/// `cargo zigbuild` cross-builds the board runtimes against an old glibc
/// (firmware-config bundles, and the ARM builds `cargo xtask test` runs).
/// PyPI ships it prebuilt: installed into the venv beside zig (`ziglang`)
/// in seconds, where `cargo install` would compile it for minutes.
fn cargo_zigbuild() -> Result<()> {
    if env::succeeds(env::command("cargo-zigbuild").arg("--version")) {
        eprintln!("xtask: [cargo-zigbuild] present, skipped");
        return Ok(());
    }
    env::run(
        "pip install cargo-zigbuild",
        pip_install().arg("cargo-zigbuild"),
    )
}

/// `pip install` into the venv, without a wheel cache: it would keep a
/// second copy of torch's ~4 GB of wheels on disk, which is what ran a CI
/// machine out of space.
fn pip_install() -> Command {
    let mut pip = Command::new(env::venv_python());
    pip.args([
        "-m",
        "pip",
        "install",
        "--quiet",
        "--no-cache-dir",
        "--disable-pip-version-check",
    ]);
    pip
}
