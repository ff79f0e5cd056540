//! The model contract: the one place that says what FashionNet is, shared by
//! the trainer (tch), the exporter (ONNX writer) and the runtime (tract).
//!
//! It holds the configuration struct (serialized into every checkpoint and
//! every exported model), the parameter names and shapes that both the tch
//! graph and the ONNX graph use, the tensor names of the exported graph, the
//! landmark slots and the preprocessing constants. Nothing here depends on
//! tch or tract.
//!
//! # Topology (see DESIGN.md section 3)
//!
//! ```text
//! image [N,3,S,S]
//!  -> conv1_1 conv1_2 pool1 -> conv2_1 conv2_2 pool2
//!  -> conv3_1 conv3_2 conv3_3 pool3 -> conv4_1 conv4_2 conv4_3   (= F4, stride 8)
//!  pose:   pool4 -> conv5_1_pose conv5_2_pose conv5_3_pose -> head_pool
//!          -> fc6_pose -> fc7_pose -> landmarks (sigmoid, [N,8,2])
//!                                  -> visibility (softmax, [N,8,3])
//!  local:  landmark_pool(F4, landmarks, p_visible) [N,8*C4] -> fc6_local
//!  global: pool4 -> conv5_1_global conv5_2_global conv5_3_global -> head_pool -> fc6_global
//!  fusion: concat(fc6_global, fc6_local) -> fc7_fusion
//!          -> category (softmax), attributes (sigmoid), embedding (L2-normalized)
//! ```
//!
//! Every conv is 3x3, stride 1, padding 1, followed by (optional batch norm
//! and) ReLU. Pools are 2x2 max pools with stride 2. `head_pool` is either a
//! 2x2 max pool (`global_pool = false`, the paper's pool5, then flatten) or
//! global average pooling (`global_pool = true`). fc6_*, fc7_* are linear
//! layers followed by ReLU (dropout while training). The heads are plain
//! linear layers. Linear weights are `[out, in]`, conv weights
//! `[out, in, 3, 3]`, as in PyTorch.
//!
//! # Landmark pooling (the "tent" form)
//!
//! The predicted landmark `(x, y)` in `[0,1]` of the crop maps to the feature
//! map position `u = x * W4 - 0.5`, `v = y * H4 - 0.5` (the `align_corners =
//! false` convention). For a `g x g` grid (default 3x3) the sample points are
//! `(u + dx, v + dy)` with `dx, dy` in `{-(g-1)/2, ..., (g-1)/2}` feature
//! cells. A point is sampled bilinearly with zero padding, written as a
//! weighted sum: weight of feature cell `(h, w)` is
//! `relu(1 - |u + dx - w|) * relu(1 - |v + dy - h|)`. So the pooled features
//! are `max_grid(Wt @ F4)` with `Wt: [N, 8*g*g, H4*W4]` and
//! `F4: [N, H4*W4, C4]`, then multiplied by `p_visible` (visibility
//! probability of class 0) per landmark, flattened to `[N, 8*C4]` in
//! landmark-major order. The trainer and the exported graph both compute
//! exactly this (matmul form; tract has no `AffineGrid`).

use serde::{Deserialize, Serialize};

/// Number of canonical landmark slots.
pub const NUM_LANDMARKS: usize = 8;

/// Names of the canonical 8 landmark slots, in slot order.
pub const LANDMARK_SLOTS: [&str; NUM_LANDMARKS] = [
    "left_collar",
    "right_collar",
    "left_sleeve",
    "right_sleeve",
    "left_waistline",
    "right_waistline",
    "left_hem",
    "right_hem",
];

/// For each slot, the slot it becomes under a horizontal flip (left <-> right).
pub const FLIP_PERMUTATION: [usize; NUM_LANDMARKS] = [1, 0, 3, 2, 5, 4, 7, 6];

/// Visibility classes predicted per slot, in output order.
pub const VISIBILITY_CLASSES: [&str; 3] = ["visible", "occluded", "truncated"];

/// ImageNet mean (RGB, on pixel values scaled to [0,1]).
pub const IMAGENET_MEAN: [f32; 3] = [0.485, 0.456, 0.406];
/// ImageNet standard deviation (RGB, on pixel values scaled to [0,1]).
pub const IMAGENET_STD: [f32; 3] = [0.229, 0.224, 0.225];

