//! `cargo xtask test`: set-up, then format check, clippy with `-D warnings`
//! and every test of every crate (the libtorch ones included).

use crate::{cross, env, fuzz, setup};
use anyhow::Result;

/// Arguments of `cargo xtask test`.
#[derive(clap::Args)]
pub struct Args {
    /// Skip the set-up step (when it ran already).
    #[arg(long)]
    pub no_setup: bool,
    /// Skip fmt and clippy (tests only).
    #[arg(long)]
    pub no_lint: bool,
    /// Skip the runtime's tests as aarch64 binaries under qemu-aarch64.
    #[arg(long)]
    pub no_qemu: bool,
    /// Seconds each fuzz target runs after the tests (0: no fuzzing).
    #[arg(long, default_value_t = 10)]
    pub fuzz_seconds: u64,
}

/// Run every check.
pub fn run(args: &Args) -> Result<()> {
    if !args.no_setup {
        setup::run(&setup::Args {
            no_apt: false,
            no_venv: false,
        })?;
    }
    if !args.no_lint {
        env::run("fmt", env::cargo().args(["fmt", "--all", "--", "--check"]))?;
        env::run(
            "clippy",
            env::cargo().args([
                "clippy",
                "--workspace",
                "--all-targets",
                "--",
                "-D",
                "warnings",
            ]),
        )?;
    }
    let mut test = env::cargo();
    test.args(["test", "--workspace"]);
    // set-up installed mosquitto, sshd and chromium: tests that need them
    // must fail, not skip, when they are missing.
    test.env("FASHION_REQUIRE_SERVICES", "1");
    // firmware-config's bundle tests get one aarch64 and one armv7 runtime,
    // cross-built here once (cached) instead of inside the tests.
    if env::workspace_has("firmware-config")? {
        for (var, board) in [
            ("FIRMWARE_RUNTIME_AARCH64", "rpi4"),
            ("FIRMWARE_RUNTIME_ARMV7", "rpi-zero2w-32"),
        ] {
            test.env(var, firmware_runtime(board)?);
        }
    } else {
        eprintln!("xtask: firmware-config is not a workspace member yet: no cross-built runtimes");
    }
    env::run("test", &mut test)?;
    let qemu = !args.no_qemu && env::workspace_has("fashion-runtime")?;
    if qemu {
        cross::test_under_qemu()?;
    } else if !args.no_qemu {
        eprintln!("xtask: fashion-runtime is not a workspace member yet: no qemu tests");
    }
    if args.fuzz_seconds > 0 {
        fuzz::run(&fuzz::Args {
            seconds: args.fuzz_seconds,
            targets: Vec::new(),
            record: false,
        })?;
    }
    eprintln!("xtask: all checks passed");
    Ok(())
}

/// Cross-build the runtime for a board with `firmware-config build-runtime`
/// (`cargo zigbuild`, old glibc; cached per triple+glibc under
/// `target/firmware-cross`) and return the binary's path.
fn firmware_runtime(board: &str) -> Result<String> {
    let started = std::time::Instant::now();
    let mut cmd = env::cargo();
    cmd.args([
        "run",
        "-q",
        "-p",
        "firmware-config",
        "--",
        "build-runtime",
        "--board",
        board,
        "--cache",
    ])
    .arg(env::root().join("target").join("firmware-cross"))
    .env("FASHION_WORKSPACE", env::root())
    .stderr(std::process::Stdio::inherit());
    eprintln!("xtask: [firmware runtime {board}] {cmd:?}");
    let out = cmd.output()?;
    anyhow::ensure!(
        out.status.success(),
        "step `firmware runtime {board}` failed ({})",
        out.status
    );
    let path = String::from_utf8_lossy(&out.stdout).trim().to_string();
    eprintln!(
        "xtask: [firmware runtime {board}] {path} in {:.0} s",
        started.elapsed().as_secs_f64()
    );
    Ok(path)
}
