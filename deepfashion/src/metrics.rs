//! The evaluation metrics of DESIGN.md section 7, as pure functions over
//! slices, plus the predictions format ([`Prediction`], JSON lines) and
//! [`score`], which scores predictions against a loaded [`Dataset`]
//! (`deepfashion score` is a thin front over it).
//!
//! Conventions shared by every function here (and by the independent
//! reference `tests/score_reference.py`):
//! - Ranking is a stable sort by descending score: equal scores keep index
//!   order (lower index first). NaN scores rank last; `-0.0 == 0.0`.
//! - Retrieval uses **cosine similarity** (embeddings are L2-normalized in
//!   f64 first; a zero vector has similarity 0 with everything).
//! - Fractions are in [0, 1]; an empty denominator gives NaN from the pure
//!   functions, and [`score`] leaves such a section out.
//!
//! [`Dataset`]: crate::annotations::Dataset

mod predictions;
mod scoring;

pub use predictions::{read_predictions, write_predictions, Prediction, PredictionError};
pub use scoring::{
    comparison_table, eval_split, needed_records, score, score_with, AttributeScores,
    CategoryScores, GroupRecall, LandmarkScores, RetrievalScores, ScoreError, ScoreOptions, Scores,
};

use crate::annotations::{Landmark, LandmarkState};
use crate::contract::NUM_LANDMARKS;
use rayon::prelude::*;

/// The k of the category metric.
pub const CATEGORY_KS: [usize; 3] = [1, 3, 5];
/// The k of the attribute metric.
pub const ATTRIBUTE_KS: [usize; 2] = [3, 5];
/// The k of the retrieval metric.
pub const RETRIEVAL_KS: [usize; 7] = [1, 5, 10, 20, 30, 40, 50];
/// Normalized-distance thresholds of the landmark detection rate.
pub const DETECTION_THRESHOLDS: [f64; 4] = [0.05, 0.1, 0.15, 0.2];

/// Sort key: NaN last, `-0.0` equal to `0.0`.
fn key(v: f32) -> f32 {
    if v.is_nan() {
        f32::NEG_INFINITY
    } else if v == 0.0 {
        0.0
    } else {
        v
    }
}

/// Position of index `t` in the stable descending order of `scores`.
fn rank_of(scores: &[f32], t: usize) -> usize {
    let st = key(scores[t]);
    scores
        .iter()
        .enumerate()
        .filter(|&(j, &s)| key(s) > st || (key(s) == st && j < t))
        .count()
}

/// Indices of `idx` sorted by descending `scores` (stable: ties by index).
fn sorted_desc(scores: &[f32], idx: &mut [usize]) {
    idx.sort_by(|&a, &b| key(scores[b]).total_cmp(&key(scores[a])).then(a.cmp(&b)));
}

/// Category top-k accuracy: the fraction of images whose true category is
/// among the `k` highest scores, for each `k` in `ks`. A truth index out of
/// range counts as a miss. Empty input gives NaN.
pub fn category_topk(scores: &[Vec<f32>], truth: &[usize], ks: &[usize]) -> Vec<f64> {
    let n = scores.len().min(truth.len());
    let mut hits = vec![0usize; ks.len()];
    for (s, &t) in scores.iter().zip(truth) {
        if t >= s.len() {
            continue;
        }
        let r = rank_of(s, t);
        for (h, &k) in hits.iter_mut().zip(ks) {
            if r < k {
                *h += 1;
            }
        }
    }
    hits.iter().map(|&h| h as f64 / n as f64).collect()
}

/// Attribute top-k recall, pooled (DESIGN.md section 7).
#[derive(Debug, Clone, PartialEq)]
pub struct AttributeRecall {
    /// Per k: positives found in each image's top k (over all attributes),
    /// summed over images, divided by the total positives.
    pub overall: Vec<f64>,
    /// Per group, per k: the same with ranking restricted to the group's
    /// attributes (top `min(k, group size)` within the group); `None` for a
    /// group without positives.
    pub by_group: Vec<Option<Vec<f64>>>,
    /// Total positives (value 1) over all images.
    pub positives: usize,
    /// Positives per group.
    pub group_positives: Vec<usize>,
}

