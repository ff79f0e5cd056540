//! `cargo xtask demo`: the main job on the built-in default. Until the demo
//! model ships, it generates a small synthetic DeepFashion set and inspects
//! it (the data path every other program reads through).

use crate::env;
use anyhow::Result;

/// Arguments of `cargo xtask demo`.
#[derive(clap::Args)]
pub struct Args {
    /// Where the synthetic data goes.
    #[arg(long, default_value = "out/demo-data")]
    pub data: String,
    /// Number of Category & Attribute images to generate.
    #[arg(long, default_value_t = 200)]
    pub images: usize,
}

/// Run the demo.
pub fn run(args: &Args) -> Result<()> {
    env::run(
        "build",
        env::cargo().args(["build", "--release", "-p", "deepfashion"]),
    )?;
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| env::root().join("target"));
    let bin = target.join("release").join("deepfashion");
    env::run(
        "synthetic data",
        env::command(&bin).args([
            "synth",
            "--out",
            &args.data,
            "--images",
            &args.images.to_string(),
            "--force",
        ]),
    )?;
    env::run(
        "inspect",
        env::command(&bin).args([
            "inspect",
            "--root",
            &args.data,
            "--benchmark",
            "category-attribute",
        ]),
    )?;
    Ok(())
}
