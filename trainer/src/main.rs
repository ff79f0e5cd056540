//! `trainer` command line: train, evaluate and predict with FashionNet
//! (see `trainer/README.md`).

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use deepfashion::annotations::Benchmark;
use deepfashion::contract::ModelConfig;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use trainer::config::TrainConfig;
use trainer::train::{Length, TrainOptions};

/// FashionNet training and evaluation with libtorch.
#[derive(Parser)]
#[command(name = "trainer", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Train a model; checkpoints, metrics.jsonl and curves.png go to --out.
    Train(TrainArgs),
    /// Score a checkpoint on a benchmark split (DESIGN.md section 7 metrics).
    Eval(EvalArgs),
    /// Write predictions (JSON lines, landmarks in original pixels).
    Predict(PredictArgs),
    /// Report libtorch's view of CUDA (availability, device count).
    Info,
    /// Time training steps on random data (one JSON line; used by
    /// `cargo xtask bench trainer` and gpu-check).
    BenchStep(BenchArgs),
}

#[derive(clap::Args)]
struct BenchArgs {
    /// Model config: a preset or a JSON file.
    #[arg(long, default_value = "tiny")]
    config: String,
    /// Batch size.
    #[arg(long, default_value_t = 32)]
    batch: usize,
    /// Timed steps.
    #[arg(long, default_value_t = 20)]
    steps: usize,
    /// Untimed warm-up steps.
    #[arg(long, default_value_t = 3)]
    warmup: usize,
    /// Threads.
    #[arg(long)]
    threads: Option<usize>,
    /// cpu, cuda, cuda:N or auto.
    #[arg(long, default_value = "cpu")]
    device: String,
    /// Mixed precision on CUDA.
    #[arg(long)]
    amp: bool,
}

#[derive(clap::Args)]
struct TrainArgs {
    /// DeepFashion (or synthetic) root folder.
    #[arg(long)]
    data: PathBuf,
    /// Model config: a preset (paper, edge, tiny) or a JSON file.
    #[arg(long, default_value = "tiny")]
    config: String,
    /// Training config JSON (defaults per preset otherwise).
    #[arg(long)]
    train_config: Option<PathBuf>,
    /// Run folder.
    #[arg(long)]
    out: PathBuf,
    /// cpu, cuda, cuda:N or auto.
    #[arg(long, default_value = "auto")]
    device: String,
    /// Optimizer steps (default: per preset).
    #[arg(long, conflicts_with = "epochs")]
    steps: Option<u64>,
    /// Passes over the Category & Attribute training split.
    #[arg(long)]
    epochs: Option<f64>,
    /// Continue from the newest checkpoint in --out.
    #[arg(long)]
    resume: bool,
    /// Seed.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// libtorch and decoder threads (default: available cores).
    #[arg(long)]
    threads: Option<usize>,
    /// Initialize from a torchvision VGG-16 state dict (safetensors).
    #[arg(long)]
    vgg16: Option<PathBuf>,
    /// Skip the test-split evaluation and baselines at the end.
    #[arg(long)]
    no_eval: bool,
    /// Hide the progress bar.
    #[arg(long)]
    quiet: bool,
}

/// What `eval` and `predict` share: a checkpoint run over one split.
#[derive(clap::Args)]
struct CheckpointRunArgs {
    /// Checkpoint (.safetensors).
    #[arg(long)]
    checkpoint: PathBuf,
    /// DeepFashion (or synthetic) root folder.
    #[arg(long)]
    data: PathBuf,
    /// Benchmark: category-attribute, fine, inshop, consumer2shop, landmarks.
    #[arg(long, default_value = "category-attribute")]
    benchmark: String,
    /// Split (test, val, query, ...).
    #[arg(long, default_value = "test")]
    split: String,
    /// cpu, cuda, cuda:N or auto.
    #[arg(long, default_value = "auto")]
    device: String,
    /// Threads.
    #[arg(long)]
    threads: Option<usize>,
}

#[derive(clap::Args)]
struct EvalArgs {
    #[command(flatten)]
    run: CheckpointRunArgs,
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
}

#[derive(clap::Args)]
struct PredictArgs {
    #[command(flatten)]
    run: CheckpointRunArgs,
    /// Output JSON-lines file.
    #[arg(long)]
    out: PathBuf,
}

fn threads(t: Option<usize>) -> usize {
    t.unwrap_or_else(|| {
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
    })
}

