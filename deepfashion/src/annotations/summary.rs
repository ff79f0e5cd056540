//! The `deepfashion inspect` summary of a loaded dataset.

use super::{Dataset, LandmarkState};
use serde_json::{json, Map, Value};

/// Counts that describe a dataset: `benchmark`, `images`, `skipped_rows`,
/// `splits` {name: images}, and where they apply `categories` {name:
/// images}, `attributes` {`count`, `positives_by_group` {group: positive
/// values}}, `landmarks` {visible, occluded, truncated, absent slots},
/// `items` (distinct item ids).
pub fn summarize(ds: &Dataset) -> Value {
    let mut out = Map::new();
    out.insert("benchmark".into(), json!(ds.benchmark.to_string()));
    out.insert("images".into(), json!(ds.images.len()));
    out.insert("skipped_rows".into(), json!(ds.skipped_rows));
    let mut splits = Map::new();
    for r in &ds.images {
        let e = splits.entry(r.split.clone()).or_insert(json!(0));
        *e = json!(e.as_u64().unwrap_or(0) + 1);
    }
    out.insert("splits".into(), Value::Object(splits));
    if !ds.categories.is_empty() {
        let mut counts = vec![0u64; ds.categories.len()];
        for c in ds.images.iter().filter_map(|r| r.category) {
            if let Some(n) = counts.get_mut(c) {
                *n += 1;
            }
        }
        let cats: Map<String, Value> = ds
            .categories
            .iter()
            .zip(counts)
            .map(|(c, n)| (c.name.clone(), json!(n)))
            .collect();
        out.insert("categories".into(), Value::Object(cats));
    }
    if !ds.attributes.is_empty() {
        let mut by_group = Map::new();
        for g in ds.attribute_groups() {
            by_group.insert(g, json!(0u64));
        }
        for r in &ds.images {
            let Some(v) = &r.attributes else { continue };
            for (a, &x) in ds.attributes.iter().zip(v) {
                if x == 1 {
                    if let Some(e) = by_group.get_mut(&a.group) {
                        *e = json!(e.as_u64().unwrap_or(0) + 1);
                    }
                }
            }
        }
        out.insert(
            "attributes".into(),
            json!({"count": ds.attributes.len(), "positives_by_group": by_group}),
        );
    }
    let mut lm = [0u64; 4];
    let mut any = false;
    for l in ds.images.iter().filter_map(|r| r.landmarks.as_ref()) {
        any = true;
        for s in l {
            lm[match s.state {
                LandmarkState::Visible => 0,
                LandmarkState::Occluded => 1,
                LandmarkState::Truncated => 2,
                LandmarkState::Absent => 3,
            }] += 1;
        }
    }
    if any {
        out.insert(
            "landmarks".into(),
            json!({"visible": lm[0], "occluded": lm[1], "truncated": lm[2], "absent": lm[3]}),
        );
    }
    let mut items: Vec<&str> = ds
        .images
        .iter()
        .filter_map(|r| r.item_id.as_deref())
        .collect();
    if !items.is_empty() {
        items.sort_unstable();
        items.dedup();
        out.insert("items".into(), json!(items.len()));
    }
    Value::Object(out)
}
