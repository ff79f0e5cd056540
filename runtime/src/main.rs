//! `fashion-runtime`: the command line over the `fashion_runtime` library.
//!
//! - `tag`: frames from a camera, an MJPEG stream, images or the demo scene
//!   -> landmarks, categories, attributes, shop matches -> JSON lines,
//!   annotated frames, live preview, MQTT.
//! - `bench`: per-stage latency; `--choose` picks the fastest model form,
//!   thread count and convolution knob and writes them into the config.
//! - `info`: what a model (and a table) file holds.

use anyhow::{bail, Context, Result};
use clap::{Args, Parser, Subcommand};
use fashion_runtime::bench;
use fashion_runtime::config::{self, DeviceConfig, EngineConfig};
use fashion_runtime::engine::EngineOptions;
use fashion_runtime::model_info::ModelInfo;
use fashion_runtime::outputs::OwnedNames;
use fashion_runtime::pipeline::check_pair;
use fashion_runtime::result::ShopNames;
use fashion_runtime::signals::Signals;
use fashion_runtime::sink;
use fashion_runtime::sources::{self, reopen, SourceSpec};
use fashion_runtime::table::Table;
use fashion_runtime::tag::{self, TagOptions};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// FashionNet on the board: camera frames to landmarks, tags and shop
/// matches.
#[derive(Parser)]
#[command(name = "fashion-runtime", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Tag frames from a source and write the results.
    Tag(TagArgs),
    /// Measure per-stage latency (and, with --choose, pick the fastest
    /// settings and write them into the config).
    Bench(BenchArgs),
    /// Print a model's metadata and sizes (and a table's header).
    Info(InfoArgs),
}

#[derive(Args)]
struct TagArgs {
    /// Device config (TOML); flags given here override it.
    #[arg(long)]
    config: Option<PathBuf>,
    /// The exported FashionNet ONNX model. Default: the shipped demo model
    /// (it knows only synthetic garments) with its table.
    #[arg(long)]
    model: Option<PathBuf>,
    /// The shop table built for this model.
    #[arg(long)]
    table: Option<PathBuf>,
    /// Frame source: v4l:/dev/videoN (or /dev/v4l/by-id/...), mjpeg:- (stdin),
    /// mjpeg:FILE, images:DIR_OR_FILE, or demo (the shipped demo clip, looped
    /// at 10 fps). Default: v4l:/dev/video0 when there is a camera, else demo.
    #[arg(long)]
    source: Option<SourceSpec>,
    /// JSON lines to FILE, or - for stdout (the default when no other output
    /// is chosen).
    #[arg(long)]
    jsonl: Option<PathBuf>,
    /// Write annotated frames (JPEG) into DIR.
    #[arg(long)]
    annotated: Option<PathBuf>,
    /// Serve the live preview page on ADDR (e.g. 0.0.0.0:8080).
    #[arg(long)]
    http: Option<String>,
    /// Publish results to the MQTT broker at HOST:PORT.
    #[arg(long)]
    mqtt: Option<String>,
    /// Stop after N frames.
    #[arg(long)]
    frames: Option<u64>,
    /// Threads for inference (0 = one per core).
    #[arg(long)]
    threads: Option<usize>,
}

