//! `cargo xtask`: project automation written in Rust (set-up, tests, cross
//! builds, benches, demo). Each subcommand prints what it does and fails with
//! a message that says which step broke.

mod bench_export;
mod bench_export_qemu;
mod bench_runtime;
mod bench_trainer;
mod benchmarks_md;
mod cross;
mod demo;
mod env;
mod fuzz;
mod gpu_check;
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
    /// Run the main job on the built-in default: live tagging of the demo
    /// clip (or the camera) with the shipped demo model, preview on
    /// 127.0.0.1:8080.
    Demo(demo::Args),
    /// Remake assets/demo/ (synthetic data, CPU training, export, int8,
    /// gallery table, clip).
    DemoAssets(demo::AssetsArgs),
    /// Release builds of fashion-runtime for aarch64 and armv7 (with V4L2).
    Cross(cross::Args),
    /// Build the CUDA check folder `gpu-check/` (trainer + run.sh).
    GpuCheck(gpu_check::Args),
    /// Build the libFuzzer targets of fuzz/ and run each for N seconds.
    Fuzz(fuzz::Args),
    /// Benchmarks (results go into BENCHMARKS.md). Without a name: trainer,
    /// export, export-qemu and runtime in turn, then the summary table.
    Bench {
        /// Which benchmark (default: all of them).
        #[command(subcommand)]
        which: Option<Bench>,
    },
}

#[derive(Subcommand)]
enum Bench {
    /// fashion-runtime (tract) against onnxruntime on the same edge int8
    /// model, 1 and 2 threads; peak RSS with a 10,000-item table.
    Runtime(bench_runtime::Args),
    /// One training step of tiny and edge: tch against PyTorch eager.
    Trainer(bench_trainer::Args),
    /// Exported edge graph: tract fp32/int8 vs onnxruntime fp32/int8, 1 and
    /// 2 threads; shop-table search vs FAISS.
    Export(bench_export::Args),
    /// The export bench's tract runs and table search as aarch64 binaries
    /// under qemu, compared with x86-64 and onnxruntime (correctness only).
    ExportQemu(bench_export_qemu::Args),
    /// Only rebuild the summary table from the rows the sections record.
    Summary,
}

/// `cargo xtask bench`: every bench with its default options, in turn (each
/// rewrites its section and the summary), so BENCHMARKS.md is regenerated.
fn bench_all() -> anyhow::Result<()> {
    let started = std::time::Instant::now();
    bench_trainer::run(&parse_args::<bench_trainer::Args>("trainer")?)?;
    bench_export::run(&parse_args::<bench_export::Args>("export")?)?;
    bench_export_qemu::run(&parse_args::<bench_export_qemu::Args>("export-qemu")?)?;
    bench_runtime::run(&parse_args::<bench_runtime::Args>("runtime")?)?;
    let n = benchmarks_md::write_summary()?;
    eprintln!(
        "xtask: [bench] all benches done in {:.0} s; summary of {n} rows in BENCHMARKS.md",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// A bench's arguments at their defaults.
fn parse_args<A: clap::Args + clap::FromArgMatches>(name: &'static str) -> anyhow::Result<A> {
    let cmd = A::augment_args(clap::Command::new(name));
    let m = cmd.try_get_matches_from([name])?;
    Ok(A::from_arg_matches(&m)?)
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Setup(a) => setup::run(&a),
        Command::Test(a) => test::run(&a),
        Command::Demo(a) => demo::run(&a),
        Command::DemoAssets(a) => demo::assets(&a),
        Command::Cross(a) => cross::run(&a),
        Command::Bench { which } => match which {
            Some(Bench::Runtime(a)) => bench_runtime::run(&a),
            Some(Bench::Trainer(a)) => bench_trainer::run(&a),
            Some(Bench::Export(a)) => bench_export::run(&a),
            Some(Bench::ExportQemu(a)) => bench_export_qemu::run(&a),
            Some(Bench::Summary) => benchmarks_md::write_summary().map(|n| {
                eprintln!("xtask: [bench summary] {n} rows");
            }),
            None => bench_all(),
        },
        Command::GpuCheck(a) => gpu_check::run(&a),
        Command::Fuzz(a) => fuzz::run(&a),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask: error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
