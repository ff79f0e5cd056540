//! `export` command line: checkpoint -> ONNX (fp32), int8 quantization,
//! parity and accuracy checks in tract, shop table building and inspection.

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand};
use export::evaluate::{self, Parity};
use export::images;
use export::infer::TractModel;
use export::quantize::{self, Method};
use export::{checkpoint, gallery, onnx};
use std::path::{Path, PathBuf};

/// FashionNet exporter: ONNX (fp32, int8), checks, shop tables.
#[derive(Parser)]
#[command(name = "export", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Write the fp32 ONNX graph of a checkpoint.
    Onnx {
        /// Trainer checkpoint (safetensors).
        #[arg(long)]
        checkpoint: PathBuf,
        /// Output ONNX file.
        #[arg(long)]
        out: PathBuf,
        /// Also write an int8 graph calibrated on random inputs (for speed
        /// benchmarks only; use `export quantize` with real images otherwise).
        #[arg(long)]
        int8_out: Option<PathBuf>,
    },
    /// Quantize an fp32 export to operator-form int8, calibrated on real images.
    Quantize {
        /// The fp32 ONNX model written by `export onnx`.
        #[arg(long)]
        model: PathBuf,
        /// DeepFashion root (or benchmark folder) with the calibration images.
        #[arg(long)]
        calib_data: PathBuf,
        /// Benchmark of the calibration data (category-attribute, fine, inshop, consumer2shop, landmarks).
        #[arg(long)]
        benchmark: String,
        /// Split the calibration images come from.
        #[arg(long, default_value = "train")]
        split: String,
        /// Number of calibration images.
        #[arg(long, default_value_t = 64)]
        images: usize,
        /// Range estimate: minmax or percentile.
        #[arg(long, default_value = "percentile")]
        method: Method,
        /// Layers to leave in float (comma-separated, e.g. fc6_local,landmarks).
        #[arg(long, value_delimiter = ',')]
        keep_float: Vec<String>,
        /// Output int8 ONNX file.
        #[arg(long)]
        out: PathBuf,
    },
    /// Compare two exported graphs in tract (e.g. int8 against fp32).
    Verify {
        /// The model to check.
        #[arg(long)]
        model: PathBuf,
        /// The reference model.
        #[arg(long)]
        reference: PathBuf,
        /// DeepFashion root for real sample images (random inputs without it).
        #[arg(long, requires = "benchmark")]
        data: Option<PathBuf>,
        /// Benchmark of `--data`.
        #[arg(long)]
        benchmark: Option<String>,
        /// Split of the sample images.
        #[arg(long, default_value = "test")]
        split: String,
        /// Number of sample inputs.
        #[arg(long, default_value_t = 16)]
        samples: usize,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Score an exported graph on a benchmark split (the JSON of `deepfashion score`).
    Eval {
        /// The model to score.
        #[arg(long)]
        model: PathBuf,
        /// Also score this model (e.g. the fp32 export) and print both.
        #[arg(long)]
        reference: Option<PathBuf>,
        /// DeepFashion root or benchmark folder.
        #[arg(long)]
        data: PathBuf,
        /// Benchmark name.
        #[arg(long)]
        benchmark: String,
        /// Split to score.
        #[arg(long, default_value = "test")]
        split: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Embed a catalogue and write the shop table.
    Gallery {
        /// The exported model (fp32 or int8).
        #[arg(long)]
        model: PathBuf,
        /// A folder of catalogue images (centre-square crops).
        #[arg(long, conflicts_with = "data")]
        images: Option<PathBuf>,
        /// DeepFashion root with a retrieval benchmark (crops around the boxes).
        #[arg(long, requires = "benchmark")]
        data: Option<PathBuf>,
        /// Benchmark of `--data` (inshop or consumer2shop).
        #[arg(long)]
        benchmark: Option<String>,
        /// Split of `--data` to embed.
        #[arg(long, default_value = "gallery")]
        split: String,
        /// CSV with columns id[,name,price,url] for item metadata.
        #[arg(long)]
        items: Option<PathBuf>,
        /// Output table.
        #[arg(long)]
        out: PathBuf,
    },
    /// Time each node of the model's optimized tract plan (which ops a frame
    /// spends its time in, and which matmul kernels tract picked).
    Profile {
        /// The exported model (fp32 or int8).
        #[arg(long)]
        model: PathBuf,
        /// Runs to average over (after one warm-up run).
        #[arg(long, default_value_t = 5)]
        runs: usize,
        /// Batch size.
        #[arg(long, default_value_t = 1)]
        batch: usize,
        /// Rows to print (slowest first; 0 = all).
        #[arg(long, default_value_t = 25)]
        top: usize,
        /// Print JSON lines instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Print a shop table's header.
    TableInfo {
        /// The table.
        table: PathBuf,
        /// Print JSON.
        #[arg(long)]
        json: bool,
        /// Also check it against this model's fingerprint.
        #[arg(long)]
        model: Option<PathBuf>,
    },
    /// Write a table of random unit embeddings for a model (for benchmarks).
    RandomTable {
        /// The model whose fingerprint and dimension the table takes.
        #[arg(long)]
        model: PathBuf,
        /// Number of items.
        #[arg(long, default_value_t = 10_000)]
        items: usize,
        /// Seed.
        #[arg(long, default_value_t = 0)]
        seed: u64,
        /// Output table.
        #[arg(long)]
        out: PathBuf,
    },
    /// Write a random-weight checkpoint (for tests and benchmarks).
    RandomCheckpoint {
        /// Preset: paper, edge, tiny.
        #[arg(long, default_value = "tiny")]
        config: String,
        /// Seed.
        #[arg(long, default_value_t = 0)]
        seed: u64,
        /// Output checkpoint.
        #[arg(long)]
        out: PathBuf,
    },
}

fn size(p: &Path) -> u64 {
    std::fs::metadata(p).map(|m| m.len()).unwrap_or(0)
}

fn mib(b: u64) -> String {
    format!("{:.2} MiB", b as f64 / (1024.0 * 1024.0))
}

fn print_parity(p: &Parity) {
    println!(
        "{:<12} {:>12} {:>12}",
        "output", "max |diff|", "mean |diff|"
    );
    for o in &p.outputs {
        println!("{:<12} {:>12.3e} {:>12.3e}", o.name, o.max_abs, o.mean_abs);
    }
    println!(
        "category top-1 agreement: {:.1}% over {} inputs",
        100.0 * p.category_top1_agreement,
        p.samples
    );
}

fn sample_inputs(
    s: usize,
    n: usize,
    data: Option<&Path>,
    bench: Option<&str>,
    split: &str,
    margin: f32,
) -> Result<Vec<Vec<f32>>> {
    let Some(root) = data else {
        return Ok(evaluate::random_inputs(s, n, 7));
    };
    let ds = images::load_dataset(root, bench.unwrap_or_default())?;
    let imgs: Vec<_> = images::split_images(&ds, split)
        .into_iter()
        .take(n)
        .collect();
    if imgs.is_empty() {
        bail!("split `{split}` of {} has no images", root.display());
    }
    imgs.iter()
        .map(|img| {
            let mut v = vec![0f32; 3 * s * s];
            images::preprocess(img, s, margin, &mut v)?;
            Ok(v)
        })
        .collect()
}

fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Cmd::Onnx {
            checkpoint,
            out,
            int8_out,
        } => {
            let ck = checkpoint::load(&checkpoint)?;
            let model = onnx::from_checkpoint(&ck);
            onnx::write_model(&out, &model)?;
            // Load it back in tract: a graph that does not load is not written.
            let tm = TractModel::load(&out, 1).context("loading the written graph in tract")?;
            let x = evaluate::random_inputs(ck.config.input_size, 1, 1);
            tm.predict(&x[0])?;
            println!(
                "config        {} (S={}, D={})",
                ck.config.name, ck.config.input_size, ck.config.embedding_dim
            );
            println!("parameters    {}", ck.config.parameter_count());
            println!("fingerprint   {}", ck.fingerprint());
            println!(
                "checkpoint    {} ({})",
                checkpoint.display(),
                mib(size(&checkpoint))
            );
            println!(
                "onnx fp32     {} ({}, opset {})",
                out.display(),
                mib(size(&out)),
                onnx::OPSET
            );
            if let Some(q) = int8_out {
                let (info, weights) = quantize::read_fp32(&out)?;
                let inputs = evaluate::random_inputs(info.config.input_size, 8, 11);
                let ranges = quantize::calibrate_with(
                    &info,
                    &weights,
                    inputs.len(),
                    Method::MinMax,
                    true,
                    |i, b| {
                        b.copy_from_slice(&inputs[i]);
                        Ok(())
                    },
                )?;
                let plan = quantize::plan(ranges, Default::default());
                let model = quantize::int8_model(&info, &weights, &plan);
                TractModel::from_proto(model.clone(), 1, &q)?;
                onnx::write_model(&q, &model)?;
                println!(
                    "onnx int8     {} ({}, calibrated on random inputs)",
                    q.display(),
                    mib(size(&q))
                );
            }
        }
        Cmd::Quantize {
            model,
            calib_data,
            benchmark,
            split,
            images: n,
            method,
            keep_float,
            out,
        } => {
            let (info, weights) = quantize::read_fp32(&model)?;
            let keep = quantize::parse_keep_float(&info, &keep_float)?;
            let ds = images::load_dataset(&calib_data, &benchmark)?;
            let mut imgs = images::split_images(&ds, &split);
            if imgs.is_empty() {
                bail!("split `{split}` of {} has no images", calib_data.display());
            }
            // Spread the picks over the split (it is often sorted by category).
            let step = (imgs.len() / n.max(1)).max(1);
            imgs = imgs.into_iter().step_by(step).take(n).collect();
            let ranges = quantize::calibrate(&info, &weights, &imgs, method, true)?;
            let plan = quantize::plan(ranges, keep);
            let q = quantize::int8_model(&info, &weights, &plan);
            // Check it loads and compare with the fp32 graph before writing.
            let qm = TractModel::from_proto(q.clone(), 1, &out)?;
            let fm = TractModel::load(&model, 1)?;
            let s = info.config.input_size;
            let inputs: Vec<Vec<f32>> = imgs
                .iter()
                .take(8)
                .map(|img| {
                    let mut v = vec![0f32; 3 * s * s];
                    images::preprocess(img, s, info.preprocess.crop_margin, &mut v).map(|_| v)
                })
                .collect::<Result<_, _>>()?;
            let parity = evaluate::verify(&qm, &fm, &inputs)?;
            onnx::write_model(&out, &q)?;
            let int8_ops: Vec<String> = qm
                .op_census()
                .into_iter()
                .filter(|(n, _)| {
                    let l = n.to_ascii_lowercase();
                    l.contains("q") || l.contains("i8") || l.contains("u8")
                })
                .map(|(n, c)| format!("{n} x{c}"))
                .collect();
            println!(
                "calibration   {} images of {benchmark}/{split} ({method:?})",
                imgs.len()
            );
            println!("kept float    {:?}", plan.keep_float);
            println!("fp32          {} ({})", model.display(), mib(size(&model)));
            println!(
                "int8          {} ({}, {:.1}% of fp32)",
                out.display(),
                mib(size(&out)),
                100.0 * size(&out) as f64 / size(&model).max(1) as f64
            );
            println!("tract int8 ops {}", int8_ops.join(", "));
            print_parity(&parity);
        }
        Cmd::Verify {
            model,
            reference,
            data,
            benchmark,
            split,
            samples,
            json,
        } => {
            let m = TractModel::load(&model, 1)?;
            let r = TractModel::load(&reference, 1)?;
            if m.info.config != r.info.config {
                bail!(
                    "{} and {} have different configs",
                    model.display(),
                    reference.display()
                );
            }
            let inputs = sample_inputs(
                m.info.config.input_size,
                samples,
                data.as_deref(),
                benchmark.as_deref(),
                &split,
                m.info.preprocess.crop_margin,
            )?;
            let p = evaluate::verify(&m, &r, &inputs)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&p)?);
            } else {
                println!(
                    "{} ({}) vs {} ({})",
                    model.display(),
                    m.info.precision,
                    reference.display(),
                    r.info.precision
                );
                print_parity(&p);
            }
        }
        Cmd::Eval {
            model,
            reference,
            data,
            benchmark,
            split,
            json,
        } => {
            let ds = images::load_dataset(&data, &benchmark)?;
            let m = TractModel::load(&model, 1)?;
            let scores = evaluate::evaluate(&m, &ds, &split, !json)?;
            let reference_scores = match &reference {
                Some(r) => Some(evaluate::evaluate(
                    &TractModel::load(r, 1)?,
                    &ds,
                    &split,
                    !json,
                )?),
                None => None,
            };
            if json {
                match &reference_scores {
                    None => println!("{}", serde_json::to_string_pretty(&scores)?),
                    Some(r) => println!(
                        "{}",
                        serde_json::to_string_pretty(&serde_json::json!({
                            "model": scores, "reference": r,
                        }))?
                    ),
                }
            } else {
                println!(
                    "{} split {}: {} ({})",
                    scores.benchmark,
                    scores.split,
                    model.display(),
                    m.info.precision
                );
                match (&reference_scores, &reference) {
                    (Some(r), Some(path)) => {
                        println!("reference: {}", path.display());
                        print!(
                            "{}",
                            deepfashion::metrics::comparison_table(
                                "model",
                                &scores,
                                "reference",
                                r
                            )
                        );
                    }
                    _ => {
                        for (name, v, lower) in scores.headline() {
                            if lower {
                                println!("{name:<24}{v:>12.4}");
                            } else {
                                println!("{name:<24}{:>11.2}%", 100.0 * v);
                            }
                        }
                    }
                }
                println!("(--json prints every metric)");
            }
        }
        Cmd::Gallery {
            model,
            images: dir,
            data,
            benchmark,
            split,
            items,
            out,
        } => {
            let m = TractModel::load(&model, 1)?;
            let imgs = match (dir, data) {
                (Some(d), _) => images::folder_images(&d)?,
                (None, Some(root)) => {
                    let ds = images::load_dataset(&root, benchmark.as_deref().unwrap_or_default())?;
                    images::split_images(&ds, &split)
                }
                (None, None) => bail!("give --images DIR or --data ROOT --benchmark B"),
            };
            let meta = match &items {
                Some(p) => gallery::read_items_csv(p)?,
                None => Default::default(),
            };
            let n = gallery::build_table(&m, &imgs, &meta, &out, true)?;
            println!(
                "table         {} ({} items, {})",
                out.display(),
                n,
                mib(size(&out))
            );
            println!("fingerprint   {}", m.info.fingerprint);
            println!("dim           {}", m.info.config.embedding_dim);
            let t = export::shop_table::ShopTable::open(&out)?;
            println!("encoding      {}", t.encoding().describe());
        }
        Cmd::Profile {
            model,
            runs,
            batch,
            top,
            json,
        } => {
            let m = TractModel::load(&model, batch)?;
            let s = m.info.config.input_size;
            let input = evaluate::random_inputs(s, batch, 7).concat();
            m.run(&input)?; // warm-up: allocations, packing caches
            let rows = m.profile(&input, runs)?;
            let total: f64 = rows.iter().map(|r| r.millis).sum();
            let shown = if top == 0 {
                rows.len()
            } else {
                top.min(rows.len())
            };
            if json {
                for r in &rows[..shown] {
                    println!("{}", serde_json::to_string(r)?);
                }
            } else {
                println!(
                    "{}: {} nodes, {:.2} ms per run of batch {batch} (mean of {runs})",
                    model.display(),
                    rows.len(),
                    total
                );
                println!(
                    "{:>9} {:>6}  {:<18} {:<40} info",
                    "ms", "share", "op", "node"
                );
                for r in &rows[..shown] {
                    println!(
                        "{:>9.3} {:>5.1}%  {:<18} {:<40} {} -> {}",
                        r.millis,
                        100.0 * r.millis / total.max(1e-12),
                        r.op,
                        r.name,
                        r.info,
                        r.output
                    );
                }
            }
        }
        Cmd::TableInfo { table, json, model } => {
            let t = export::shop_table::ShopTable::open(&table)?;
            if let Some(mp) = &model {
                let (_, info) = onnx::read_model(mp)?;
                gallery::check_table(&t, &info.fingerprint, info.config.embedding_dim)?;
            }
            let first: Vec<&str> = (0..t.len().min(5)).map(|i| t.item(i).id).collect();
            if json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&serde_json::json!({
                        "path": table.display().to_string(),
                        "format_version": export::shop_table::format::VERSION,
                        "encoding": t.encoding().name(),
                        "refined_axes": t.encoding().to_header().1,
                        "dim": t.dim(),
                        "items": t.len(),
                        "fingerprint": t.fingerprint(),
                        "bytes": t.byte_len(),
                        "first_ids": first,
                        "model_checked": model.is_some(),
                    }))?
                );
            } else {
                println!("table         {}", table.display());
                println!("version       {}", export::shop_table::format::VERSION);
                println!("dim           {}", t.dim());
                println!("encoding      {}", t.encoding().describe());
                println!("items         {}", t.len());
                println!("fingerprint   {}", t.fingerprint());
                println!("size          {}", mib(t.byte_len() as u64));
                println!("first ids     {}", first.join(", "));
                if model.is_some() {
                    println!("model check   ok");
                }
            }
        }
        Cmd::RandomTable {
            model,
            items,
            seed,
            out,
        } => {
            let (_, info) = onnx::read_model(&model)?;
            let n = gallery::write_random_table(
                &info.fingerprint,
                info.config.embedding_dim,
                items,
                seed,
                &out,
            )?;
            println!(
                "table         {} ({} random items, {})",
                out.display(),
                n,
                mib(size(&out))
            );
        }
        Cmd::RandomCheckpoint { config, seed, out } => {
            let cfg = deepfashion::contract::ModelConfig::preset(&config)?;
            checkpoint::write_random(&cfg, &checkpoint::placeholder_labels(&cfg), seed, &out)?;
            println!("wrote {} ({})", out.display(), mib(size(&out)));
        }
    }
    Ok(())
}

fn main() -> std::process::ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    match run(Cli::parse()) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("export: error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