/// Default context margin around a bounding box when cropping (fraction of
/// the box's longer side added on each side before making the crop square).
pub const DEFAULT_CROP_MARGIN: f32 = 0.1;

/// Tensor names of the exported ONNX graph (DESIGN.md section 8).
pub mod tensor_names {
    /// Input: `[N,3,S,S]` f32, normalized RGB.
    pub const IMAGE: &str = "image";
    /// Output: `[N,8,2]` landmark coordinates in [0,1] of the crop.
    pub const LANDMARKS: &str = "landmarks";
    /// Output: `[N,8,3]` visibility probabilities.
    pub const VISIBILITY: &str = "visibility";
    /// Output: `[N,C]` category probabilities.
    pub const CATEGORY: &str = "category";
    /// Output: `[N,A]` attribute probabilities.
    pub const ATTRIBUTES: &str = "attributes";
    /// Output: `[N,D]` L2-normalized embedding.
    pub const EMBEDDING: &str = "embedding";
    /// All outputs in order.
    pub const OUTPUTS: [&str; 5] = [LANDMARKS, VISIBILITY, CATEGORY, ATTRIBUTES, EMBEDDING];
}

/// Where a training run keeps its checkpoints: `RUN/checkpoints/
/// step-NNNNNNNN.safetensors`. The trainer writes and resumes from this
/// layout; the exporter's users and the tests find the newest checkpoint
/// with [`run_layout::newest_checkpoint`] (no libtorch needed).
pub mod run_layout {
    use std::path::{Path, PathBuf};

    /// The checkpoint folder of a run.
    pub fn checkpoint_dir(run: &Path) -> PathBuf {
        run.join("checkpoints")
    }

    /// File name of the checkpoint at `step`.
    pub fn checkpoint_name(step: u64) -> String {
        format!("step-{step:08}.safetensors")
    }

    /// The step of a checkpoint file name, `None` for anything else
    /// (temporary files, other files).
    pub fn checkpoint_step(name: &str) -> Option<u64> {
        name.strip_prefix("step-")
            .and_then(|s| s.strip_suffix(".safetensors"))
            .and_then(|s| s.parse().ok())
    }

    /// The newest checkpoint (highest step) of a run folder, if any.
    pub fn newest_checkpoint(run: &Path) -> std::io::Result<Option<PathBuf>> {
        let dir = checkpoint_dir(run);
        if !dir.exists() {
            return Ok(None);
        }
        let mut best: Option<(u64, PathBuf)> = None;
        for e in std::fs::read_dir(&dir)? {
            let p = e?.path();
            let Some(step) = p
                .file_name()
                .and_then(|n| n.to_str())
                .and_then(checkpoint_step)
            else {
                continue;
            };
            if best.as_ref().is_none_or(|(b, _)| step > *b) {
                best = Some((step, p));
            }
        }
        Ok(best.map(|b| b.1))
    }
}

/// Keys of the metadata stored in checkpoints (safetensors `__metadata__`)
/// and in the exported ONNX `metadata_props`.
pub mod metadata_keys {
    /// [`super::ModelConfig`] as JSON.
    pub const CONFIG: &str = "fashionnet.config";
    /// [`super::Labels`] as JSON.
    pub const LABELS: &str = "fashionnet.labels";
    /// Training state (epoch, step, stage, metrics) as JSON; checkpoints only.
    pub const TRAINING_STATE: &str = "fashionnet.training_state";
    /// Model fingerprint (hex), see [`super::fingerprint`]; ONNX and tables.
    pub const FINGERPRINT: &str = "fashionnet.fingerprint";
    /// Preprocessing (input size, mean, std, crop margin) as JSON; ONNX only.
    pub const PREPROCESS: &str = "fashionnet.preprocess";
    /// Landmark slot names as JSON array; ONNX only.
    pub const LANDMARK_SLOTS: &str = "fashionnet.landmark_slots";
    /// Contract version; bump when the topology or naming changes.
    pub const CONTRACT_VERSION: &str = "fashionnet.contract_version";
}

/// Version of this contract, stored in checkpoints and models.
pub const CONTRACT_VERSION: u32 = 1;

