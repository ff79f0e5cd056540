//! `cargo xtask cross`: release builds of `fashion-runtime` for the ARM
//! boards (`aarch64-unknown-linux-gnu`, `armv7-unknown-linux-gnueabihf`),
//! V4L2 support included, linked by zig (`cargo zigbuild`) against glibc
//! 2.17 so one binary runs on every board OS (Jetson Nano's Ubuntu 18.04
//! has glibc 2.27; Debian's cross gcc alone links against 2.35+). Also the
//! ARM builds `cargo xtask test` runs under qemu-user.
//!
//! What each target needs: zig compiles tract's ARM kernels and links
//! (cargo-zigbuild sets CC and the linker), `v4l`'s bindgen parses the
//! target's kernel headers from Debian's cross sysroot
//! (`/usr/<gcc-prefix>/include`, from the cross gcc packages), and qemu-user
//! runs the test binaries with that sysroot's loader and libc.

use crate::env;
use anyhow::{bail, Result};
use std::process::Command;

/// An ARM target and its Debian toolchain.
#[derive(Debug, Clone, Copy)]
pub struct CrossTarget {
    /// Rust target triple.
    pub triple: &'static str,
    /// Debian gcc prefix (also the sysroot under /usr).
    pub gcc_prefix: &'static str,
    /// qemu-user binary.
    pub qemu: &'static str,
}

/// The boards' targets.
pub const TARGETS: &[CrossTarget] = &[
    CrossTarget {
        triple: "aarch64-unknown-linux-gnu",
        gcc_prefix: "aarch64-linux-gnu",
        qemu: "qemu-aarch64",
    },
    CrossTarget {
        triple: "armv7-unknown-linux-gnueabihf",
        gcc_prefix: "arm-linux-gnueabihf",
        qemu: "qemu-arm",
    },
];

/// Arguments of `cargo xtask cross`.
#[derive(clap::Args)]
pub struct Args {
    /// Build only this target (repeatable; default: both).
    #[arg(long)]
    pub target: Vec<String>,
}

impl CrossTarget {
    /// Look a target up by triple.
    pub fn by_triple(triple: &str) -> Result<CrossTarget> {
        match TARGETS.iter().find(|t| t.triple == triple) {
            Some(t) => Ok(*t),
            None => bail!(
                "unknown cross target `{triple}` (known: {})",
                TARGETS
                    .iter()
                    .map(|t| t.triple)
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        }
    }

    /// The qemu-user binary on PATH: `qemu-aarch64` or, as Debian's
    /// `qemu-user-static` names it, `qemu-aarch64-static`.
    pub fn qemu_binary(&self) -> Option<String> {
        [self.qemu.to_string(), format!("{}-static", self.qemu)]
            .into_iter()
            .find(|q| env::succeeds(Command::new(q).arg("--version")))
    }
}

/// Build the runtime for the requested targets (release, zig-linked
/// against glibc [`BOARD_GLIBC`] so the binary runs on every board OS).
pub fn run(args: &Args) -> Result<()> {
    let targets: Vec<CrossTarget> = if args.target.is_empty() {
        TARGETS.to_vec()
    } else {
        args.target
            .iter()
            .map(|t| CrossTarget::by_triple(t))
            .collect::<Result<_>>()?
    };
    for t in &targets {
        let mut cmd = zigbuild();
        cmd.args([
            "zigbuild",
            "--release",
            "-p",
            "fashion-runtime",
            "--target",
            &t.zig_target(),
        ]);
        t.apply_zig_env(&mut cmd);
        env::run(&format!("cross {}", t.triple), &mut cmd)?;
        let bin = t.binary("release");
        let size = std::fs::metadata(&bin).map(|m| m.len()).unwrap_or(0);
        eprintln!(
            "xtask: [cross {}] {} ({:.1} MB)",
            t.triple,
            bin.display(),
            size as f64 / 1e6
        );
    }
    Ok(())
}

/// glibc that the board binaries link against (`cargo zigbuild --target
/// <triple>.<glibc>`): every firmware-config board profile builds against
/// it (`build_glibc`), so the ARM binaries the tests run link exactly as a
/// bundle's do. Debian's cross gcc alone would need glibc 2.35+.
pub const BOARD_GLIBC: &str = "2.17";

impl CrossTarget {
    /// `<triple>.<glibc>`: the target `cargo zigbuild` builds board binaries for.
    pub fn zig_target(&self) -> String {
        format!("{}.{BOARD_GLIBC}", self.triple)
    }

