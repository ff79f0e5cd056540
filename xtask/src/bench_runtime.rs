//! `cargo xtask bench runtime`: the runtime's per-frame latency on the
//! `edge` int8 model against onnxruntime (the venv's Python) running the
//! same file, batch 1, one and two threads, with the share of the frame
//! spent outside inference; and the peak RSS of the runtime with the edge
//! model and a 10,000-item shop table. Results replace the runtime section
//! of `BENCHMARKS.md`.

use crate::benchmarks_md::Row;
use crate::env;
use anyhow::{Context, Result};
use std::path::{Path, PathBuf};
use std::process::Command;

/// Arguments of `cargo xtask bench runtime`.
#[derive(clap::Args)]
pub struct Args {
    /// The model to measure (default: an `edge` model exported from a
    /// random checkpoint, operator-form int8, made with `export`).
    #[arg(long)]
    pub model: Option<PathBuf>,
    /// A shop table for the model (default: 10,000 random items built with
    /// `export`).
    #[arg(long)]
    pub table: Option<PathBuf>,
    /// Timed frames per measurement.
    #[arg(long, default_value_t = 50)]
    pub frames: usize,
    /// Do not write BENCHMARKS.md (print only).
    #[arg(long)]
    pub no_write: bool,
}

const ORT_SCRIPT: &str = r#"
import json, resource, sys, time
import numpy as np
import onnxruntime as ort
path, threads, frames = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
so = ort.SessionOptions()
so.intra_op_num_threads = threads
so.inter_op_num_threads = 1
so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
s = ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])
shape = s.get_inputs()[0].shape
size = shape[2] if isinstance(shape[2], int) else 192
x = np.random.RandomState(0).randn(1, 3, size, size).astype(np.float32)
for _ in range(max(2, frames // 10)):
    s.run(None, {"image": x})
ts = []
for _ in range(frames):
    t = time.perf_counter()
    s.run(None, {"image": x})
    ts.append((time.perf_counter() - t) * 1e3)
ts.sort()
print(json.dumps({"mean_ms": sum(ts) / len(ts), "p50_ms": ts[len(ts) // 2], "p90_ms": ts[int(0.9 * (len(ts) - 1))], "ort": ort.__version__, "max_rss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}))
"#;

/// Make the default edge int8 model and 10k table with `export` (the
/// release binary in `bin`).
fn default_artefacts(dir: &Path, bin: &Path) -> Result<(PathBuf, PathBuf)> {
    std::fs::create_dir_all(dir)?;
    let model = dir.join("edge.int8.onnx");
    let table = dir.join("shop10k.table");
    if model.is_file() && table.is_file() {
        return Ok((model, table));
    }
    let export = |args: &[&str]| -> Result<()> {
        env::run(
            "bench runtime: export",
            Command::new(bin.join("export")).args(args),
        )
    };
    let d = |n: &str| dir.join(n).display().to_string();
    export(&[
        "random-checkpoint",
        "--config",
        "edge",
        "--out",
        &d("edge.safetensors"),
    ])?;
    export(&[
        "onnx",
        "--checkpoint",
        &d("edge.safetensors"),
        "--out",
        &d("edge.onnx"),
        "--int8-out",
        &model.display().to_string(),
    ])?;
    export(&[
        "random-table",
        "--model",
        &model.display().to_string(),
        "--items",
        "10000",
        "--out",
        &table.display().to_string(),
    ])?;
    Ok((model, table))
}

/// Run the benchmark.
pub fn run(args: &Args) -> Result<()> {
    let tools = crate::benchmarks_md::release_tools()?;
    let work = env::target_dir().join("bench-runtime");
    let (model, table) = match (&args.model, &args.table) {
        (Some(m), Some(t)) => (m.clone(), t.clone()),
        _ => default_artefacts(&work, &tools).context(
            "making the edge model and table with `export` (or pass --model and --table)",
        )?,
    };
    let bin = tools.join("fashion-runtime");
    let frames = args.frames.to_string();
    let mut rows = vec![];
    for threads in [1usize, 2] {
        let t = threads.to_string();
        let rt = env::json_of(
            "fashion-runtime bench",
            Command::new(&bin)
                .args([
                    "bench",
                    "--json",
                    "--frames",
                    &frames,
                    "--threads",
                    &t,
                    "--model",
                ])
                .arg(&model),
        )?;
        let ort = env::json_of(
            "onnxruntime",
            Command::new(env::venv_python())
                .args(["-c", ORT_SCRIPT])
                .arg(&model)
                .args([&t, &frames]),
        )?;
        rows.push((threads, rt, ort));
    }
    let rss = env::json_of(
        "fashion-runtime bench with table",
        Command::new(&bin)
            .args([
                "bench",
                "--json",
                "--frames",
                "20",
                "--threads",
                "2",
                "--model",
            ])
            .arg(&model)
            .arg("--table")
            .arg(&table),
    )?;
    let mut md = render(&model, &rows, &rss)?;
    md.push_str(&crate::benchmarks_md::rows_comment(&summary_rows(
        &rows, &rss,
    )));
    println!("{md}");
    if !args.no_write {
        crate::benchmarks_md::write_section("runtime", &md)?;
        crate::benchmarks_md::write_summary()?;
        eprintln!("xtask: [bench runtime] BENCHMARKS.md updated");
    }
    Ok(())
}

/// The summary rows: the whole frame against onnxruntime's inference alone,
/// the frame's overhead (whole frame against our own inference), and peak
/// memory against the onnxruntime process.
fn summary_rows(
    rows: &[(usize, serde_json::Value, serde_json::Value)],
    rss: &serde_json::Value,
) -> Vec<Row> {
    let command = "cargo xtask bench runtime";
    let mut out = Vec::new();
    for (threads, rt, ort) in rows {
        let th = if *threads == 1 {
            "1 thread"
        } else {
            "2 threads"
        };
        let ortm = ort["mean_ms"].as_f64().unwrap_or(f64::NAN);
        out.push(Row::new(
            format!("live frame, `edge` int8 (preprocess + inference + decode + search vs inference only), {th}"),
            ("fashion-runtime", ms(rt, "total")),
            ("onnxruntime", ortm),
            "ms",
            command,
        ));
        out.push(Row::new(
            format!("frame overhead: whole frame vs its inference, {th}"),
            ("frame", ms(rt, "total")),
            ("inference", ms(rt, "inference")),
            "ms",
            command,
        ));
    }
    if let Some((_, _, ort)) = rows.iter().find(|r| r.0 == 2) {
        out.push(Row::new(
            format!(
                "peak RSS, `edge` int8, 2 threads (ours with a {}-item table; onnxruntime: its Python process)",
                rss["table_items"].as_u64().unwrap_or(0)
            ),
            ("fashion-runtime", rss["peak_rss_kb"].as_f64().unwrap_or(f64::NAN) / 1024.0),
            ("onnxruntime", ort["max_rss_kb"].as_f64().unwrap_or(f64::NAN) / 1024.0),
            "MB",
            command,
        ));
    }
    out
}

fn ms(v: &serde_json::Value, stage: &str) -> f64 {
    v[stage]["mean_us"].as_f64().unwrap_or(f64::NAN) / 1e3
}

fn render(
    model: &Path,
    rows: &[(usize, serde_json::Value, serde_json::Value)],
    rss: &serde_json::Value,
) -> Result<String> {
    use std::fmt::Write;
    let mut s = String::new();
    let host = env::cpu_model();
    let form = rows
        .first()
        .map(|r| r.1["form"].as_str().unwrap_or("?").to_string())
        .unwrap_or_default();
    let config = rows
        .first()
        .map(|r| r.1["config"].as_str().unwrap_or("?").to_string())
        .unwrap_or_default();
    let ort_version = rows
        .first()
        .map(|r| r.2["ort"].as_str().unwrap_or("?").to_string())
        .unwrap_or_default();
    writeln!(s, "## fashion-runtime (tract) vs onnxruntime\n")?;
    writeln!(
        s,
        "`cargo xtask bench runtime`: model `{}` (config `{config}`, form `{form}`), batch 1, {} frames each; host: {host}; onnxruntime {ort_version}.\n",
        model.display(),
        rows.first().map(|r| r.1["frames"].as_u64().unwrap_or(0)).unwrap_or(0)
    )?;
    writeln!(s, "| threads | runtime total ms | runtime inference ms | preprocess ms | decode+search ms | outside inference | onnxruntime ms (p50) | tract / ort |")?;
    writeln!(
        s,
        "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
    )?;
    for (threads, rt, ort) in rows {
        let inf = ms(rt, "inference");
        let ortm = ort["mean_ms"].as_f64().unwrap_or(f64::NAN);
        writeln!(
            s,
            "| {threads} | {:.2} | {:.2} | {:.2} | {:.3} | {:.1}% | {:.2} ({:.2}) | {:.2}x |",
            ms(rt, "total"),
            inf,
            ms(rt, "preprocess"),
            ms(rt, "decode") + ms(rt, "search"),
            rt["outside_inference_share"].as_f64().unwrap_or(f64::NAN) * 100.0,
            ortm,
            ort["p50_ms"].as_f64().unwrap_or(f64::NAN),
            inf / ortm
        )?;
    }
    let kb = rss["peak_rss_kb"].as_f64().unwrap_or(f64::NAN);
    writeln!(
        s,
        "\nPeak RSS of `fashion-runtime bench` with this model and a {}-item table (2 threads): {:.1} MB (target < 150 MB); onnxruntime's Python process with the same model (2 threads, no table): {:.1} MB; search {:.3} ms per frame.",
        rss["table_items"].as_u64().unwrap_or(0),
        kb / 1024.0,
        rows.iter()
            .find(|r| r.0 == 2)
            .and_then(|r| r.2["max_rss_kb"].as_f64())
            .unwrap_or(f64::NAN)
            / 1024.0,
        ms(rss, "search")
    )?;
    Ok(s)
}