/// Errors raised when a configuration is inconsistent.
#[derive(Debug, thiserror::Error)]
pub enum ContractError {
    /// A field has a value outside what the topology allows.
    #[error("invalid model config field `{field}`: {reason}")]
    InvalidField {
        /// The field name.
        field: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// The named built-in configuration does not exist.
    #[error("unknown model config `{0}` (known: paper, edge, tiny)")]
    UnknownPreset(String),
    /// JSON (de)serialization failed.
    #[error("model config JSON: {0}")]
    Json(#[from] serde_json::Error),
}

/// The FashionNet configuration: one struct for the `paper`, `edge` and
/// `tiny` presets, serialized with every checkpoint and exported model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelConfig {
    /// Preset name or a user-chosen name.
    pub name: String,
    /// Input side `S` in pixels (square input).
    pub input_size: usize,
    /// Channel widths of the five VGG blocks (conv1.., conv2.., conv3..,
    /// conv4.., conv5..). VGG-16: `[64, 128, 256, 512, 512]`.
    pub widths: [usize; 5],
    /// Batch norm after every conv (folded into the conv at export).
    pub batch_norm: bool,
    /// Global average pooling before the fc layers instead of pool5 + flatten.
    pub global_pool: bool,
    /// Width of fc6_pose, fc7_pose, fc6_global, fc6_local and fc7_fusion.
    pub fc_size: usize,
    /// Number of categories (50 in DeepFashion).
    pub num_categories: usize,
    /// Number of attributes (1000 coarse, 26 fine, or what the data says).
    pub num_attributes: usize,
    /// Embedding dimension `D`.
    pub embedding_dim: usize,
    /// Side `g` of the landmark-pooling grid (odd; 3 in the paper).
    pub pool_grid: usize,
    /// Dropout probability on fc layers while training.
    pub dropout: f32,
}

impl ModelConfig {
    /// The paper configuration: VGG-16 widths, S = 224, fc 4096, D = 128.
    pub fn paper() -> Self {
        Self {
            name: "paper".into(),
            input_size: 224,
            widths: [64, 128, 256, 512, 512],
            batch_norm: false,
            global_pool: false,
            fc_size: 4096,
            num_categories: 50,
            num_attributes: 1000,
            embedding_dim: 128,
            pool_grid: 3,
            dropout: 0.5,
        }
    }

    /// The board configuration: width multiplier 0.5, batch norm, global
    /// average pooling, fc 512, S = 192.
    pub fn edge() -> Self {
        Self {
            name: "edge".into(),
            input_size: 192,
            widths: [32, 64, 128, 256, 256],
            batch_norm: true,
            global_pool: true,
            fc_size: 512,
            num_categories: 50,
            num_attributes: 1000,
            embedding_dim: 128,
            pool_grid: 3,
            dropout: 0.2,
        }
    }

    /// A very small configuration for tests on two CPU cores.
    pub fn tiny() -> Self {
        Self {
            name: "tiny".into(),
            input_size: 96,
            widths: [8, 16, 32, 48, 48],
            batch_norm: true,
            global_pool: true,
            fc_size: 128,
            num_categories: 50,
            num_attributes: 1000,
            embedding_dim: 64,
            pool_grid: 3,
            dropout: 0.1,
        }
    }

    /// A built-in preset by name (`paper`, `edge`, `tiny`).
    pub fn preset(name: &str) -> Result<Self, ContractError> {
        match name {
            "paper" => Ok(Self::paper()),
            "edge" => Ok(Self::edge()),
            "tiny" => Ok(Self::tiny()),
            other => Err(ContractError::UnknownPreset(other.to_string())),
        }
    }

    /// Parse from JSON and validate.
    pub fn from_json(s: &str) -> Result<Self, ContractError> {
        let cfg: Self = serde_json::from_str(s)?;
        cfg.validate()?;
        Ok(cfg)
    }

    /// Serialize to JSON (compact, stable field order).
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("ModelConfig serializes")
    }

    /// Check that the topology is realizable.
    pub fn validate(&self) -> Result<(), ContractError> {
        let bad = |field, reason: String| Err(ContractError::InvalidField { field, reason });
        if self.input_size < 32 || !self.input_size.is_multiple_of(32) {
            return bad(
                "input_size",
                format!("{} must be a multiple of 32, at least 32", self.input_size),
            );
        }
        if self.widths.contains(&0) {
            return bad("widths", "every width must be positive".into());
        }
        if self.fc_size == 0 {
            return bad("fc_size", "must be positive".into());
        }
        if self.num_categories < 2 {
            return bad("num_categories", "need at least 2".into());
        }
        if self.num_attributes == 0 {
            return bad("num_attributes", "need at least 1".into());
        }
        if self.embedding_dim == 0 {
            return bad("embedding_dim", "must be positive".into());
        }
        if self.pool_grid == 0 || self.pool_grid.is_multiple_of(2) {
            return bad("pool_grid", format!("{} must be odd", self.pool_grid));
        }
        if !(0.0..1.0).contains(&self.dropout) {
            return bad("dropout", format!("{} must be in [0,1)", self.dropout));
        }
        Ok(())
    }

