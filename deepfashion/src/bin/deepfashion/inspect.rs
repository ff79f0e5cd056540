//! `deepfashion inspect`: load a benchmark folder and summarize it.

use crate::dataset_args::DatasetArgs;
use deepfashion::annotations::summarize;

/// Arguments of `deepfashion inspect`.
#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    dataset: DatasetArgs,
    /// Print the summary as JSON.
    #[arg(long)]
    json: bool,
}

/// Run `deepfashion inspect`.
pub fn run(args: Args) -> anyhow::Result<()> {
    let ds = args.dataset.load()?;
    let s = summarize(&ds);
    if args.json {
        println!("{}", serde_json::to_string_pretty(&s)?);
        return Ok(());
    }
    println!("{} at {}", args.dataset.benchmark, ds.root.display());
    println!("  images: {}", ds.images.len());
    if ds.skipped_rows > 0 {
        println!("  skipped malformed rows: {}", ds.skipped_rows);
    }
    let counts = |v: &serde_json::Value| -> String {
        v.as_object()
            .map(|m| {
                m.iter()
                    .map(|(k, n)| format!("{k} {n}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            })
            .unwrap_or_default()
    };
    println!("  splits: {}", counts(&s["splits"]));
    if let Some(c) = s.get("categories") {
        let used = c
            .as_object()
            .map_or(0, |m| m.values().filter(|n| n.as_u64() != Some(0)).count());
        println!(
            "  categories: {} ({} with images)",
            ds.categories.len(),
            used
        );
        println!("    {}", counts(c));
    }
    if let Some(a) = s.get("attributes") {
        println!(
            "  attributes: {}; positives by group: {}",
            a["count"],
            counts(&a["positives_by_group"])
        );
    }
    if let Some(l) = s.get("landmarks") {
        println!("  landmark slots: {}", counts(l));
    }
    if let Some(i) = s.get("items") {
        println!("  items: {i}");
    }
    Ok(())
}
