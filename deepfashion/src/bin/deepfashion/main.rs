//! `deepfashion`: inspect, score and synthesize DeepFashion datasets.

mod clip;
mod dataset_args;
mod inspect;
mod score;
mod synth;

use clap::{Parser, Subcommand};

/// DeepFashion data tool: read the released benchmark folders, score
/// predictions with the paper's metrics, and generate a synthetic dataset in
/// the released layout.
#[derive(Parser)]
#[command(name = "deepfashion", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Summarize a benchmark folder (images, splits, categories, attributes, landmarks).
    Inspect(inspect::Args),
    /// Score a predictions file (JSON lines) against a benchmark split.
    Score(score::Args),
    /// Generate a synthetic DeepFashion dataset in the released layout.
    Synth(synth::Args),
    /// Write an MJPEG clip of a split's images, cropped like the trainer crops.
    Clip(clip::Args),
}

fn main() -> std::process::ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Inspect(a) => inspect::run(a),
        Command::Score(a) => score::run(a),
        Command::Synth(a) => synth::run(a),
        Command::Clip(a) => clip::run(a),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
