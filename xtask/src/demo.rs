//! `cargo xtask demo`: the main job on the built-in default: live tagging
//! with `fashion-runtime tag` on the shipped demo model and shop table, from
//! the first camera or, without one, the shipped demo clip, with the preview
//! page on 127.0.0.1.
//!
//! `cargo xtask demo-assets`: remake those assets with the project's own
//! pipeline (synthetic data, CPU training of the `tiny` config, export,
//! int8 quantization, gallery table, clip) into `assets/demo/`.

use crate::env;
use anyhow::{bail, Result};
use std::path::{Path, PathBuf};

/// Arguments of `cargo xtask demo`.
#[derive(clap::Args)]
pub struct Args {
    /// Preview page address.
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub http: String,
    /// Stop after N frames (default: run until Ctrl-C).
    #[arg(long)]
    pub frames: Option<u64>,
    /// Frame source (default: /dev/video0 when present, else the demo clip).
    #[arg(long)]
    pub source: Option<String>,
}

/// Run the demo.
pub fn run(args: &Args) -> Result<()> {
    let assets = env::root().join("assets").join("demo");
    if !assets.join("fashionnet-tiny.int8.onnx").is_file() {
        bail!(
            "{} has no demo model: run `cargo xtask demo-assets` to make it",
            assets.display()
        );
    }
    // The `demo` profile (Cargo.toml): quick to compile on a fresh machine,
    // fast where the frame loop needs it.
    const PROFILE: &str = "demo";
    env::run(
        "build",
        env::cargo().args(["build", "-p", "fashion-runtime", "--profile", PROFILE]),
    )?;
    let bin = env::target_dir().join(PROFILE).join("fashion-runtime");
    eprintln!(
        "xtask: live tags below (JSON lines); preview at http://{}/ ; Ctrl-C stops. \
         The demo model knows only synthetic garments (README.md: training on DeepFashion).",
        args.http
    );
    let mut cmd = env::command(&bin);
    cmd.args(["tag", "--http", &args.http, "--jsonl", "-"]);
    if let Some(n) = args.frames {
        cmd.args(["--frames", &n.to_string()]);
    }
    if let Some(s) = &args.source {
        cmd.args(["--source", s]);
    }
    env::run("fashion-runtime tag", &mut cmd)
}

/// Arguments of `cargo xtask demo-assets`.
#[derive(clap::Args)]
pub struct AssetsArgs {
    /// Work folder (data, training run, fp32 export).
    #[arg(long, default_value = "out/demo-assets")]
    pub work: PathBuf,
    /// Training steps of the `tiny` config.
    #[arg(long, default_value_t = 1200)]
    pub steps: u64,
    /// Seed of the data and the training run.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Training device (cpu, cuda, auto).
    #[arg(long, default_value = "auto")]
    pub device: String,
}

fn s(p: &Path) -> String {
    p.display().to_string()
}

/// Remake `assets/demo/`.
pub fn assets(a: &AssetsArgs) -> Result<()> {
    env::run(
        "build",
        env::cargo().args([
            "build",
            "-p",
            "deepfashion",
            "-p",
            "trainer",
            "-p",
            "export",
        ]),
    )?;
    let bin = |name: &str| env::target_dir().join("debug").join(name);
    let work = env::root().join(&a.work);
    let out = env::root().join("assets").join("demo");
    std::fs::create_dir_all(&out)?;
    let data = work.join("data");
    let run = work.join("run");
    let seed = a.seed.to_string();
    env::run(
        "synthetic data",
        env::command(bin("deepfashion")).args([
            "synth",
            "--out",
            &s(&data),
            "--images",
            "2000",
            "--size",
            "160",
            "--seed",
            &seed,
            "--force",
            "--quiet",
        ]),
    )?;
    if run.exists() {
        std::fs::remove_dir_all(&run)?;
    }
    env::run(
        "train tiny",
        env::command(bin("trainer")).args([
            "train",
            "--data",
            &s(&data),
            "--config",
            "tiny",
            "--out",
            &s(&run),
            "--device",
            &a.device,
            "--steps",
            &a.steps.to_string(),
            "--seed",
            &seed,
        ]),
    )?;
    let ck = std::fs::read_dir(run.join("checkpoints"))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "safetensors"))
        .max()
        .ok_or_else(|| anyhow::anyhow!("no checkpoint in {}", run.display()))?;
    let fp32 = work.join("fashionnet-tiny.onnx");
    let int8 = out.join("fashionnet-tiny.int8.onnx");
    let export = bin("export");
    env::run(
        "export onnx",
        env::command(&export).args(["onnx", "--checkpoint", &s(&ck), "--out", &s(&fp32)]),
    )?;
    env::run(
        "quantize",
        env::command(&export).args([
            "quantize",
            "--model",
            &s(&fp32),
            "--calib-data",
            &s(&data),
            "--benchmark",
            "category-attribute",
            "--out",
            &s(&int8),
        ]),
    )?;
    env::run(
        "gallery",
        env::command(&export).args([
            "gallery",
            "--model",
            &s(&int8),
            "--data",
            &s(&data),
            "--benchmark",
            "inshop",
            "--split",
            "gallery",
            "--out",
            &s(&out.join("shop.table")),
        ]),
    )?;
    env::run(
        "clip",
        env::command(bin("deepfashion")).args([
            "clip",
            "--root",
            &s(&data),
            "--benchmark",
            "category-attribute",
            "--split",
            "test",
            "--images",
            "40",
            "--repeat",
            "4",
            "--out",
            &s(&out.join("demo.mjpeg")),
        ]),
    )?;
    for b in ["category-attribute", "inshop"] {
        env::run(
            &format!("eval int8 vs fp32 ({b})"),
            env::command(&export).args([
                "eval",
                "--model",
                &s(&int8),
                "--reference",
                &s(&fp32),
                "--data",
                &s(&data),
                "--benchmark",
                b,
            ]),
        )?;
    }
    eprintln!("xtask: demo assets written to {}", out.display());
    Ok(())
}
