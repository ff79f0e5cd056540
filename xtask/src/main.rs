//! `cargo xtask`: project automation written in Rust (set-up, tests, cross
//! builds, benches, demo). Each subcommand prints what it does and fails with
//! a message that says which step broke.

mod demo;
mod env;
mod setup;
mod test;

use clap::{Parser, Subcommand};

/// FashionNet project automation.
#[derive(Parser)]
#[command(name = "cargo xtask", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Install what builds and tests need (idempotent): .venv with torch,
    /// ARM rustup targets, Debian packages.
    Setup(setup::Args),
    /// Run set-up, then fmt check, clippy -D warnings and every test.
    Test(test::Args),
    /// Run the main job on the built-in default (the demo).
    Demo(demo::Args),
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Setup(a) => setup::run(&a),
        Command::Test(a) => test::run(&a),
        Command::Demo(a) => demo::run(&a),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask: error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
