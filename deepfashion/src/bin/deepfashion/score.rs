//! `deepfashion score`: score a predictions file against a benchmark split.

use crate::dataset_args::DatasetArgs;
use anyhow::Context;
use deepfashion::metrics::{read_predictions, score_with, ScoreOptions};
use std::path::PathBuf;

/// Arguments of `deepfashion score`.
#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    dataset: DatasetArgs,
    /// Split to score (train, val, test; In-shop: query or test).
    #[arg(long, default_value = "test")]
    split: String,
    /// Predictions, JSON lines (see the crate README).
    #[arg(long)]
    predictions: PathBuf,
    /// Print the scores as JSON.
    #[arg(long)]
    json: bool,
    /// Score only the images that have predictions (default: every image
    /// of the split must have each predicted field).
    #[arg(long)]
    partial: bool,
}

/// Run `deepfashion score`.
pub fn run(args: Args) -> anyhow::Result<()> {
    let ds = args.dataset.load()?;
    let preds = read_predictions(&args.predictions)?;
    let s = score_with(
        &ds,
        &args.split,
        &preds,
        &ScoreOptions {
            partial: args.partial,
        },
    )
    .with_context(|| format!("scoring {}", args.predictions.display()))?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&s)?);
        return Ok(());
    }
    let pc = |v: f64| format!("{:.2}%", 100.0 * v);
    println!(
        "{} split {} ({} predictions)",
        s.benchmark,
        s.split,
        preds.len()
    );
    if let Some(c) = &s.category {
        println!(
            "  category ({} images): top-1 {}  top-3 {}  top-5 {}",
            c.images,
            pc(c.top1),
            pc(c.top3),
            pc(c.top5)
        );
    }
    if let Some(a) = &s.attributes {
        println!(
            "  attributes ({} images, {} positives): recall top-3 {}  top-5 {}",
            a.images,
            a.positives,
            pc(a.top3),
            pc(a.top5)
        );
        for (g, r) in &a.by_group {
            println!("    {g:<10} top-3 {}  top-5 {}", pc(r.top3), pc(r.top5));
        }
    }
    if let Some(r) = &s.retrieval {
        println!(
            "  retrieval ({} queries, gallery {}, {}): top-1 {}  top-5 {}  top-10 {}  top-20 {}  top-30 {}  top-40 {}  top-50 {}",
            r.queries,
            r.gallery,
            r.similarity,
            pc(r.top1),
            pc(r.top5),
            pc(r.top10),
            pc(r.top20),
            pc(r.top30),
            pc(r.top40),
            pc(r.top50)
        );
    }
    if let Some(l) = &s.landmarks {
        println!(
            "  landmarks ({} images, {} visible): NE {:.4}",
            l.images, l.visible, l.ne
        );
        let slots: Vec<String> = l
            .ne_by_slot
            .iter()
            .zip(deepfashion::contract::LANDMARK_SLOTS)
            .map(|(v, n)| match v {
                Some(v) => format!("{n} {v:.4}"),
                None => format!("{n} -"),
            })
            .collect();
        println!("    {}", slots.join(", "));
        let det: Vec<String> = l
            .detection_rate
            .iter()
            .map(|(t, r)| format!("<{t}: {}", pc(*r)))
            .collect();
        println!("    detection rate {}", det.join("  "));
        if let Some(v) = l.visibility_accuracy {
            println!("    visibility accuracy {}", pc(v));
        }
    }
    if s.category.is_none()
        && s.attributes.is_none()
        && s.retrieval.is_none()
        && s.landmarks.is_none()
    {
        println!("  nothing to score: the predictions carry no field this benchmark can score");
    }
    Ok(())
}
