//! Reading a trainer checkpoint (safetensors with the config, labels and
//! training state in its metadata) and checking it against its config; plus
//! [`write_random`], which writes a random-weight checkpoint in the same
//! format for tests and benchmarks.

use crate::{ExportError, Result};
use deepfashion::contract::{
    self, metadata_keys, AttributeLabel, CategoryLabel, Labels, ModelConfig,
};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use safetensors::{Dtype, SafeTensors};
use std::collections::HashMap;
use std::path::Path;

/// A checkpoint checked against its config: every tensor of
/// [`ModelConfig::parameters`] with the right shape, f32.
#[derive(Debug, Clone)]
pub struct Checkpoint {
    /// The model configuration stored in the checkpoint.
    pub config: ModelConfig,
    /// The label sets stored in the checkpoint.
    pub labels: Labels,
    /// The training state JSON, when present.
    pub training_state: Option<String>,
    /// Tensors in [`ModelConfig::parameters`] order: name, shape, values.
    pub tensors: Vec<(String, Vec<usize>, Vec<f32>)>,
}

impl Checkpoint {
    /// The values of the tensor `name`.
    pub fn get(&self, name: &str) -> Option<&[f32]> {
        self.tensors
            .iter()
            .find(|t| t.0 == name)
            .map(|t| t.2.as_slice())
    }

    /// The model fingerprint ([`contract::fingerprint`] over the parameters
    /// in contract order).
    pub fn fingerprint(&self) -> String {
        contract::fingerprint(&self.config, self.tensors.iter().map(|t| t.2.as_slice()))
    }
}

/// Read and check the checkpoint at `path`. Refuses missing metadata, an
/// invalid config, labels that do not match the config, and any tensor that
/// is missing, not f32, or shaped differently from the config (naming the
/// tensor and both shapes).
pub fn load(path: &Path) -> Result<Checkpoint> {
    let bytes = std::fs::read(path).map_err(|e| ExportError::Io {
        path: path.display().to_string(),
        source: e,
    })?;
    let bad = |reason: String| ExportError::Checkpoint {
        path: path.display().to_string(),
        reason,
    };
    let (_, meta) = SafeTensors::read_metadata(&bytes)
        .map_err(|e| bad(format!("not a safetensors file: {e:?}")))?;
    let empty = HashMap::new();
    let md = meta.metadata().as_ref().unwrap_or(&empty);
    let cfg_json = md
        .get(metadata_keys::CONFIG)
        .ok_or_else(|| bad(format!("metadata has no `{}`", metadata_keys::CONFIG)))?;
    let config = ModelConfig::from_json(cfg_json)
        .map_err(|e| bad(format!("metadata `{}`: {e}", metadata_keys::CONFIG)))?;
    let labels_json = md
        .get(metadata_keys::LABELS)
        .ok_or_else(|| bad(format!("metadata has no `{}`", metadata_keys::LABELS)))?;
    let labels: Labels = serde_json::from_str(labels_json)
        .map_err(|e| bad(format!("metadata `{}`: {e}", metadata_keys::LABELS)))?;
    if labels.categories.len() != config.num_categories {
        return Err(bad(format!(
            "labels have {} categories, config says num_categories = {}",
            labels.categories.len(),
            config.num_categories
        )));
    }
    if labels.attributes.len() != config.num_attributes {
        return Err(bad(format!(
            "labels have {} attributes, config says num_attributes = {}",
            labels.attributes.len(),
            config.num_attributes
        )));
    }
    let st = SafeTensors::deserialize(&bytes).map_err(|e| bad(format!("{e:?}")))?;
    let mut tensors = Vec::new();
    for (name, shape) in config.parameters() {
        let view = st.tensor(&name).map_err(|_| {
            bad(format!(
                "tensor `{name}` (shape {shape:?}) required by config `{}` is missing",
                config.name
            ))
        })?;
        if view.shape() != shape.as_slice() {
            return Err(bad(format!(
                "tensor `{name}` has shape {:?}, config `{}` needs {shape:?}",
                view.shape(),
                config.name
            )));
        }
        if view.dtype() != Dtype::F32 {
            return Err(bad(format!(
                "tensor `{name}` is {:?}, expected F32",
                view.dtype()
            )));
        }
        let data: Vec<f32> = view
            .data()
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect();
        if let Some(i) = data.iter().position(|v| !v.is_finite()) {
            return Err(bad(format!("tensor `{name}` value {i} is not finite")));
        }
        tensors.push((name, shape, data));
    }
    let known: std::collections::HashSet<&str> = tensors.iter().map(|t| t.0.as_str()).collect();
    let extra: Vec<String> = st
        .names()
        .into_iter()
        .filter(|n| !known.contains(n.as_str()))
        .cloned()
        .collect();
    if !extra.is_empty() {
        tracing::warn!(
            "checkpoint {}: ignoring {} tensors not in the contract (e.g. `{}`)",
            path.display(),
            extra.len(),
            extra[0]
        );
    }
    Ok(Checkpoint {
        config,
        labels,
        training_state: md.get(metadata_keys::TRAINING_STATE).cloned(),
        tensors,
    })
}