fn model_config(s: &str) -> Result<ModelConfig> {
    match ModelConfig::preset(s) {
        Ok(c) => Ok(c),
        Err(_) if s.ends_with(".json") || std::path::Path::new(s).exists() => {
            let text =
                std::fs::read_to_string(s).with_context(|| format!("reading model config {s}"))?;
            ModelConfig::from_json(&text).with_context(|| format!("model config {s}"))
        }
        Err(e) => Err(e.into()),
    }
}

fn benchmark(s: &str) -> Result<Benchmark> {
    s.parse::<Benchmark>().map_err(Into::into)
}

fn main() -> std::process::ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    match run(Cli::parse()) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("trainer: error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::BenchStep(a) => {
            tch::set_num_threads(threads(a.threads) as i32);
            let cfg = model_config(&a.config)?;
            let device = trainer::device::parse_device(&a.device)?;
            let r = trainer::bench::bench_step(&cfg, a.batch, a.steps, a.warmup, device, a.amp)?;
            println!("{}", serde_json::to_string(&r)?);
            Ok(())
        }
        Command::Info => {
            println!("{}", trainer::device::info());
            Ok(())
        }
        Command::Train(a) => {
            let model = model_config(&a.config)?;
            let train = match &a.train_config {
                Some(p) => {
                    let text = std::fs::read_to_string(p)
                        .with_context(|| format!("reading {}", p.display()))?;
                    serde_json::from_str::<TrainConfig>(&text)
                        .with_context(|| format!("train config {}", p.display()))?
                }
                None => TrainConfig::for_model(&model.name),
            };
            let length = match (a.steps, a.epochs) {
                (Some(s), _) => Length::Steps(s),
                (None, Some(e)) => Length::Epochs(e),
                (None, None) => Length::Default,
            };
            let opts = TrainOptions {
                data: a.data.clone(),
                model,
                train,
                out: a.out.clone(),
                device: trainer::device::parse_device(&a.device)?,
                length,
                resume: a.resume,
                seed: a.seed,
                threads: threads(a.threads),
                vgg16: a.vgg16.clone(),
                progress: !a.quiet,
            };
            let stop = Arc::new(AtomicBool::new(false));
            let flag = stop.clone();
            ctrlc::set_handler(move || {
                if flag.swap(true, Ordering::SeqCst) {
                    eprintln!("trainer: second interrupt, exiting without a checkpoint");
                    std::process::exit(130);
                }
                eprintln!(
                    "trainer: interrupt: finishing the current step and writing a checkpoint"
                );
            })
            .context("installing the SIGINT handler")?;
            let out = trainer::train::train(&opts, stop)?;
            println!(
                "trained {}/{} steps; checkpoint {}",
                out.step,
                out.total_steps,
                out.checkpoint.display()
            );
            println!(
                "loss (Category & Attribute batches): first 10% {:.4}, last 10% {:.4}",
                out.loss_first_last.0, out.loss_first_last.1
            );
            if out.interrupted {
                println!("interrupted; continue with --resume");
                return Ok(());
            }
            if !a.no_eval {
                let summary = trainer::evaluate::summarize_run(
                    &out.checkpoint,
                    &a.data,
                    opts.device,
                    opts.threads,
                )?;
                println!("{}", summary.render());
                let path = a.out.join("summary.json");
                trainer::checkpoint::write_atomic(
                    &path,
                    serde_json::to_string_pretty(&summary)?.as_bytes(),
                )?;
            }
            Ok(())
        }
        Command::Eval(a) => {
            let r = &a.run;
            let device = trainer::device::parse_device(&r.device)?;
            tch::set_num_threads(threads(r.threads) as i32);
            let report = trainer::evaluate::eval(
                &r.checkpoint,
                &r.data,
                benchmark(&r.benchmark)?,
                &r.split,
                device,
                threads(r.threads),
            )?;
            if a.json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                println!("{}", trainer::evaluate::render_scores(&report));
            }
            Ok(())
        }
        Command::Predict(a) => {
            let r = &a.run;
            let device = trainer::device::parse_device(&r.device)?;
            tch::set_num_threads(threads(r.threads) as i32);
            let n = trainer::evaluate::predict_to_file(
                &r.checkpoint,
                &r.data,
                benchmark(&r.benchmark)?,
                &r.split,
                &a.out,
                device,
                threads(r.threads),
            )?;
            println!("wrote {n} predictions to {}", a.out.display());
            Ok(())
        }
    }
}