/// Attribute top-k recall: for each image rank the scores, count the
/// ground-truth positives (value 1; 0 and -1 are not positive) among the
/// top k; divide the sum over images by the sum of positives. `groups[a]`
/// is the group index (< `n_groups`) of attribute `a`. Rows whose lengths
/// disagree with `groups` are ignored.
pub fn attribute_recall(
    scores: &[Vec<f32>],
    truth: &[Vec<i8>],
    groups: &[usize],
    n_groups: usize,
    ks: &[usize],
) -> AttributeRecall {
    let a = groups.len();
    let members: Vec<Vec<usize>> = (0..n_groups)
        .map(|g| (0..a).filter(|&i| groups[i] == g).collect())
        .collect();
    let mut hits = vec![0usize; ks.len()];
    let mut ghits = vec![vec![0usize; ks.len()]; n_groups];
    let mut positives = 0usize;
    let mut gpos = vec![0usize; n_groups];
    let mut idx: Vec<usize> = Vec::with_capacity(a);
    for (s, t) in scores.iter().zip(truth) {
        if s.len() != a || t.len() != a {
            continue;
        }
        let pos = t.iter().filter(|&&v| v == 1).count();
        if pos == 0 {
            continue;
        }
        positives += pos;
        idx.clear();
        idx.extend(0..a);
        sorted_desc(s, &mut idx);
        for (h, &k) in hits.iter_mut().zip(ks) {
            *h += idx.iter().take(k).filter(|&&i| t[i] == 1).count();
        }
        for (g, m) in members.iter().enumerate() {
            let gp = m.iter().filter(|&&i| t[i] == 1).count();
            if gp == 0 {
                continue;
            }
            gpos[g] += gp;
            idx.clear();
            idx.extend_from_slice(m);
            sorted_desc(s, &mut idx);
            for (h, &k) in ghits[g].iter_mut().zip(ks) {
                *h += idx.iter().take(k).filter(|&&i| t[i] == 1).count();
            }
        }
    }
    AttributeRecall {
        overall: hits.iter().map(|&h| h as f64 / positives as f64).collect(),
        by_group: (0..n_groups)
            .map(|g| {
                (gpos[g] > 0).then(|| {
                    ghits[g]
                        .iter()
                        .map(|&h| h as f64 / gpos[g] as f64)
                        .collect()
                })
            })
            .collect(),
        positives,
        group_positives: gpos,
    }
}

fn normalized(v: &[f32]) -> Vec<f64> {
    let n = v
        .iter()
        .map(|&x| f64::from(x) * f64::from(x))
        .sum::<f64>()
        .sqrt();
    if n > 0.0 && n.is_finite() {
        v.iter().map(|&x| f64::from(x) / n).collect()
    } else {
        vec![0.0; v.len()]
    }
}

/// Retrieval top-k accuracy with cosine similarity: a query is a hit at k
/// if any of its k most similar gallery entries (stable order: ties by
/// gallery index) has the query's item. A query whose item has no gallery
/// entry is a miss. Vectors of a different length than the first query's
/// count as zero vectors. Empty queries give NaN.
pub fn retrieval_topk<T: PartialEq + Sync>(
    queries: &[Vec<f32>],
    query_items: &[T],
    gallery: &[Vec<f32>],
    gallery_items: &[T],
    ks: &[usize],
) -> Vec<f64> {
    let d = queries.first().map_or(0, Vec::len);
    let fix = |v: &Vec<f32>| {
        if v.len() == d {
            normalized(v)
        } else {
            vec![0.0; d]
        }
    };
    let g: Vec<Vec<f64>> = gallery.iter().map(fix).collect();
    let ng = g.len().min(gallery_items.len());
    let nq = queries.len().min(query_items.len());
    let ranks: Vec<Option<usize>> = (0..nq)
        .into_par_iter()
        .map(|qi| {
            let q = fix(&queries[qi]);
            let sims: Vec<f64> = g[..ng]
                .iter()
                .map(|gv| gv.iter().zip(&q).map(|(a, b)| a * b).sum())
                .collect();
            // The first matching entry in the stable order: highest
            // similarity, lowest index among equals.
            let mut best: Option<usize> = None;
            for (j, &s) in sims.iter().enumerate() {
                if gallery_items[j] == query_items[qi] && best.is_none_or(|b| s > sims[b]) {
                    best = Some(j);
                }
            }
            best.map(|b| {
                let sb = sims[b];
                sims.iter()
                    .enumerate()
                    .filter(|&(j, &s)| s > sb || (s == sb && j < b))
                    .count()
            })
        })
        .collect();
    ks.iter()
        .map(|&k| ranks.iter().filter(|r| r.is_some_and(|r| r < k)).count() as f64 / nq as f64)
        .collect()
}