    /// Side of the conv4_3 feature map (stride 8).
    pub fn f4_side(&self) -> usize {
        self.input_size / 8
    }

    /// Channels of the conv4_3 feature map.
    pub fn f4_channels(&self) -> usize {
        self.widths[3]
    }

    /// Input width of fc6_pose / fc6_global (after `head_pool` and flatten).
    pub fn head_features(&self) -> usize {
        if self.global_pool {
            self.widths[4]
        } else {
            let side = self.input_size / 32;
            self.widths[4] * side * side
        }
    }

    /// The backbone and conv5 branch convolutions in forward order:
    /// `(name, in_channels, out_channels)`. Pools follow conv1_2, conv2_2 and
    /// conv3_3 in the backbone; each branch starts with pool4.
    pub fn convs(&self) -> Vec<(String, usize, usize)> {
        let w = self.widths;
        let mut out = Vec::new();
        let blocks: [(usize, usize); 4] = [(1, 2), (2, 2), (3, 3), (4, 3)];
        let mut cin = 3;
        for (b, n) in blocks {
            for i in 1..=n {
                out.push((format!("conv{b}_{i}"), cin, w[b - 1]));
                cin = w[b - 1];
            }
        }
        for branch in ["pose", "global"] {
            let mut cin = w[3];
            for i in 1..=3 {
                out.push((format!("conv5_{i}_{branch}"), cin, w[4]));
                cin = w[4];
            }
        }
        out
    }

    /// Names of the backbone convolutions (conv1_1 .. conv4_3) in order.
    pub fn backbone_convs(&self) -> Vec<String> {
        self.convs()
            .into_iter()
            .map(|c| c.0)
            .filter(|n| !n.starts_with("conv5"))
            .collect()
    }

    /// The linear layers: `(name, in_features, out_features)`.
    pub fn linears(&self) -> Vec<(String, usize, usize)> {
        let fc = self.fc_size;
        vec![
            ("fc6_pose".into(), self.head_features(), fc),
            ("fc7_pose".into(), fc, fc),
            ("landmarks".into(), fc, NUM_LANDMARKS * 2),
            ("visibility".into(), fc, NUM_LANDMARKS * 3),
            ("fc6_global".into(), self.head_features(), fc),
            ("fc6_local".into(), NUM_LANDMARKS * self.f4_channels(), fc),
            ("fc7_fusion".into(), 2 * fc, fc),
            ("category".into(), fc, self.num_categories),
            ("attributes".into(), fc, self.num_attributes),
            ("embedding".into(), fc, self.embedding_dim),
        ]
    }

    /// Every trainable or stored tensor with its shape, as named in
    /// checkpoints: `{conv}.weight [out,in,3,3]`, `{conv}.bias [out]`, with
    /// batch norm `{conv}.bn.weight`, `{conv}.bn.bias`, `{conv}.bn.running_mean`,
    /// `{conv}.bn.running_var` (all `[out]`); `{linear}.weight [out,in]`,
    /// `{linear}.bias [out]`.
    pub fn parameters(&self) -> Vec<(String, Vec<usize>)> {
        let mut out = Vec::new();
        for (name, cin, cout) in self.convs() {
            out.push((format!("{name}.weight"), vec![cout, cin, 3, 3]));
            out.push((format!("{name}.bias"), vec![cout]));
            if self.batch_norm {
                for t in ["weight", "bias", "running_mean", "running_var"] {
                    out.push((format!("{name}.bn.{t}"), vec![cout]));
                }
            }
        }
        for (name, fin, fout) in self.linears() {
            out.push((format!("{name}.weight"), vec![fout, fin]));
            out.push((format!("{name}.bias"), vec![fout]));
        }
        out
    }

    /// Total number of parameters (including batch-norm statistics).
    pub fn parameter_count(&self) -> usize {
        self.parameters()
            .iter()
            .map(|(_, s)| s.iter().product::<usize>())
            .sum()
    }
}

