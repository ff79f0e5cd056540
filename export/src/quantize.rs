//! Static int8 quantization: run the fp32 graph (with every quantizable
//! activation exposed as an output) on real images, derive per-tensor
//! ranges (min/max or percentile), and write the operator-form int8 graph
//! (`QLinearConv`; `QuantizeLinear`/`DequantizeLinear` only at the borders of
//! the int8 part). Weights are per-output-channel symmetric int8,
//! activations per-tensor asymmetric uint8.

use crate::images::{self, ImageRef};
use crate::infer::TractModel;
use crate::onnx::{self, fashionnet::Mode, Int8Plan, ModelInfo, Weights};
use crate::{ExportError, Result};
use deepfashion::contract::tensor_names as tn;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use tract_onnx::pb::ModelProto;

/// How activation ranges are derived from the calibration run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// Observed minimum and maximum.
    MinMax,
    /// The 0.01% and 99.99% percentiles (robust to outliers).
    Percentile,
}

impl std::str::FromStr for Method {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "minmax" => Ok(Method::MinMax),
            "percentile" => Ok(Method::Percentile),
            o => Err(format!(
                "unknown calibration method `{o}` (minmax, percentile)"
            )),
        }
    }
}

/// Layers that may be left in float with `--keep-float`.
pub fn quantizable_layers(info: &ModelInfo) -> Vec<String> {
    let cfg = &info.config;
    cfg.convs()
        .into_iter()
        .map(|c| c.0)
        .chain(cfg.linears().into_iter().map(|l| l.0))
        .collect()
}

/// Whether calibration tensor `name` is the output of one of the five head
/// layers (category and attribute logits, landmark and visibility values,
/// the embedding). Their ranges are never clipped: the extremes are the
/// answer (the top logit decides top-1), and clipping them makes the best
/// scores tie. (The 99.99th percentile of the category logits of 256
/// calibration images is below the largest logit.)
fn is_head_output(name: &str) -> bool {
    name.strip_suffix("/out")
        .is_some_and(|layer| tn::OUTPUTS.contains(&layer))
}

#[derive(Default)]
struct Observed {
    lo: f32,
    hi: f32,
    samples: Vec<f32>,
}

/// Per-tensor statistics gathered over the calibration images.
pub struct Calibrator {
    method: Method,
    stats: BTreeMap<String, Observed>,
}

const SAMPLES_PER_RUN: usize = 4096;

impl Calibrator {
    /// An empty calibrator.
    pub fn new(method: Method) -> Self {
        Self {
            method,
            stats: BTreeMap::new(),
        }
    }

    /// Record the values of tensor `name` from one run.
    pub fn observe(&mut self, name: &str, v: &[f32]) {
        let o = self.stats.entry(name.to_string()).or_insert(Observed {
            lo: f32::INFINITY,
            hi: f32::NEG_INFINITY,
            samples: Vec::new(),
        });
        for &x in v {
            o.lo = o.lo.min(x);
            o.hi = o.hi.max(x);
        }
        // Head outputs keep min/max whatever the method: no samples needed.
        if self.method == Method::Percentile && !v.is_empty() && !is_head_output(name) {
            let step = (v.len() / SAMPLES_PER_RUN).max(1);
            o.samples.extend(v.iter().step_by(step));
        }
    }

    /// The ranges per tensor. The outputs of the five head layers always get
    /// the observed minimum and maximum.
    pub fn ranges(&self) -> BTreeMap<String, (f32, f32)> {
        self.stats
            .iter()
            .map(|(k, o)| {
                let r = match self.method {
                    Method::MinMax => (o.lo, o.hi),
                    Method::Percentile => {
                        let mut s = o.samples.clone();
                        s.sort_by(|a, b| a.total_cmp(b));
                        // No samples: a head output (or an empty tensor).
                        if s.is_empty() {
                            (o.lo, o.hi)
                        } else {
                            let at = |q: f64| s[((s.len() - 1) as f64 * q).round() as usize];
                            (at(0.0001), at(0.9999))
                        }
                    }
                };
                (k.clone(), r)
            })
            .collect()
    }
}

/// The fp32 model, its metadata and weights, checked for quantization.
pub fn read_fp32(path: &Path) -> Result<(ModelInfo, Weights)> {
    let (model, info) = onnx::read_model(path)?;
    let w = onnx::weights_of(&model, &info).map_err(|reason| ExportError::Model {
        path: path.display().to_string(),
        reason,
    })?;
    Ok((info, w))
}