    /// Set the variables a `cargo zigbuild` build and qemu run need on `cmd`:
    /// zig compiles and links (cargo-zigbuild sets CC and the linker), `v4l`'s
    /// bindgen gets the Debian sysroot's kernel headers through the generic
    /// BINDGEN_EXTRA_CLANG_ARGS (cargo-zigbuild appends zig's own flags to it
    /// for the target), and test binaries run under qemu-user.
    pub fn apply_zig_env(&self, cmd: &mut Command) {
        let upper = self.triple.replace('-', "_").to_uppercase();
        let sysroot = format!("/usr/{}", self.gcc_prefix);
        let qemu = self.qemu_binary().unwrap_or_else(|| self.qemu.to_string());
        let runner = format!("{qemu} -L {sysroot}");
        cmd.env(format!("CARGO_TARGET_{upper}_RUNNER"), &runner);
        cmd.env("FASHION_RUNTIME_TEST_RUNNER", &runner);
        cmd.env(
            "BINDGEN_EXTRA_CLANG_ARGS",
            format!("--sysroot={sysroot} -I{sysroot}/include"),
        );
        if self.triple.starts_with("armv7") {
            // Under 32-bit qemu tract cannot detect NEON itself.
            cmd.env("TRACT_CPU_ARM32_NEON", "true");
        }
    }

    /// Where a `cargo zigbuild --profile <profile>` build leaves the runtime.
    pub fn binary(&self, profile: &str) -> std::path::PathBuf {
        self.binary_named(profile, "fashion-runtime")
    }

    /// Where a `cargo zigbuild --profile <profile>` build leaves binary `name`.
    pub fn binary_named(&self, profile: &str, name: &str) -> std::path::PathBuf {
        env::target_dir().join(self.triple).join(profile).join(name)
    }
}

/// `cargo-zigbuild` with the project environment (the venv's `bin`, where
/// set-up installs it and zig, first on PATH).
fn zigbuild() -> Command {
    env::command("cargo-zigbuild")
}

/// Build (`run == false`) or run the runtime's tests, and those of
/// `tract-requant` (its graph passes, with NEON code paths), as aarch64
/// binaries under qemu-aarch64, linked by zig against glibc [`BOARD_GLIBC`], in the
/// `qemu` profile. Building also leaves the aarch64 `fashion-runtime`
/// binary, which firmware-config's bundle tests pack; returns its path.
pub fn test_under_qemu(run: bool) -> Result<std::path::PathBuf> {
    let t = CrossTarget::by_triple("aarch64-unknown-linux-gnu")?;
    if t.qemu_binary().is_none() {
        bail!("qemu-aarch64(-static) missing: run `cargo xtask setup`");
    }
    let mut cmd = zigbuild();
    cmd.args([
        "test",
        "-p",
        "fashion-runtime",
        "-p",
        "tract-requant",
        "--target",
        &t.zig_target(),
        "--profile",
        "qemu",
    ]);
    if !run {
        cmd.arg("--no-run");
    }
    t.apply_zig_env(&mut cmd);
    let step = if run {
        "runtime and tract-requant tests under qemu-aarch64"
    } else {
        "build the runtime and its tests for aarch64 (zig, glibc 2.17)"
    };
    env::run(step, &mut cmd)?;
    Ok(t.binary("qemu"))
}

/// Build `export-bench` (the export benchmark's tract and table-search
/// runner) for aarch64 (zig, glibc [`BOARD_GLIBC`], `qemu` profile) for
/// `cargo xtask bench export-qemu`; returns its path.
pub fn export_bench_for_aarch64() -> Result<std::path::PathBuf> {
    let t = CrossTarget::by_triple("aarch64-unknown-linux-gnu")?;
    let mut cmd = zigbuild();
    cmd.args([
        "zigbuild",
        "-p",
        "export",
        "--bin",
        "export-bench",
        "--target",
        &t.zig_target(),
        "--profile",
        "qemu",
    ]);
    t.apply_zig_env(&mut cmd);
    env::run("build export-bench for aarch64 (zig, glibc 2.17)", &mut cmd)?;
    Ok(t.binary_named("qemu", "export-bench"))
}

/// Build the armv7 `fashion-runtime` (zig, glibc [`BOARD_GLIBC`]) in the
/// quick-to-build `board-check` profile for firmware-config's bundle tests
/// (they check its ELF header and glibc needs, not its speed); returns its
/// path.
pub fn armv7_for_bundle_tests() -> Result<std::path::PathBuf> {
    let t = CrossTarget::by_triple("armv7-unknown-linux-gnueabihf")?;
    let mut cmd = zigbuild();
    cmd.args([
        "zigbuild",
        "-p",
        "fashion-runtime",
        "--target",
        &t.zig_target(),
        "--profile",
        "board-check",
    ]);
    t.apply_zig_env(&mut cmd);
    env::run("build the runtime for armv7 (zig, glibc 2.17)", &mut cmd)?;
    Ok(t.binary("board-check"))
}
