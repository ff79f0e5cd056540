//! `cargo xtask bench trainer`: one training step of the tiny and edge
//! configs in tch (`trainer bench-step`, release build) against the same
//! model in PyTorch eager (`bench/fashionnet_reference.py`), same torch, same
//! threads, same batch; prints both side by side with the ratio and
//! rewrites the trainer section of `BENCHMARKS.md` (and its summary rows).

use anyhow::Result;

use crate::benchmarks_md::Row;
use crate::env;

/// Options of `cargo xtask bench trainer`.
#[derive(clap::Args)]
pub struct Args {
    /// Configs to time (comma separated presets).
    #[arg(long, default_value = "tiny,edge", value_delimiter = ',')]
    configs: Vec<String>,
    /// Batch size.
    #[arg(long, default_value_t = 16)]
    batch: usize,
    /// Timed steps per config.
    #[arg(long, default_value_t = 10)]
    steps: usize,
    /// Warm-up steps.
    #[arg(long, default_value_t = 3)]
    warmup: usize,
    /// Threads for both implementations.
    #[arg(long, default_value_t = 2)]
    threads: usize,
    /// Do not write BENCHMARKS.md (print only).
    #[arg(long)]
    no_record: bool,
}

/// Run the benchmark.
pub fn run(args: &Args) -> Result<()> {
    env::run(
        "build trainer (release)",
        env::cargo().args(["build", "--release", "-p", "trainer", "--bin", "trainer"]),
    )?;
    let trainer = env::target_dir().join("release").join("trainer");
    let script = env::root().join("bench").join("fashionnet_reference.py");
    let mut rows = Vec::new();
    for cfg in &args.configs {
        let common = [
            "--config".to_string(),
            cfg.clone(),
            "--batch".into(),
            args.batch.to_string(),
            "--steps".into(),
            args.steps.to_string(),
            "--warmup".into(),
            args.warmup.to_string(),
            "--threads".into(),
            args.threads.to_string(),
            "--device".into(),
            "cpu".into(),
        ];
        let mut t = env::command(&trainer);
        t.arg("bench-step").args(&common).env("RUST_LOG", "warn");
        let tch = env::json_of(&format!("tch {cfg}"), &mut t)?;
        let mut p = env::command(env::venv_python());
        p.arg(&script).args(&common);
        let py = env::json_of(&format!("pytorch {cfg}"), &mut p)?;
        let ms = |v: &serde_json::Value| v["ms_per_step"].as_f64().unwrap_or(f64::NAN);
        rows.push((cfg.clone(), ms(&tch), ms(&py)));
    }
    let machine = env::cpu_model();
    let date = env::utc_now("+%Y-%m-%d %H:%M UTC");
    let command = format!(
        "cargo xtask bench trainer --batch {} --steps {} --threads {}",
        args.batch, args.steps, args.threads
    );
    let mut table = format!(
        "## trainer: one training step, tch vs PyTorch eager\n\n{date}. Command: `{command}`  \nMachine: {machine}, {} threads, CPU, torch 2.11.0 (venv) for both; {} warm-up then {} timed steps, batch {}, mean ms per step.\n\n| config | tch ms/step | PyTorch ms/step | tch / PyTorch |\n|---|---|---|---|\n",
        args.threads, args.warmup, args.steps, args.batch
    );
    let mut summary = Vec::new();
    for (cfg, t, p) in &rows {
        table.push_str(&format!("| {cfg} | {t:.1} | {p:.1} | {:.3} |\n", t / p));
        summary.push(Row::new(
            format!(
                "training step, `{cfg}`, batch {}, {} threads, CPU",
                args.batch, args.threads
            ),
            ("tch", *t),
            ("PyTorch eager", *p),
            "ms",
            &command,
        ));
    }
    table.push_str(&crate::benchmarks_md::rows_comment(&summary));
    println!("{table}");
    if !args.no_record {
        crate::benchmarks_md::write_section("trainer", &table)?;
        crate::benchmarks_md::write_summary()?;
        eprintln!("xtask: [bench trainer] BENCHMARKS.md updated");
    }
    Ok(())
}