/// Landmark normalized error and detection rates.
#[derive(Debug, Clone, PartialEq)]
pub struct LandmarkError {
    /// Mean over slots (with at least one visible landmark) of the slot's
    /// mean normalized distance.
    pub ne: f64,
    /// Mean normalized distance per slot; `None` where no landmark of that
    /// slot is annotated visible.
    pub ne_by_slot: [Option<f64>; NUM_LANDMARKS],
    /// Per threshold: fraction of visible landmarks (pooled over slots)
    /// whose normalized distance is strictly below it.
    pub detection_rate: Vec<f64>,
    /// Visible landmarks counted.
    pub visible: usize,
    /// Images skipped because their bbox has no positive width and height.
    pub skipped_images: usize,
}

/// Normalized distance between predicted and true landmark: x divided by
/// the bbox width, y by its height, then the L2 norm.
pub fn normalized_distance(pred: [f32; 2], truth: &Landmark, bbox: &[f32; 4]) -> f64 {
    let w = f64::from(bbox[2]) - f64::from(bbox[0]);
    let h = f64::from(bbox[3]) - f64::from(bbox[1]);
    let dx = (f64::from(pred[0]) - f64::from(truth.x)) / w;
    let dy = (f64::from(pred[1]) - f64::from(truth.y)) / h;
    (dx * dx + dy * dy).sqrt()
}

/// Landmark NE over landmarks annotated visible only: per slot the mean
/// normalized distance ([`normalized_distance`]), then the mean of the slot
/// means; plus detection rates at `thresholds`. Images whose bbox has no
/// positive width or height are skipped (counted).
pub fn landmark_ne(
    pred: &[[[f32; 2]; NUM_LANDMARKS]],
    truth: &[[Landmark; NUM_LANDMARKS]],
    bboxes: &[[f32; 4]],
    thresholds: &[f64],
) -> LandmarkError {
    let mut sum = [0f64; NUM_LANDMARKS];
    let mut cnt = [0usize; NUM_LANDMARKS];
    let mut det = vec![0usize; thresholds.len()];
    let mut skipped = 0;
    for ((p, t), b) in pred.iter().zip(truth).zip(bboxes) {
        if !(b[2] - b[0] > 0.0 && b[3] - b[1] > 0.0) {
            skipped += 1;
            continue;
        }
        for s in 0..NUM_LANDMARKS {
            if t[s].state != LandmarkState::Visible {
                continue;
            }
            let d = normalized_distance(p[s], &t[s], b);
            sum[s] += d;
            cnt[s] += 1;
            for (c, &th) in det.iter_mut().zip(thresholds) {
                if d < th {
                    *c += 1;
                }
            }
        }
    }
    let mut by_slot = [None; NUM_LANDMARKS];
    for s in 0..NUM_LANDMARKS {
        if cnt[s] > 0 {
            by_slot[s] = Some(sum[s] / cnt[s] as f64);
        }
    }
    let means: Vec<f64> = by_slot.iter().flatten().copied().collect();
    let visible: usize = cnt.iter().sum();
    LandmarkError {
        ne: means.iter().sum::<f64>() / means.len() as f64,
        ne_by_slot: by_slot,
        detection_rate: det.iter().map(|&c| c as f64 / visible as f64).collect(),
        visible,
        skipped_images: skipped,
    }
}

/// Visibility accuracy: over the slots that are not absent, the fraction
/// whose predicted class (arg max of `[p_visible, p_occluded,
/// p_truncated]`, first on ties) equals the annotated state. NaN if none.
pub fn visibility_accuracy(
    pred: &[[[f32; 3]; NUM_LANDMARKS]],
    truth: &[[Landmark; NUM_LANDMARKS]],
) -> f64 {
    let mut n = 0usize;
    let mut ok = 0usize;
    for (p, t) in pred.iter().zip(truth) {
        for s in 0..NUM_LANDMARKS {
            let want = match t[s].state {
                LandmarkState::Absent => continue,
                LandmarkState::Visible => 0,
                LandmarkState::Occluded => 1,
                LandmarkState::Truncated => 2,
            };
            let mut arg = 0;
            for c in 1..3 {
                if key(p[s][c]) > key(p[s][arg]) {
                    arg = c;
                }
            }
            n += 1;
            ok += usize::from(arg == want);
        }
    }
    ok as f64 / n as f64
}

#[cfg(test)]
mod tests;
