//! [`score`]: predictions against a loaded dataset, every metric the file
//! and the benchmark allow.

use super::{
    attribute_recall, category_topk, landmark_ne, retrieval_topk, visibility_accuracy, Prediction,
    ATTRIBUTE_KS, CATEGORY_KS, DETECTION_THRESHOLDS, RETRIEVAL_KS,
};
use crate::annotations::{Benchmark, Dataset, Landmark, Source};
use crate::contract::NUM_LANDMARKS;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};

/// Category top-k accuracy.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CategoryScores {
    /// Top-1 accuracy.
    pub top1: f64,
    /// Top-3 accuracy.
    pub top3: f64,
    /// Top-5 accuracy.
    pub top5: f64,
    /// Images scored.
    pub images: usize,
}

/// Attribute recall of one group.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GroupRecall {
    /// Top-3 recall within the group.
    pub top3: f64,
    /// Top-5 recall within the group.
    pub top5: f64,
    /// Positives of the group.
    pub positives: usize,
}

/// Attribute top-k recall, pooled.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AttributeScores {
    /// Overall top-3 recall.
    pub top3: f64,
    /// Overall top-5 recall.
    pub top5: f64,
    /// Per group (groups without positives are left out).
    pub by_group: BTreeMap<String, GroupRecall>,
    /// Images scored.
    pub images: usize,
    /// Positives (value 1) over those images.
    pub positives: usize,
}

/// Retrieval top-k accuracy.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RetrievalScores {
    /// Top-1.
    pub top1: f64,
    /// Top-5.
    pub top5: f64,
    /// Top-10.
    pub top10: f64,
    /// Top-20.
    pub top20: f64,
    /// Top-30.
    pub top30: f64,
    /// Top-40.
    pub top40: f64,
    /// Top-50.
    pub top50: f64,
    /// Queries scored.
    pub queries: usize,
    /// Gallery size.
    pub gallery: usize,
    /// Similarity used (`cosine`).
    pub similarity: String,
}

/// Landmark normalized error and detection rates.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LandmarkScores {
    /// Mean of the per-slot mean normalized errors.
    pub ne: f64,
    /// Per slot (`null` where no visible landmark).
    pub ne_by_slot: [Option<f64>; NUM_LANDMARKS],
    /// Threshold (as written, e.g. `"0.05"`) -> fraction of visible
    /// landmarks with normalized distance below it.
    pub detection_rate: BTreeMap<String, f64>,
    /// Visible landmarks counted.
    pub visible: usize,
    /// Images scored (with landmarks and a usable bbox).
    pub images: usize,
    /// Visibility classification accuracy over present slots, when the
    /// predictions carry `visibility`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub visibility_accuracy: Option<f64>,
}

/// Everything [`score`] measured.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Scores {
    /// Benchmark CLI name.
    pub benchmark: String,
    /// Split scored.
    pub split: String,
    /// Category metric, when the benchmark has categories and the
    /// predictions carry `category`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub category: Option<CategoryScores>,
    /// Attribute metric.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attributes: Option<AttributeScores>,
    /// Retrieval metric.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retrieval: Option<RetrievalScores>,
    /// Landmark metric.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub landmarks: Option<LandmarkScores>,
}

impl Scores {
    /// The headline figures for one-screen summaries, in a fixed order:
    /// `(name, value, lower_is_better)`; absent metrics are left out.
    pub fn headline(&self) -> Vec<(&'static str, f64, bool)> {
        let mut out = Vec::new();
        if let Some(c) = &self.category {
            out.push(("category top-1", c.top1, false));
            out.push(("category top-5", c.top5, false));
        }
        if let Some(a) = &self.attributes {
            out.push(("attribute recall top-5", a.top5, false));
        }
        if let Some(r) = &self.retrieval {
            out.push(("retrieval top-1", r.top1, false));
            out.push(("retrieval top-20", r.top20, false));
        }
        if let Some(l) = &self.landmarks {
            out.push(("landmark NE", l.ne, true));
            if let Some(v) = l.visibility_accuracy {
                out.push(("visibility accuracy", v, false));
            }
        }
        out
    }
}