/// Placeholder label names for a config (`category_0`, ..., groups cycling
/// through the five coarse attribute groups).
pub fn placeholder_labels(cfg: &ModelConfig) -> Labels {
    const GROUPS: [&str; 5] = ["texture", "fabric", "shape", "part", "style"];
    Labels {
        categories: (0..cfg.num_categories)
            .map(|i| CategoryLabel {
                name: format!("category_{i}"),
                garment_type: (i % 3 + 1) as u8,
            })
            .collect(),
        attributes: (0..cfg.num_attributes)
            .map(|i| AttributeLabel {
                name: format!("attribute_{i}"),
                group: GROUPS[i % 5].to_string(),
            })
            .collect(),
    }
}

/// Random parameters for `cfg` (He-scaled weights, batch-norm statistics
/// away from identity so that folding is exercised), in contract order.
pub fn random_tensors(cfg: &ModelConfig, seed: u64) -> Vec<(String, Vec<usize>, Vec<f32>)> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut out = Vec::new();
    for (name, shape) in cfg.parameters() {
        let n: usize = shape.iter().product();
        let fan_in: usize = shape.iter().skip(1).product::<usize>().max(1);
        let mut uni =
            |lo: f32, hi: f32| -> Vec<f32> { (0..n).map(|_| rng.gen_range(lo..hi)).collect() };
        let data = if name.ends_with("bn.running_var") {
            uni(0.5, 1.5)
        } else if name.ends_with("bn.weight") {
            uni(0.6, 1.4)
        } else if name.ends_with("bn.bias") || name.ends_with("bn.running_mean") {
            uni(-0.2, 0.2)
        } else if name.ends_with(".bias") {
            uni(-0.05, 0.05)
        } else {
            // Uniform with variance 2 / fan_in (He).
            let a = (6.0 / fan_in as f32).sqrt();
            uni(-a, a)
        };
        out.push((name, shape, data));
    }
    out
}

/// Write a checkpoint with `tensors` in the trainer's format (atomically).
pub fn write(
    path: &Path,
    cfg: &ModelConfig,
    labels: &Labels,
    training_state: &str,
    tensors: &[(String, Vec<usize>, Vec<f32>)],
) -> Result<()> {
    let bytes: Vec<Vec<u8>> = tensors
        .iter()
        .map(|t| t.2.iter().flat_map(|v| v.to_le_bytes()).collect())
        .collect();
    let views = tensors
        .iter()
        .zip(&bytes)
        .map(|(t, b)| {
            safetensors::tensor::TensorView::new(Dtype::F32, t.1.clone(), b)
                .map(|v| (t.0.clone(), v))
                .map_err(|e| ExportError::Other(format!("tensor `{}`: {e:?}", t.0)))
        })
        .collect::<Result<Vec<_>>>()?;
    let mut md = HashMap::new();
    md.insert(metadata_keys::CONFIG.to_string(), cfg.to_json());
    md.insert(
        metadata_keys::LABELS.to_string(),
        serde_json::to_string(labels).map_err(|e| ExportError::Other(e.to_string()))?,
    );
    md.insert(
        metadata_keys::TRAINING_STATE.to_string(),
        training_state.to_string(),
    );
    let out = safetensors::serialize(views, &Some(md))
        .map_err(|e| ExportError::Other(format!("serializing checkpoint: {e:?}")))?;
    crate::write_atomic(path, &out)
}

/// Write a random-weight checkpoint for `cfg` (test and benchmark helper).
pub fn write_random(cfg: &ModelConfig, labels: &Labels, seed: u64, path: &Path) -> Result<()> {
    write(
        path,
        cfg,
        labels,
        r#"{"epoch":0,"step":0,"stage":"random"}"#,
        &random_tensors(cfg, seed),
    )
}
