//! `cargo xtask test`: set-up, then format check, clippy with `-D warnings`
//! and every test of every crate (the libtorch ones included).

use crate::{cross, env, setup};
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
    env::run("test", env::cargo().args(["test", "--workspace"]))?;
    if !args.no_qemu {
        cross::test_under_qemu()?;
    }
    eprintln!("xtask: all checks passed");
    Ok(())
}