/// A side-by-side text table of the [`Scores::headline`] figures of `a`
/// and `b` with their difference `a - b` (fractions as percentage points,
/// NE as a raw difference).
pub fn comparison_table(a_label: &str, a: &Scores, b_label: &str, b: &Scores) -> String {
    use std::fmt::Write;
    let bh = b.headline();
    let mut t = format!(
        "{:<24}{:>12}{:>12}{:>12}\n",
        "metric", a_label, b_label, "difference"
    );
    for (name, va, lower) in a.headline() {
        let Some(&(_, vb, _)) = bh.iter().find(|(n, _, _)| *n == name) else {
            continue;
        };
        let _ = if lower {
            writeln!(t, "{name:<24}{va:>12.4}{vb:>12.4}{:>+12.4}", va - vb)
        } else {
            writeln!(
                t,
                "{name:<24}{:>11.2}%{:>11.2}%{:>+9.2} pt",
                100.0 * va,
                100.0 * vb,
                100.0 * (va - vb)
            )
        };
    }
    t
}

/// Errors of [`score`].
#[derive(Debug, thiserror::Error)]
pub enum ScoreError {
    /// One prediction is unusable (line = index + 1 in a JSON-lines file).
    #[error("predictions line {line} (image `{image}`): {msg}")]
    Prediction {
        /// 1-based line.
        line: usize,
        /// Its image.
        image: String,
        /// What is wrong.
        msg: String,
    },
    /// Images of the split lack a prediction field (strict mode).
    #[error("{count} images of split `{split}` have no `{field}` prediction (first: `{first}`); predict them all, or score partially")]
    Missing {
        /// The field.
        field: &'static str,
        /// The split.
        split: String,
        /// How many images lack it.
        count: usize,
        /// The first such image.
        first: String,
    },
    /// The split is not usable for this benchmark.
    #[error("{0}")]
    Split(String),
}

/// Options of [`score_with`].
#[derive(Debug, Clone, Default)]
pub struct ScoreOptions {
    /// Score only the images that have the prediction field (default:
    /// every image of the split must have it once any prediction does).
    pub partial: bool,
}

/// The split whose records are scored when `split` is asked for: In-shop
/// has no `test` split, so `test` means its `query` split.
pub fn eval_split(benchmark: Benchmark, split: &str) -> &str {
    match (benchmark, split) {
        (Benchmark::InShop, "test") => "query",
        (_, s) => s,
    }
}

/// Indices (into `ds.images`) of every record that [`score`] needs a
/// prediction for on `split`: the split itself plus the retrieval gallery
/// (In-shop `gallery` for its `query` split; consumer-to-shop: every shop
/// image of val + test). Predicting exactly these is what `trainer eval`,
/// `export eval` and the runtime's scoring runs do.
pub fn needed_records(ds: &Dataset, split: &str) -> Vec<usize> {
    let split = eval_split(ds.benchmark, split);
    (0..ds.images.len())
        .filter(|&r| {
            let rec = &ds.images[r];
            rec.split == split
                || match ds.benchmark {
                    Benchmark::InShop => split == "query" && rec.split == "gallery",
                    Benchmark::Consumer2Shop => {
                        rec.source == Some(Source::Shop)
                            && (rec.split == "val" || rec.split == "test")
                    }
                    _ => false,
                }
        })
        .collect()
}

/// Score predictions on a split with the default (strict) options.
pub fn score(dataset: &Dataset, split: &str, preds: &[Prediction]) -> Result<Scores, ScoreError> {
    score_with(dataset, split, preds, &ScoreOptions::default())
}

fn bad(i: usize, p: &Prediction, msg: String) -> ScoreError {
    ScoreError::Prediction {
        line: i + 1,
        image: p.image.clone(),
        msg,
    }
}

