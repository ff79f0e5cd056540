//! `cargo xtask bench export`: (1) the exported `edge` graph (random
//! weights) in tract fp32 and int8 against onnxruntime fp32 and int8 on the
//! same files, batch 1, one and two threads; (2) exact shop-table search
//! over 100,000 x 128 int8 items against FAISS `IndexFlatIP` and
//! `IndexScalarQuantizer` (8-bit) on the same data. All in one run; the
//! results replace the export section of `BENCHMARKS.md`.

use crate::benchmarks_md::Row;
use crate::env;
use anyhow::Result;
use std::process::Command;

/// Arguments of `cargo xtask bench export`.
#[derive(clap::Args)]
pub struct Args {
    /// Timed runs per model measurement.
    #[arg(long, default_value_t = 20)]
    pub runs: usize,
    /// Items in the search benchmark.
    #[arg(long, default_value_t = 100_000)]
    pub items: usize,
    /// Do not write BENCHMARKS.md (print only).
    #[arg(long)]
    pub no_write: bool,
}

fn f(v: &serde_json::Value, k: &str) -> f64 {
    v.get(k).and_then(|x| x.as_f64()).unwrap_or(f64::NAN)
}

/// Run the export benchmark.
pub fn run(args: &Args) -> Result<()> {
    let bin = crate::benchmarks_md::release_tools()?;
    let export = bin.join("export");
    let tool = bin.join("export-bench");
    let dir = env::target_dir().join("bench-export");
    std::fs::create_dir_all(&dir)?;
    let p = |n: &str| dir.join(n).display().to_string();
    env::run(
        "bench export: random edge checkpoint",
        Command::new(&export).args([
            "random-checkpoint",
            "--config",
            "edge",
            "--out",
            &p("edge.safetensors"),
        ]),
    )?;
    env::run(
        "bench export: onnx fp32 + int8",
        Command::new(&export).args([
            "onnx",
            "--checkpoint",
            &p("edge.safetensors"),
            "--out",
            &p("edge.onnx"),
            "--int8-out",
            &p("edge.int8.onnx"),
        ]),
    )?;
    let py = env::venv_python();
    let have_ort = env::succeeds(Command::new(&py).args(["-c", "import onnxruntime"]));
    let have_faiss = env::succeeds(Command::new(&py).args(["-c", "import faiss"]));
    let runs = args.runs.to_string();
    let mut model_rows = Vec::new();
    let mut summary = Vec::new();
    let command = "cargo xtask bench export";
    for threads in [1usize, 2] {
        let t = threads.to_string();
        let mut row = vec![threads.to_string()];
        let mut vals = Vec::new();
        for m in ["edge.onnx", "edge.int8.onnx"] {
            let v = env::json_of(
                "tract model timing",
                Command::new(&tool).args([
                    "model",
                    "--model",
                    &p(m),
                    "--threads",
                    &t,
                    "--runs",
                    &runs,
                ]),
            )?;
            vals.push(f(&v, "median_ms"));
        }
        for m in ["edge.onnx", "edge.int8.onnx"] {
            if have_ort {
                let v = env::json_of(
                    "onnxruntime timing",
                    env::command(&py).args([
                        env::root()
                            .join("bench/export_ort_bench.py")
                            .display()
                            .to_string(),
                        p(m),
                        t.clone(),
                        runs.clone(),
                    ]),
                )?;
                vals.push(f(&v, "median_ms"));
            } else {
                eprintln!("xtask: [bench export] onnxruntime missing in .venv: skipped (run `cargo xtask setup`)");
                vals.push(f64::NAN);
            }
        }
        let th = if threads == 1 {
            "1 thread"
        } else {
            "2 threads"
        };
        for (form, ours, peer) in [("fp32", vals[0], vals[2]), ("int8", vals[1], vals[3])] {
            summary.push(Row::new(
                format!("`edge` {form} graph, batch 1, {th}"),
                ("tract", ours),
                ("onnxruntime", peer),
                "ms",
                command,
            ));
        }
        summary.push(Row::new(
            format!("`edge` int8 vs its own fp32 in tract, {th}"),
            ("tract int8", vals[1]),
            ("tract fp32", vals[0]),
            "ms",
            command,
        ));
        row.extend(vals.iter().map(|v| format!("{v:.1}")));
        row.push(format!("{:.2}", vals[1] / vals[0]));
        row.push(format!("{:.2}", vals[0] / vals[2]));
        row.push(format!("{:.2}", vals[1] / vals[3]));
        model_rows.push(row);
    }
    let search = env::json_of(
        "table search timing",
        Command::new(&tool).args([
            "search",
            "--items",
            &args.items.to_string(),
            "--dim",
            "128",
            "--dump",
            &p("search"),
        ]),
    )?;
    let faiss = if have_faiss {
        Some(env::json_of(
            "faiss timing",
            env::command(&py).args([
                env::root()
                    .join("bench/export_faiss_bench.py")
                    .display()
                    .to_string(),
                p("search/vectors.f32"),
                p("search/queries.f32"),
                "128".into(),
                "20".into(),
            ]),
        )?)
    } else {
        eprintln!("xtask: [bench export] faiss missing in .venv: skipped (pip install faiss-cpu)");
        None
    };
    let ours = f(&search, "median_ms");
    let mut md = String::new();
    md.push_str("## export: exported graphs and shop-table search\n\n");
    md.push_str(&format!(
        "`cargo xtask bench export` on this host ({} CPUs visible), `edge` config with random \
         weights (S=192), batch 1, median of {} runs, milliseconds. The int8 graph is the \
         operator form written by `export` (QLinearConv), calibrated on random inputs (speed only).\n\n",
        std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
        args.runs
    ));
    md.push_str("| threads | tract fp32 | tract int8 | ort fp32 | ort int8 | tract int8/fp32 | tract/ort fp32 | tract/ort int8 |\n");
    md.push_str("|---|---|---|---|---|---|---|---|\n");
    for r in &model_rows {
        md.push_str(&format!("| {} |\n", r.join(" | ")));
    }
    md.push_str(&format!(
        "\nShop-table search: exact top-20 over {} items x 128 dims, one query at a time, one thread, \
         median ms per query (int8 top-20 equal to float top-20 for {:.1}% of queries).\n\n",
        args.items,
        100.0 * f(&search, "top_k_equal_float")
    ));
    md.push_str("| search | ms/query | ratio to ours |\n|---|---|---|\n");
    md.push_str(&format!("| ShopTable int8 (ours) | {ours:.3} | 1.00 |\n"));
    match &faiss {
        Some(v) => {
            let what = format!("exact top-20 search, {} x 128 items, 1 thread", args.items);
            summary.push(Row::new(
                what.clone(),
                ("ShopTable int8", ours),
                ("FAISS IndexFlatIP", f(v, "flat_ip_ms")),
                "ms",
                command,
            ));
            summary.push(Row::new(
                what,
                ("ShopTable int8", ours),
                ("FAISS SQ8", f(v, "sq8_ms")),
                "ms",
                command,
            ));
            md.push_str(&format!(
                "| FAISS IndexFlatIP (f32) | {:.3} | {:.2} |\n",
                f(v, "flat_ip_ms"),
                f(v, "flat_ip_ms") / ours
            ));
            md.push_str(&format!(
                "| FAISS IndexScalarQuantizer 8-bit | {:.3} | {:.2} |\n",
                f(v, "sq8_ms"),
                f(v, "sq8_ms") / ours
            ));
        }
        None => md.push_str("| FAISS | not installed | |\n"),
    }
    md.push('\n');
    md.push_str(&crate::benchmarks_md::rows_comment(&summary));
    println!("{md}");
    if !args.no_write {
        crate::benchmarks_md::write_section("export", &md)?;
        crate::benchmarks_md::write_summary()?;
        eprintln!("xtask: [bench export] BENCHMARKS.md updated");
    }
    Ok(())
}
