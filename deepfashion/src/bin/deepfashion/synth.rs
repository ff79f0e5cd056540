//! `deepfashion synth`: generate a synthetic DeepFashion dataset.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::Context;
use deepfashion::synth::{generate, SynthOptions};

/// Arguments of `deepfashion synth`.
///
/// Writes the four released benchmark folders (Category & Attribute with
/// coarse and fine annotations, In-shop, Consumer-to-shop, Landmark
/// Detection) in the released layout and file formats, with JPEG images.
/// `--images N` is the number of Category & Attribute images (the fine
/// annotations cover the same images); In-shop and Consumer-to-shop get
/// about N/2 images each and the Landmark benchmark about N/4. The output
/// is byte-identical for the same seed, size and image count.
#[derive(clap::Args)]
pub struct Args {
    /// Output folder (created; must not exist or be empty unless --force).
    #[arg(long)]
    pub out: PathBuf,
    /// Seed of the whole dataset.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Number of Category & Attribute images (min 10); In-shop and
    /// Consumer-to-shop get about N/2 images each, Landmark Detection N/4.
    #[arg(long, default_value_t = 2000)]
    pub images: usize,
    /// Image side in pixels (square images, 48..=999).
    #[arg(long, default_value_t = 160)]
    pub size: u32,
    /// Replace an existing non-empty output folder.
    #[arg(long)]
    pub force: bool,
    /// Rendering threads (default: all cores).
    #[arg(long)]
    pub threads: Option<usize>,
    /// No progress bar.
    #[arg(long)]
    pub quiet: bool,
}

/// Run `deepfashion synth`.
pub fn run(args: Args) -> anyhow::Result<()> {
    let opts = SynthOptions {
        seed: args.seed,
        images: args.images,
        size: args.size,
        overwrite: args.force,
    };
    let bar = if args.quiet {
        indicatif::ProgressBar::hidden()
    } else {
        let b = indicatif::ProgressBar::new(0);
        b.set_style(
            indicatif::ProgressStyle::with_template(
                "{spinner} rendering [{bar:40}] {pos}/{len} images ({per_sec}, eta {eta})",
            )
            .context("progress bar template")?
            .progress_chars("=> "),
        );
        b
    };
    let progress = |done: usize, total: usize| {
        if bar.length() != Some(total as u64) {
            bar.set_length(total as u64);
        }
        bar.set_position(done as u64);
    };
    let start = Instant::now();
    let run = || generate(&args.out, &opts, Some(&progress));
    let summary = match args.threads {
        Some(n) => rayon::ThreadPoolBuilder::new()
            .num_threads(n.max(1))
            .build()
            .context("building the rendering thread pool")?
            .install(run),
        None => run(),
    }
    .with_context(|| format!("generating a synthetic dataset in {}", args.out.display()))?;
    bar.finish_and_clear();
    println!("{summary}");
    println!(
        "  seed {}, {} px, {:.1} s",
        args.seed,
        args.size,
        start.elapsed().as_secs_f64()
    );
    Ok(())
}