/// Check every prediction: known image, no duplicate, right lengths,
/// finite values. Returns image index -> prediction index.
fn validate(ds: &Dataset, preds: &[Prediction]) -> Result<HashMap<usize, usize>, ScoreError> {
    let index = ds.index();
    let mut by_image = HashMap::with_capacity(preds.len());
    let mut dim: Option<(usize, usize)> = None;
    for (i, p) in preds.iter().enumerate() {
        let Some(&r) = index.get(p.image.as_str()) else {
            return Err(bad(
                i,
                p,
                format!("unknown image (not in {} annotations)", ds.benchmark),
            ));
        };
        if by_image.insert(r, i).is_some() {
            return Err(bad(i, p, "image predicted twice".into()));
        }
        let finite = |name: &str, v: &[f32]| {
            if v.iter().all(|x| x.is_finite()) {
                Ok(())
            } else {
                Err(bad(i, p, format!("`{name}` holds a non-finite value")))
            }
        };
        let len = |name: &str, got: usize, want: usize| {
            if got == want {
                Ok(())
            } else {
                Err(bad(
                    i,
                    p,
                    format!("`{name}` has {got} values, expected {want}"),
                ))
            }
        };
        if let Some(c) = &p.category {
            len("category", c.len(), ds.categories.len())?;
            finite("category", c)?;
        }
        if let Some(a) = &p.attributes {
            len("attributes", a.len(), ds.attributes.len())?;
            finite("attributes", a)?;
        }
        if let Some(l) = &p.landmarks {
            len("landmarks", l.len(), NUM_LANDMARKS)?;
            finite("landmarks", l.as_flattened())?;
        }
        if let Some(v) = &p.visibility {
            len("visibility", v.len(), NUM_LANDMARKS)?;
            finite("visibility", v.as_flattened())?;
        }
        if let Some(e) = &p.embedding {
            if e.is_empty() {
                return Err(bad(i, p, "`embedding` is empty".into()));
            }
            match dim {
                None => dim = Some((e.len(), i)),
                Some((d, first)) => len(
                    &format!("embedding (line {} has {d})", first + 1),
                    e.len(),
                    d,
                )?,
            }
            finite("embedding", e)?;
        }
    }
    Ok(by_image)
}

/// What [`score_with`] works from.
struct Ctx<'a> {
    ds: &'a Dataset,
    preds: &'a [Prediction],
    by_image: HashMap<usize, usize>,
    split: &'a str,
    partial: bool,
}

