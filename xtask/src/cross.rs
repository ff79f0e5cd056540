//! `cargo xtask cross`: release builds of `fashion-runtime` for the ARM
//! boards (`aarch64-unknown-linux-gnu`, `armv7-unknown-linux-gnueabihf`)
//! with Debian's cross gcc, V4L2 support included. Also the environment
//! that lets cargo build and run the runtime's tests as ARM binaries under
//! qemu-user (used by `cargo xtask test`).
//!
//! What each target needs: tract assembles its ARM kernels in its build
//! script (`CC_<target>`), the final link uses the cross gcc
//! (`CARGO_TARGET_<TARGET>_LINKER`), and `v4l`'s bindgen parses the
//! target's kernel headers (`BINDGEN_EXTRA_CLANG_ARGS_<target>` with the
//! sysroot).

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

    /// Set the compiler, linker, bindgen and qemu-runner variables on `cmd`.
    pub fn apply_env(&self, cmd: &mut Command) {
        let under = self.triple.replace('-', "_");
        let upper = under.to_uppercase();
        let gcc = format!("{}-gcc", self.gcc_prefix);
        let sysroot = format!("/usr/{}", self.gcc_prefix);
        cmd.env(format!("CC_{under}"), &gcc);
        cmd.env(format!("AR_{under}"), format!("{}-ar", self.gcc_prefix));
        cmd.env(format!("CARGO_TARGET_{upper}_LINKER"), &gcc);
        let qemu = self.qemu_binary().unwrap_or_else(|| self.qemu.to_string());
        cmd.env(
            format!("CARGO_TARGET_{upper}_RUNNER"),
            format!("{qemu} -L {sysroot}"),
        );
        let clang_args = format!("--sysroot={sysroot} -I{sysroot}/include");
        cmd.env(format!("BINDGEN_EXTRA_CLANG_ARGS_{under}"), &clang_args);
        cmd.env(
            format!("BINDGEN_EXTRA_CLANG_ARGS_{}", self.triple),
            &clang_args,
        );
        // Tests that start the runtime binary start it through qemu too.
        cmd.env(
            "FASHION_RUNTIME_TEST_RUNNER",
            format!("{qemu} -L {sysroot}"),
        );
        if self.triple.starts_with("armv7") {
            // Under 32-bit qemu tract cannot detect NEON itself.
            cmd.env("TRACT_CPU_ARM32_NEON", "true");
        }
    }

    /// The qemu-user binary on PATH: `qemu-aarch64` or, as Debian's
    /// `qemu-user-static` names it, `qemu-aarch64-static`.
    pub fn qemu_binary(&self) -> Option<String> {
        [self.qemu.to_string(), format!("{}-static", self.qemu)]
            .into_iter()
            .find(|q| env::succeeds(Command::new(q).arg("--version")))
    }

    /// Whether the cross gcc is installed.
    pub fn has_toolchain(&self) -> bool {
        env::succeeds(Command::new(format!("{}-gcc", self.gcc_prefix)).arg("--version"))
    }
}

/// Build the runtime for the requested targets (release).
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
        if !t.has_toolchain() {
            bail!(
                "{}-gcc not found: run `cargo xtask setup` (installs gcc-aarch64-linux-gnu, gcc-arm-linux-gnueabihf, qemu-user-static, libclang-dev)",
                t.gcc_prefix
            );
        }
        let mut cmd = env::cargo();
        cmd.args([
            "build",
            "--release",
            "-p",
            "fashion-runtime",
            "--features",
            "v4l",
            "--target",
            t.triple,
        ]);
        t.apply_env(&mut cmd);
        env::run(&format!("cross {}", t.triple), &mut cmd)?;
        let target_dir = std::env::var_os("CARGO_TARGET_DIR")
            .map(std::path::PathBuf::from)
            .unwrap_or_else(|| env::root().join("target"));
        let bin = target_dir
            .join(t.triple)
            .join("release")
            .join("fashion-runtime");
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

/// `cargo test -p fashion-runtime` as aarch64 binaries under qemu-aarch64.
pub fn test_under_qemu() -> Result<()> {
    let t = CrossTarget::by_triple("aarch64-unknown-linux-gnu")?;
    if !t.has_toolchain() || t.qemu_binary().is_none() {
        bail!("aarch64 cross gcc or qemu-aarch64(-static) missing: run `cargo xtask setup`");
    }
    let mut cmd = env::cargo();
    cmd.args([
        "test",
        "-p",
        "fashion-runtime",
        "--target",
        t.triple,
        "--profile",
        "qemu",
    ]);
    t.apply_env(&mut cmd);
    env::run("runtime tests under qemu-aarch64", &mut cmd)
}
