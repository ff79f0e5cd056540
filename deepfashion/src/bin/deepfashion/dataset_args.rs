//! The dataset arguments shared by the subcommands that read a benchmark.

use anyhow::Context;
use deepfashion::annotations::{load, Benchmark, Dataset, LoadOptions};
use std::path::PathBuf;

/// Which benchmark folder to read, and how strictly.
#[derive(clap::Args)]
pub struct DatasetArgs {
    /// The DeepFashion top folder or one benchmark folder.
    #[arg(long)]
    pub root: PathBuf,
    /// category-attribute, fine, inshop, consumer2shop or landmarks.
    #[arg(long)]
    pub benchmark: Benchmark,
    /// Skip malformed rows (counted and reported) instead of failing.
    #[arg(long)]
    pub lenient: bool,
}

impl DatasetArgs {
    /// Load the benchmark, with the folder named in the error.
    pub fn load(&self) -> anyhow::Result<Dataset> {
        load(
            &self.root,
            self.benchmark,
            &LoadOptions {
                lenient: self.lenient,
            },
        )
        .with_context(|| format!("reading {} from {}", self.benchmark, self.root.display()))
    }
}