impl<'a> Ctx<'a> {
    /// Pairs (record index, prediction field) for the records that need
    /// `field`; strict mode fails when one lacks it.
    fn gather<T: ?Sized>(
        &self,
        recs: &[usize],
        field: &'static str,
        get: impl Fn(&'a Prediction) -> Option<&'a T>,
    ) -> Result<Vec<(usize, &'a T)>, ScoreError> {
        let mut out = Vec::with_capacity(recs.len());
        let mut missing = Vec::new();
        for &r in recs {
            match self.by_image.get(&r).and_then(|&i| get(&self.preds[i])) {
                Some(v) => out.push((r, v)),
                None => missing.push(r),
            }
        }
        if !missing.is_empty() && !self.partial {
            return Err(ScoreError::Missing {
                field,
                split: self.split.to_string(),
                count: missing.len(),
                first: self.ds.images[missing[0]].image.clone(),
            });
        }
        Ok(out)
    }
}

/// Score `preds` on `split` of `dataset`: category top-1/3/5, attribute
/// top-3/5 recall (overall and per group), retrieval top-k and landmark NE,
/// each when the benchmark has the labels and some prediction carries the
/// field. In-shop retrieval: queries = split `query` (asked as `query` or
/// `test`), gallery = split `gallery`. Consumer-to-shop: queries = consumer
/// images of the split, gallery = every shop image of val + test.
/// Predictions for images outside what the split needs are ignored; an
/// image unknown to the dataset is an error.
pub fn score_with(
    dataset: &Dataset,
    split: &str,
    preds: &[Prediction],
    opts: &ScoreOptions,
) -> Result<Scores, ScoreError> {
    let ds = dataset;
    let eval_split = eval_split(ds.benchmark, split);
    if !ds.benchmark.splits().contains(&eval_split) {
        return Err(ScoreError::Split(format!(
            "split `{split}` is not one of {} for {}",
            ds.benchmark.splits().join(", "),
            ds.benchmark
        )));
    }
    let by_image = validate(ds, preds)?;
    let ctx = Ctx {
        ds,
        preds,
        by_image,
        split,
        partial: opts.partial,
    };
    let recs: Vec<usize> = (0..ds.images.len())
        .filter(|&r| ds.images[r].split == eval_split)
        .collect();
    if recs.is_empty() {
        return Err(ScoreError::Split(format!(
            "split `{eval_split}` of {} has no images",
            ds.benchmark
        )));
    }
    let has = |f: fn(&Prediction) -> bool| preds.iter().any(f);
    let mut scores = Scores {
        benchmark: ds.benchmark.to_string(),
        split: split.to_string(),
        category: None,
        attributes: None,
        retrieval: None,
        landmarks: None,
    };

    if !ds.categories.is_empty() && has(|p| p.category.is_some()) {
        let need: Vec<usize> = recs
            .iter()
            .copied()
            .filter(|&r| ds.images[r].category.is_some())
            .collect();
        let pairs = ctx.gather(&need, "category", |p| p.category.as_deref())?;
        if !pairs.is_empty() {
            let s: Vec<Vec<f32>> = pairs.iter().map(|(_, v)| v.to_vec()).collect();
            let t: Vec<usize> = pairs
                .iter()
                .map(|(r, _)| ds.images[*r].category.unwrap_or(usize::MAX))
                .collect();
            let a = category_topk(&s, &t, &CATEGORY_KS);
            scores.category = Some(CategoryScores {
                top1: a[0],
                top3: a[1],
                top5: a[2],
                images: pairs.len(),
            });
        }
    }

    if !ds.attributes.is_empty() && has(|p| p.attributes.is_some()) {
        let need: Vec<usize> = recs
            .iter()
            .copied()
            .filter(|&r| ds.images[r].attributes.is_some())
            .collect();
        let pairs = ctx.gather(&need, "attributes", |p| p.attributes.as_deref())?;
        let names = ds.attribute_groups();
        let groups: Vec<usize> = ds
            .attributes
            .iter()
            .map(|a| names.iter().position(|n| *n == a.group).unwrap_or(0))
            .collect();
        let s: Vec<Vec<f32>> = pairs.iter().map(|(_, v)| v.to_vec()).collect();
        let t: Vec<Vec<i8>> = pairs
            .iter()
            .map(|(r, _)| ds.images[*r].attributes.clone().unwrap_or_default())
            .collect();
        let rec = attribute_recall(&s, &t, &groups, names.len(), &ATTRIBUTE_KS);
        if rec.positives > 0 {
            let mut by_group = BTreeMap::new();
            for (g, name) in names.iter().enumerate() {
                if let Some(v) = &rec.by_group[g] {
                    by_group.insert(
                        name.clone(),
                        GroupRecall {
                            top3: v[0],
                            top5: v[1],
                            positives: rec.group_positives[g],
                        },
                    );
                }
            }
            scores.attributes = Some(AttributeScores {
                top3: rec.overall[0],
                top5: rec.overall[1],
                by_group,
                images: pairs.len(),
                positives: rec.positives,
            });
        }
    }

    if has(|p| p.embedding.is_some()) {
        let sides = match ds.benchmark {
            Benchmark::InShop if eval_split == "query" => {
                let gal: Vec<usize> = (0..ds.images.len())
                    .filter(|&r| ds.images[r].split == "gallery")
                    .collect();
                Some((recs.clone(), gal))
            }
            Benchmark::Consumer2Shop => {
                let q: Vec<usize> = recs
                    .iter()
                    .copied()
                    .filter(|&r| ds.images[r].source == Some(Source::Consumer))
                    .collect();
                let gal: Vec<usize> = (0..ds.images.len())
                    .filter(|&r| {
                        let rec = &ds.images[r];
                        rec.source == Some(Source::Shop)
                            && (rec.split == "val" || rec.split == "test")
                    })
                    .collect();
                Some((q, gal))
            }
            _ => None,
        };
        if let Some((q, gal)) = sides {
            let qp = ctx.gather(&q, "embedding", |p| p.embedding.as_deref())?;
            let gp = ctx.gather(&gal, "embedding", |p| p.embedding.as_deref())?;
            if !qp.is_empty() && !gp.is_empty() {
                let item = |r: usize| ds.images[r].item_id.as_deref().unwrap_or("");
                let qv: Vec<Vec<f32>> = qp.iter().map(|(_, v)| v.to_vec()).collect();
                let qi: Vec<&str> = qp.iter().map(|(r, _)| item(*r)).collect();
                let gv: Vec<Vec<f32>> = gp.iter().map(|(_, v)| v.to_vec()).collect();
                let gi: Vec<&str> = gp.iter().map(|(r, _)| item(*r)).collect();
                let a = retrieval_topk(&qv, &qi, &gv, &gi, &RETRIEVAL_KS);
                scores.retrieval = Some(RetrievalScores {
                    top1: a[0],
                    top5: a[1],
                    top10: a[2],
                    top20: a[3],
                    top30: a[4],
                    top40: a[5],
                    top50: a[6],
                    queries: qv.len(),
                    gallery: gv.len(),
                    similarity: "cosine".into(),
                });
            }
        }
    }

    if has(|p| p.landmarks.is_some()) {
        let need: Vec<usize> = recs
            .iter()
            .copied()
            .filter(|&r| ds.images[r].landmarks.is_some() && ds.images[r].bbox.is_some())
            .collect();
        let pairs = ctx.gather(&need, "landmarks", |p| p.landmarks.as_deref())?;
        let mut p8 = Vec::with_capacity(pairs.len());
        let mut t8: Vec<[Landmark; NUM_LANDMARKS]> = Vec::with_capacity(pairs.len());
        let mut bb = Vec::with_capacity(pairs.len());
        let mut vis = Vec::new();
        let mut vis_t = Vec::new();
        for &(ri, l) in &pairs {
            let r = &ds.images[ri];
            let mut a = [[0f32; 2]; NUM_LANDMARKS];
            for (d, s) in a.iter_mut().zip(l.iter()) {
                *d = *s;
            }
            let (Some(t), Some(b)) = (r.landmarks, r.bbox) else {
                continue;
            };
            p8.push(a);
            t8.push(t);
            bb.push(b);
            let v = ctx
                .by_image
                .get(&ri)
                .and_then(|&i| preds[i].visibility.as_ref());
            if let Some(v) = v {
                let mut a = [[0f32; 3]; NUM_LANDMARKS];
                for (d, s) in a.iter_mut().zip(v.iter()) {
                    *d = *s;
                }
                vis.push(a);
                vis_t.push(t);
            }
        }
        let e = landmark_ne(&p8, &t8, &bb, &DETECTION_THRESHOLDS);
        if e.visible > 0 {
            let va = visibility_accuracy(&vis, &vis_t);
            scores.landmarks = Some(LandmarkScores {
                ne: e.ne,
                ne_by_slot: e.ne_by_slot,
                detection_rate: DETECTION_THRESHOLDS
                    .iter()
                    .zip(&e.detection_rate)
                    .map(|(t, r)| (format!("{t}"), *r))
                    .collect(),
                visible: e.visible,
                images: p8.len() - e.skipped_images,
                visibility_accuracy: va.is_finite().then_some(va),
            });
        }
    }
    Ok(scores)
}