#[derive(Args)]
struct BenchArgs {
    /// Model file(s); with --choose, several forms of one model (fp32 and
    /// int8); forms found next to the first file are added.
    #[arg(long, required = true)]
    model: Vec<PathBuf>,
    /// Shop table to include the search stage.
    #[arg(long)]
    table: Option<PathBuf>,
    /// Timed frames per configuration.
    #[arg(long, default_value_t = 50)]
    frames: usize,
    /// Threads (default: 1; with --choose, the most to try, default the core
    /// count).
    #[arg(long)]
    threads: Option<usize>,
    /// Set TRACT_DISABLE_DIRECT_SPATIAL (without --choose).
    #[arg(long)]
    disable_direct_spatial: bool,
    /// Try every model form x threads 1..N x direct-spatial on/off and write
    /// the fastest into --config.
    #[arg(long)]
    choose: bool,
    /// Config file the choice is written into (created if absent).
    #[arg(long, default_value = "fashion-runtime.toml")]
    config: PathBuf,
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
struct InfoArgs {
    /// The model file.
    #[arg(long)]
    model: PathBuf,
    /// A table file to check against the model.
    #[arg(long)]
    table: Option<PathBuf>,
    /// Print JSON.
    #[arg(long)]
    json: bool,
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
    let r = match cli.command {
        Command::Tag(a) => run_tag(a),
        Command::Bench(a) => run_bench(a),
        Command::Info(a) => run_info(a),
    };
    match r {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("fashion-runtime: error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// The built-in default: no model anywhere -> the shipped demo model and
/// table; no source -> the first camera, or the demo clip without one.
fn apply_demo_defaults(cfg: &mut DeviceConfig) {
    use fashion_runtime::demo_assets;
    if cfg.model.is_none() {
        if let Some(model) = demo_assets::file(demo_assets::MODEL) {
            tracing::info!(
                "no --model: using the demo model {} (it knows only synthetic garments; see README.md to train on DeepFashion)",
                model.display()
            );
            cfg.model = Some(model);
            if cfg.table.is_none() {
                cfg.table = demo_assets::file(demo_assets::TABLE);
            }
        }
    }
    if cfg.source.is_none() {
        let camera = std::path::Path::new("/dev/video0");
        let spec = if cfg!(feature = "v4l") && camera.exists() {
            SourceSpec::V4l(camera.into())
        } else {
            SourceSpec::Demo
        };
        tracing::info!("no --source: using {spec}");
        cfg.source = Some(spec);
    }
}

/// The config file with the command-line flags applied on top.
fn merged_config(a: &TagArgs) -> Result<DeviceConfig> {
    let mut cfg = match &a.config {
        Some(p) => DeviceConfig::load(p)?,
        None => DeviceConfig::default(),
    };
    if a.model.is_some() {
        cfg.model = a.model.clone();
    }
    if a.table.is_some() {
        cfg.table = a.table.clone();
    }
    if a.source.is_some() {
        cfg.source = a.source.clone();
    }
    if a.jsonl.is_some() {
        cfg.jsonl = a.jsonl.clone();
    }
    if a.annotated.is_some() {
        cfg.annotated = a.annotated.clone();
    }
    if a.frames.is_some() {
        cfg.frames = a.frames;
    }
    if let Some(t) = a.threads {
        cfg.engine.threads = t;
    }
    apply_demo_defaults(&mut cfg);
    sink::apply_output_flags(&mut cfg, a.http.as_deref(), a.mqtt.as_deref())?;
    if cfg.jsonl.is_none() && cfg.annotated.is_none() && cfg.http.is_none() && cfg.mqtt.is_none() {
        cfg.jsonl = Some(PathBuf::from("-"));
    }
    if cfg.stats_interval_s == 0 {
        cfg.stats_interval_s = 5;
    }
    cfg.validate()?;
    Ok(cfg)
}

fn run_tag(a: TagArgs) -> Result<()> {
    let cfg = merged_config(&a)?;
    let Some(model) = cfg.model.clone() else {
        bail!("no model: give --model or `model = ...` in the config");
    };
    let Some(spec) = cfg.source.clone() else {
        bail!("no source: give --source (v4l:/dev/videoN, mjpeg:-, mjpeg:FILE, images:DIR, demo) or `source = ...` in the config");
    };
    let opts = TagOptions {
        model,
        table: cfg.table.clone(),
        engine: EngineOptions {
            threads: cfg.threads(),
            disable_direct_spatial: cfg.engine.disable_direct_spatial,
        },
        roi: cfg.roi,
        results: cfg.results,
        frames: cfg.frames,
        watch_files: cfg.watch_files,
        stats_interval: Duration::from_secs(cfg.stats_interval_s as u64),
    };
    let (engine, table) = tag::load_pair(&opts.model, opts.table.as_deref(), opts.engine)?;
    let signals = Signals::install().context("installing signal handlers")?;
    let state = reopen::shared_state();
    let mut source = sources::open(
        &spec,
        cfg.camera.into(),
        state.clone(),
        signals.terminate.clone(),
    )?;
    let names = OwnedNames {
        labels: Some(Arc::new(engine.info().labels.clone())),
        shop: table.clone().map(|t| t as Arc<dyn ShopNames>),
    };
    let mut sink = sink::Sink::open(&cfg, names)?;
    let summary = tag::run_with(
        &opts,
        engine,
        table,
        source.as_mut(),
        &state,
        &signals,
        &mut sink,
    )?;
    tracing::info!(
        frames = summary.frames,
        corrupt = summary.corrupt,
        dropped = summary.dropped,
        failed = summary.failed,
        reloads = summary.reloads,
        terminated = summary.terminated,
        "done"
    );
    Ok(())
}

fn run_bench(a: BenchArgs) -> Result<()> {
    if a.frames == 0 {
        bail!("--frames must be at least 1");
    }
    if !a.choose {
        if a.model.len() != 1 {
            bail!("give one --model without --choose");
        }
        let options = EngineOptions {
            threads: a.threads.unwrap_or(1).max(1),
            disable_direct_spatial: a.disable_direct_spatial,
        };
        let r = bench::bench_model(&a.model[0], a.table.as_deref(), options, a.frames)?;
        if a.json {
            println!("{}", serde_json::to_string_pretty(&r)?);
        } else {
            print_reports(std::slice::from_ref(&r), None);
        }
        return Ok(());
    }
    let mut models = a.model.clone();
    for s in bench::sibling_models(&a.model[0]) {
        if !models.contains(&s) {
            models.push(s);
        }
    }
    let max_threads = a.threads.unwrap_or_else(bench::default_max_threads);
    let cands = bench::candidates(&models, max_threads);
    let (reports, best) = bench::choose(&cands, a.table.as_deref(), a.frames)?;
    let w = &reports[best];
    config::write_engine_choice(
        &a.config,
        &w.model,
        EngineConfig {
            threads: w.threads,
            disable_direct_spatial: w.disable_direct_spatial,
        },
    )?;
    if a.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({
                "candidates": reports,
                "winner": best,
                "config": a.config,
            }))?
        );
    } else {
        print_reports(&reports, Some(best));
        println!(
            "chosen: {} threads={} disable_direct_spatial={} -> written to {}",
            w.model.display(),
            w.threads,
            w.disable_direct_spatial,
            a.config.display()
        );
    }
    Ok(())
}

fn print_reports(reports: &[bench::BenchReport], best: Option<usize>) {
    println!(
        "{:<40} {:>5} {:>3} {:>4} {:>9} {:>9} {:>9} {:>9} {:>9} {:>7} {:>8}",
        "model",
        "form",
        "thr",
        "dds",
        "prep ms",
        "infer ms",
        "decode ms",
        "search ms",
        "total ms",
        "fps",
        "outside"
    );
    for (i, r) in reports.iter().enumerate() {
        println!(
            "{:<40} {:>5} {:>3} {:>4} {:>9.2} {:>9.2} {:>9.3} {:>9.3} {:>9.2} {:>7.1} {:>7.1}%{}",
            r.model.display().to_string(),
            r.form.to_string(),
            r.threads,
            if r.disable_direct_spatial {
                "off"
            } else {
                "on"
            },
            r.preprocess.mean_us / 1e3,
            r.inference.mean_us / 1e3,
            r.decode.mean_us / 1e3,
            r.search.mean_us / 1e3,
            r.total.mean_us / 1e3,
            r.fps,
            r.outside_inference_share * 100.0,
            if Some(i) == best { "  <- chosen" } else { "" }
        );
    }
    if let Some(kb) = reports.last().and_then(|r| r.peak_rss_kb) {
        println!("peak RSS: {:.1} MB", kb as f64 / 1024.0);
    }
}

fn run_info(a: InfoArgs) -> Result<()> {
    let (info, _) = ModelInfo::read(&a.model)?;
    let table = match &a.table {
        Some(p) => Some(Table::open(p)?),
        None => None,
    };
    if let Some(t) = &table {
        if t.fingerprint() != info.fingerprint || t.dim() != info.config.embedding_dim {
            // Same message as at run time.
            let engine = fashion_runtime::engine::Engine::load(&a.model, EngineOptions::default())?;
            check_pair(&engine, t)?;
        }
    }
    if a.json {
        let table_json = table.as_ref().map(|t| {
            serde_json::json!({
                "path": t.path(),
                "fingerprint": t.fingerprint(),
                "dim": t.dim(),
                "items": t.len(),
                "file_bytes": std::fs::metadata(t.path()).map(|m| m.len()).ok(),
            })
        });
        println!(
            "{}",
            serde_json::to_string_pretty(
                &serde_json::json!({ "model": info, "table": table_json })
            )?
        );
        return Ok(());
    }
    let c = &info.config;
    println!("model        {}", info.path.display());
    println!("file size    {:.2} MB", info.file_bytes as f64 / 1e6);
    println!("fingerprint  {}", info.fingerprint);
    println!("contract     v{}", info.contract_version);
    println!("form         {}", info.graph_form);
    println!(
        "graph        {} nodes, {} stored weights",
        info.nodes, info.weights
    );
    println!(
        "config       {} (input {}x{}, widths {:?}, fc {}, batch_norm {}, global_pool {})",
        c.name, c.input_size, c.input_size, c.widths, c.fc_size, c.batch_norm, c.global_pool
    );
    println!(
        "outputs      {} categories, {} attributes, {}-d embedding, {} landmarks",
        c.num_categories,
        c.num_attributes,
        c.embedding_dim,
        info.landmark_slots.len()
    );
    println!(
        "preprocess   mean {:?} std {:?} crop margin {}",
        info.preprocess.mean, info.preprocess.std, info.preprocess.crop_margin
    );
    println!("landmarks    {}", info.landmark_slots.join(", "));
    if let Some(t) = &table {
        println!("table        {}", t.path().display());
        println!("  items      {}", t.len());
        println!("  dim        {}", t.dim());
        println!("  fingerprint {} (matches the model)", t.fingerprint());
    }
    Ok(())
}