/// Batch-norm epsilon used by the trainer and folded in by the exporter.
pub const BATCH_NORM_EPS: f64 = 1e-5;

/// A category label: name and garment type (1 upper, 2 lower, 3 full).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CategoryLabel {
    /// Category name as in `list_category_cloth.txt`.
    pub name: String,
    /// 1 upper-body, 2 lower-body, 3 full-body.
    pub garment_type: u8,
}

/// An attribute label: name and group (texture, fabric, shape, part, style,
/// or the fine groups).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AttributeLabel {
    /// Attribute name as in the annotation files.
    pub name: String,
    /// Group name.
    pub group: String,
}

/// The label sets a model was trained with, stored next to its config.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Labels {
    /// Categories in output order (`len == num_categories`).
    pub categories: Vec<CategoryLabel>,
    /// Attributes in output order (`len == num_attributes`).
    pub attributes: Vec<AttributeLabel>,
}

/// Preprocessing facts carried by the exported model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Preprocess {
    /// Input side `S`.
    pub input_size: usize,
    /// Per-channel mean (RGB, [0,1] scale).
    pub mean: [f32; 3],
    /// Per-channel std (RGB, [0,1] scale).
    pub std: [f32; 3],
    /// Context margin around a bounding box; see [`crate::preprocess`].
    pub crop_margin: f32,
}

impl Preprocess {
    /// The preprocessing for a config with the ImageNet constants.
    pub fn for_config(cfg: &ModelConfig) -> Self {
        Self {
            input_size: cfg.input_size,
            mean: IMAGENET_MEAN,
            std: IMAGENET_STD,
            crop_margin: DEFAULT_CROP_MARGIN,
        }
    }
}

/// Model fingerprint: the first 16 bytes (32 hex chars) of SHA-256 over the
/// config JSON followed by every parameter (in [`ModelConfig::parameters`]
/// order) as little-endian f32 bytes. Computed by the exporter from the
/// checkpoint; tables carry it so the runtime refuses a table from another
/// model.
pub fn fingerprint<'a>(cfg: &ModelConfig, tensors: impl IntoIterator<Item = &'a [f32]>) -> String {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    h.update(cfg.to_json().as_bytes());
    for t in tensors {
        for v in t {
            h.update(v.to_le_bytes());
        }
    }
    let d = h.finalize();
    d[..16].iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presets_validate_and_roundtrip() {
        for name in ["paper", "edge", "tiny"] {
            let c = ModelConfig::preset(name).unwrap();
            c.validate().unwrap();
            assert_eq!(ModelConfig::from_json(&c.to_json()).unwrap(), c);
        }
        assert!(ModelConfig::preset("huge").is_err());
    }

    #[test]
    fn paper_has_vgg16_shapes() {
        let c = ModelConfig::paper();
        let p = c.parameters();
        let get = |n: &str| p.iter().find(|(k, _)| k == n).unwrap().1.clone();
        assert_eq!(get("conv1_1.weight"), vec![64, 3, 3, 3]);
        assert_eq!(get("conv4_3.weight"), vec![512, 512, 3, 3]);
        assert_eq!(get("conv5_3_pose.weight"), vec![512, 512, 3, 3]);
        assert_eq!(get("fc6_pose.weight"), vec![4096, 512 * 7 * 7]);
        assert_eq!(get("fc6_local.weight"), vec![4096, 8 * 512]);
        assert_eq!(get("fc7_fusion.weight"), vec![4096, 8192]);
        assert_eq!(c.backbone_convs().len(), 10);
        assert_eq!(c.convs().len(), 16);
    }

    #[test]
    fn invalid_config_names_field() {
        let mut c = ModelConfig::tiny();
        c.input_size = 100;
        let e = c.validate().unwrap_err().to_string();
        assert!(e.contains("input_size"), "{e}");
        let e = ModelConfig::from_json(r#"{"name":"x"}"#)
            .unwrap_err()
            .to_string();
        assert!(e.contains("missing field"), "{e}");
    }

    #[test]
    fn fingerprint_depends_on_weights() {
        let c = ModelConfig::tiny();
        let a = fingerprint(&c, [&[1.0f32, 2.0][..]]);
        let b = fingerprint(&c, [&[1.0f32, 2.5][..]]);
        assert_ne!(a, b);
        assert_eq!(a.len(), 32);
    }
}