/// Run the calibration graph of the fp32 model on `imgs`; refuses (naming
/// it) any image that cannot be read.
pub fn calibrate(
    info: &ModelInfo,
    weights: &Weights,
    imgs: &[ImageRef],
    method: Method,
    show_progress: bool,
) -> Result<BTreeMap<String, (f32, f32)>> {
    let margin = info.preprocess.crop_margin;
    let s = info.config.input_size;
    calibrate_with(
        info,
        weights,
        imgs.len(),
        method,
        show_progress,
        |i, buf| images::preprocess(&imgs[i], s, margin, buf).map(|_| ()),
    )
}

/// Run the calibration graph on `n` inputs that `fill(i, buf)` writes.
pub fn calibrate_with(
    info: &ModelInfo,
    weights: &Weights,
    n: usize,
    method: Method,
    show_progress: bool,
    mut fill: impl FnMut(usize, &mut [f32]) -> Result<()>,
) -> Result<BTreeMap<String, (f32, f32)>> {
    if n == 0 {
        return Err(ExportError::Other("no calibration images".into()));
    }
    let proto = onnx::build_model(
        &info.config,
        &info.labels,
        &info.fingerprint,
        weights,
        Mode::Calibrate,
    );
    let model = TractModel::from_proto(proto, 1, Path::new("<calibration graph>"))?;
    let s = info.config.input_size;
    let mut buf = vec![0f32; 3 * s * s];
    let mut cal = Calibrator::new(method);
    let pb = images::progress(n, "calibrating");
    if !show_progress {
        pb.set_draw_target(indicatif::ProgressDrawTarget::hidden());
    }
    for i in 0..n {
        fill(i, &mut buf)?;
        cal.observe(tn::IMAGE, &buf);
        for o in model.run(&buf)? {
            cal.observe(&o.name, &o.data);
        }
        pb.inc(1);
    }
    pb.finish_and_clear();
    Ok(cal.ranges())
}

/// The int8 plan from calibrated ranges: post-ReLU tensors start at 0 and
/// the two inputs of the fusion concat share one range (so the concat stays
/// in uint8).
pub fn plan(mut ranges: BTreeMap<String, (f32, f32)>, keep_float: BTreeSet<String>) -> Int8Plan {
    let a = ranges.get("fc6_global/out").copied();
    let b = ranges.get("fc6_local/out").copied();
    if let (Some(a), Some(b)) = (a, b) {
        let u = (a.0.min(b.0), a.1.max(b.1));
        ranges.insert("fc6_global/out".into(), u);
        ranges.insert("fc6_local/out".into(), u);
    }
    Int8Plan { ranges, keep_float }
}

/// The int8 model for an fp32 model's weights and a plan.
pub fn int8_model(info: &ModelInfo, weights: &Weights, plan: &Int8Plan) -> ModelProto {
    onnx::build_model(
        &info.config,
        &info.labels,
        &info.fingerprint,
        weights,
        Mode::Int8(plan),
    )
}

/// Check `--keep-float` names against the model's layers.
pub fn parse_keep_float(info: &ModelInfo, list: &[String]) -> Result<BTreeSet<String>> {
    let layers = quantizable_layers(info);
    let mut out = BTreeSet::new();
    for l in list.iter().flat_map(|s| s.split(',')).map(str::trim) {
        if l.is_empty() {
            continue;
        }
        if !layers.iter().any(|x| x == l) {
            return Err(ExportError::Other(format!(
                "--keep-float: `{l}` is not a layer of this model (layers: {})",
                layers.join(", ")
            )));
        }
        out.insert(l.to_string());
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentile_clips_the_body_but_not_the_head_outputs() {
        // Ten runs of 2,000 values in [0, 1) and one outlier at 50, for two
        // inner tensors and for the category logits.
        let body: Vec<f32> = (0..2_000).map(|i| i as f32 / 2_000.0).collect();
        let mut cal = Calibrator::new(Method::Percentile);
        for name in ["conv3_3/out", "category/out", "fc7_fusion/out"] {
            for _ in 0..10 {
                cal.observe(name, &body);
            }
            cal.observe(name, &[50.0]);
        }
        let r = cal.ranges();
        assert!(r["conv3_3/out"].1 < 1.0, "{:?}", r["conv3_3/out"]);
        assert!(r["fc7_fusion/out"].1 < 1.0, "{:?}", r["fc7_fusion/out"]);
        assert_eq!(r["category/out"], (0.0, 50.0));
        assert!(tn::OUTPUTS
            .iter()
            .all(|o| is_head_output(&format!("{o}/out"))));
        assert!(!is_head_output("category") && !is_head_output("embedding/out/dq"));
    }
}
