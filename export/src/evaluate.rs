//! Checking exported graphs: parity of two graphs in tract ([`verify`]) and
//! accuracy of one graph on a benchmark split ([`evaluate`]), scored with
//! [`deepfashion::metrics::score`] exactly like `deepfashion score`.

use crate::images::{self, ImageRef};
use crate::infer::{Prediction, TractModel};
use crate::{ExportError, Result};
use deepfashion::annotations::{Benchmark, Dataset};
use deepfashion::contract::{tensor_names as tn, NUM_LANDMARKS};
use deepfashion::metrics::{self, Scores};
use rand::{Rng, SeedableRng};
use serde::Serialize;

/// Differences of one output between two graphs.
#[derive(Debug, Clone, Serialize)]
pub struct OutputDiff {
    /// Output name.
    pub name: String,
    /// Largest absolute difference.
    pub max_abs: f32,
    /// Mean absolute difference.
    pub mean_abs: f32,
}

/// Result of [`verify`].
#[derive(Debug, Clone, Serialize)]
pub struct Parity {
    /// Inputs compared.
    pub samples: usize,
    /// Per-output differences, in contract order.
    pub outputs: Vec<OutputDiff>,
    /// Fraction of inputs whose top-1 category agrees.
    pub category_top1_agreement: f64,
}

impl Parity {
    /// The largest difference over all outputs.
    pub fn max_abs(&self) -> f32 {
        self.outputs.iter().fold(0.0, |m, o| m.max(o.max_abs))
    }
}

fn argmax(v: &[f32]) -> usize {
    v.iter()
        .enumerate()
        .fold(
            (0, f32::NEG_INFINITY),
            |b, (i, &x)| if x > b.1 { (i, x) } else { b },
        )
        .0
}

/// Seeded inputs: standard-normal-ish noise, like normalized pixels.
pub fn random_inputs(size: usize, n: usize, seed: u64) -> Vec<Vec<f32>> {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    (0..n)
        .map(|_| {
            (0..3 * size * size)
                .map(|_| (0..3).map(|_| rng.gen_range(-1.0f32..1.0)).sum::<f32>())
                .collect()
        })
        .collect()
}

/// Run `a` and `b` on every input and compare their outputs.
pub fn verify(a: &TractModel, b: &TractModel, inputs: &[Vec<f32>]) -> Result<Parity> {
    let mut sums = vec![(0f32, 0f64, 0usize); tn::OUTPUTS.len()];
    let mut agree = 0usize;
    for x in inputs {
        let pa = a.predict(x)?;
        let pb = b.predict(x)?;
        let pairs = [
            (&pa.landmarks, &pb.landmarks),
            (&pa.visibility, &pb.visibility),
            (&pa.category, &pb.category),
            (&pa.attributes, &pb.attributes),
            (&pa.embedding, &pb.embedding),
        ];
        for (k, (u, v)) in pairs.iter().enumerate() {
            if u.len() != v.len() {
                return Err(ExportError::Other(format!(
                    "output `{}` has {} values in one model and {} in the other",
                    tn::OUTPUTS[k],
                    u.len(),
                    v.len()
                )));
            }
            for (p, q) in u.iter().zip(v.iter()) {
                let d = (p - q).abs();
                sums[k].0 = sums[k].0.max(d);
                sums[k].1 += d as f64;
                sums[k].2 += 1;
            }
        }
        if argmax(&pa.category) == argmax(&pb.category) {
            agree += 1;
        }
    }
    Ok(Parity {
        samples: inputs.len(),
        outputs: tn::OUTPUTS
            .iter()
            .zip(&sums)
            .map(|(n, s)| OutputDiff {
                name: n.to_string(),
                max_abs: s.0,
                mean_abs: (s.1 / s.2.max(1) as f64) as f32,
            })
            .collect(),
        category_top1_agreement: agree as f64 / inputs.len().max(1) as f64,
    })
}

/// The images [`evaluate`] must predict for `split`
/// ([`metrics::needed_records`]: the split plus the retrieval gallery).
pub fn eval_images(ds: &Dataset, split: &str) -> Vec<ImageRef> {
    metrics::needed_records(ds, split)
        .into_iter()
        .map(|r| images::image_ref(ds, &ds.images[r]))
        .collect()
}

/// Predictions of `model` on `imgs` in the `deepfashion score` format
/// (landmarks in original pixels). Unreadable images are refused by name.
pub fn predict_images(
    model: &TractModel,
    imgs: &[ImageRef],
    show_progress: bool,
    what: &str,
) -> Result<Vec<metrics::Prediction>> {
    let s = model.info.config.input_size;
    let margin = model.info.preprocess.crop_margin;
    let mut buf = vec![0f32; 3 * s * s];
    let pb = images::progress(imgs.len(), what);
    if !show_progress {
        pb.set_draw_target(indicatif::ProgressDrawTarget::hidden());
    }
    let mut out = Vec::with_capacity(imgs.len());
    for img in imgs {
        let crop = images::preprocess(img, s, margin, &mut buf)?;
        let p: Prediction = model.predict(&buf)?;
        let mut pred = metrics::Prediction::new(img.name.clone());
        pred.landmarks = Some(
            (0..NUM_LANDMARKS)
                .map(|k| {
                    let (x, y) = crop.to_pixels(p.landmarks[2 * k], p.landmarks[2 * k + 1]);
                    [x, y]
                })
                .collect(),
        );
        pred.visibility = Some(
            (0..NUM_LANDMARKS)
                .map(|k| {
                    [
                        p.visibility[3 * k],
                        p.visibility[3 * k + 1],
                        p.visibility[3 * k + 2],
                    ]
                })
                .collect(),
        );
        pred.category = Some(p.category);
        pred.attributes = Some(p.attributes);
        pred.embedding = Some(p.embedding);
        out.push(pred);
        pb.inc(1);
    }
    pb.finish_and_clear();
    Ok(out)
}

/// Score `model` on `split` of `ds`. Predictions for outputs the benchmark
/// has no labels for (e.g. categories on In-shop) are dropped before
/// scoring.
pub fn evaluate(
    model: &TractModel,
    ds: &Dataset,
    split: &str,
    show_progress: bool,
) -> Result<Scores> {
    let imgs = eval_images(ds, split);
    if imgs.is_empty() {
        return Err(ExportError::Other(format!(
            "split `{split}` of {} has no images",
            ds.benchmark
        )));
    }
    let mut preds = predict_images(model, &imgs, show_progress, "evaluating")?;
    let cfg = &model.info.config;
    for p in &mut preds {
        if ds.categories.len() != cfg.num_categories {
            p.category = None;
        }
        if ds.attributes.len() != cfg.num_attributes {
            p.attributes = None;
        }
        if !matches!(ds.benchmark, Benchmark::InShop | Benchmark::Consumer2Shop) {
            p.embedding = None;
        }
    }
    metrics::score(ds, split, &preds).map_err(|e| ExportError::Other(format!("scoring: {e}")))
}
