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
    // The runtime for the boards, linked by zig against glibc 2.17 as
    // bundles are: the aarch64 build (with the runtime's tests, run under
    // qemu below) and an armv7 one. firmware-config's bundle tests pack both.
    let qemu = !args.no_qemu;
    let mut boards = None;
    if qemu {
        let aarch64 = cross::test_under_qemu(false)?;
        let armv7 = cross::armv7_for_bundle_tests()?;
        boards = Some((aarch64, armv7));
    }
    let mut test = env::cargo();
    // Every failing test in one run (CI shows them all, not just the first
    // failing test binary's).
    test.args(["test", "--workspace", "--no-fail-fast"]);
    // set-up installed mosquitto, sshd and chromium: tests that need them
    // must fail, not skip, when they are missing.
    test.env("FASHION_REQUIRE_SERVICES", "1");
    match &boards {
        Some((aarch64, armv7)) => {
            test.env("FIRMWARE_RUNTIME_AARCH64", aarch64);
            test.env("FIRMWARE_RUNTIME_ARMV7", armv7);
        }
        None => {
            // No ARM runtimes: the bundle test says it skips (instead of
            // cross-building release runtimes itself, ~20 min).
            eprintln!(
                "xtask: --no-qemu: no ARM runtimes, firmware-config's bundle test is skipped"
            );
            test.env("FIRMWARE_NO_ARM_RUNTIMES", "1");
        }
    }
    env::run("test", &mut test)?;
    if qemu {
        cross::test_under_qemu(true)?;
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
