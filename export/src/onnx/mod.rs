//! The ONNX writer: FashionNet from a checkpoint (batch norm folded into the
//! convs) as an opset-17 graph with the contract's tensor names and the
//! metadata the runtime needs, in fp32 or operator-form int8.

pub mod builder;
pub mod fashionnet;

use crate::checkpoint::Checkpoint;
use crate::{ExportError, Result};
use deepfashion::contract::{
    self, metadata_keys as mk, tensor_names as tn, Labels, ModelConfig, Preprocess,
};
use fashionnet::{Mode, Net};
use prost::Message;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;
use tract_onnx::pb::{
    tensor_proto::DataType, tensor_shape_proto::dimension::Value as DimValue,
    tensor_shape_proto::Dimension, type_proto, GraphProto, ModelProto, OperatorSetIdProto,
    StringStringEntryProto, TensorShapeProto, TypeProto, ValueInfoProto,
};

/// The ONNX opset the graphs are written for.
pub const OPSET: i64 = 17;
/// The ONNX IR version matching [`OPSET`].
pub const IR_VERSION: i64 = 8;
/// Metadata key: `fp32` or `int8`.
pub const PRECISION_KEY: &str = "fashionnet.precision";
/// Metadata key: quantization settings (JSON), int8 models only.
pub const QUANTIZATION_KEY: &str = "fashionnet.quantization";

/// Folded float weights by initializer name (`{layer}.weight`, `{layer}.bias`).
pub type Weights = HashMap<String, Vec<f32>>;

/// Fold batch norm into the convs (eps [`contract::BATCH_NORM_EPS`]):
/// `w' = w * g / sqrt(var + eps)`, `b' = (b - mean) * g / sqrt(var + eps) + beta`.
pub fn fold(ck: &Checkpoint) -> Weights {
    let cfg = &ck.config;
    let get = |n: &str| {
        ck.get(n)
            .expect("checkpoint was checked against its config")
    };
    let mut w = Weights::new();
    for (name, cin, cout) in cfg.convs() {
        let wt = get(&format!("{name}.weight"));
        let b = get(&format!("{name}.bias"));
        if cfg.batch_norm {
            let g = get(&format!("{name}.bn.weight"));
            let beta = get(&format!("{name}.bn.bias"));
            let mean = get(&format!("{name}.bn.running_mean"));
            let var = get(&format!("{name}.bn.running_var"));
            let per = cin * 9;
            let mut wf = vec![0f32; wt.len()];
            let mut bf = vec![0f32; cout];
            for o in 0..cout {
                let k = g[o] as f64 / (var[o] as f64 + contract::BATCH_NORM_EPS).sqrt();
                for i in 0..per {
                    wf[o * per + i] = (wt[o * per + i] as f64 * k) as f32;
                }
                bf[o] = ((b[o] as f64 - mean[o] as f64) * k + beta[o] as f64) as f32;
            }
            w.insert(format!("{name}.weight"), wf);
            w.insert(format!("{name}.bias"), bf);
        } else {
            w.insert(format!("{name}.weight"), wt.to_vec());
            w.insert(format!("{name}.bias"), b.to_vec());
        }
    }
    for (name, _, _) in cfg.linears() {
        for t in ["weight", "bias"] {
            let n = format!("{name}.{t}");
            w.insert(n.clone(), get(&n).to_vec());
        }
    }
    w
}

/// Per-tensor activation quantization (uint8, asymmetric) of an int8 graph.
#[derive(Debug, Clone, Default)]
pub struct Int8Plan {
    /// Calibrated float range `(min, max)` per activation tensor.
    pub ranges: BTreeMap<String, (f32, f32)>,
    /// Layers left in float.
    pub keep_float: BTreeSet<String>,
}

impl Int8Plan {
    /// Scale and zero point of tensor `t` (range widened to include 0).
    pub fn params(&self, t: &str) -> (f32, u8) {
        let (lo, hi) = self.ranges.get(t).copied().unwrap_or((0.0, 1.0));
        let (lo, hi) = (lo.min(0.0), hi.max(0.0));
        let scale = ((hi - lo) / 255.0).max(1e-8);
        let zp = (-lo / scale).round().clamp(0.0, 255.0) as u8;
        (scale, zp)
    }
}

/// What an exported model says about itself (its metadata).
#[derive(Debug, Clone)]
pub struct ModelInfo {
    /// The model configuration.
    pub config: ModelConfig,
    /// The label sets.
    pub labels: Labels,
    /// The model fingerprint.
    pub fingerprint: String,
    /// The preprocessing.
    pub preprocess: Preprocess,
    /// `fp32` or `int8`.
    pub precision: String,
}

fn tensor_info(name: &str, dt: DataType, dims: Option<Vec<DimValue>>) -> ValueInfoProto {
    ValueInfoProto {
        name: name.into(),
        r#type: Some(TypeProto {
            value: Some(type_proto::Value::TensorType(type_proto::Tensor {
                elem_type: dt as i32,
                shape: dims.map(|d| TensorShapeProto {
                    dim: d
                        .into_iter()
                        .map(|v| Dimension {
                            value: Some(v),
                            ..Default::default()
                        })
                        .collect(),
                }),
            })),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// Build the ONNX model for `cfg` with folded `weights`.
pub fn build_model(
    cfg: &ModelConfig,
    labels: &Labels,
    fingerprint: &str,
    weights: &Weights,
    mode: Mode<'_>,
) -> ModelProto {
    let mut net = Net::new(cfg, weights, mode);
    net.build();
    let n = || DimValue::DimParam("N".into());
    let d = |v: usize| DimValue::DimValue(v as i64);
    let s = cfg.input_size;
    let l = contract::NUM_LANDMARKS;
    let mut outputs = vec![
        tensor_info(tn::LANDMARKS, DataType::Float, Some(vec![n(), d(l), d(2)])),
        tensor_info(tn::VISIBILITY, DataType::Float, Some(vec![n(), d(l), d(3)])),
        tensor_info(
            tn::CATEGORY,
            DataType::Float,
            Some(vec![n(), d(cfg.num_categories)]),
        ),
        tensor_info(
            tn::ATTRIBUTES,
            DataType::Float,
            Some(vec![n(), d(cfg.num_attributes)]),
        ),
        tensor_info(
            tn::EMBEDDING,
            DataType::Float,
            Some(vec![n(), d(cfg.embedding_dim)]),
        ),
    ];
    if matches!(mode, Mode::Calibrate) {
        for t in &net.calib {
            if t != tn::IMAGE {
                outputs.push(tensor_info(t, DataType::Float, None));
            }
        }
    }
    let (precision, quant) = match mode {
        Mode::Int8(p) => (
            "int8",
            Some(
                serde_json::json!({
                    "weights": "int8 per-channel symmetric",
                    "activations": "uint8 per-tensor asymmetric",
                    "form": "operator (QLinearConv)",
                    "keep_float": p.keep_float,
                })
                .to_string(),
            ),
        ),
        _ => ("fp32", None),
    };
    let mut meta = vec![
        (mk::CONFIG, cfg.to_json()),
        (
            mk::LABELS,
            serde_json::to_string(labels).expect("labels serialize"),
        ),
        (
            mk::PREPROCESS,
            serde_json::to_string(&Preprocess::for_config(cfg)).expect("preprocess serializes"),
        ),
        (
            mk::LANDMARK_SLOTS,
            serde_json::to_string(&contract::LANDMARK_SLOTS).expect("slots serialize"),
        ),
        (mk::FINGERPRINT, fingerprint.to_string()),
        (mk::CONTRACT_VERSION, contract::CONTRACT_VERSION.to_string()),
        (PRECISION_KEY, precision.to_string()),
    ];
    if let Some(q) = quant {
        meta.push((QUANTIZATION_KEY, q));
    }
    ModelProto {
        ir_version: IR_VERSION,
        opset_import: vec![OperatorSetIdProto {
            domain: String::new(),
            version: OPSET,
        }],
        producer_name: "fashionnet-export".into(),
        producer_version: env!("CARGO_PKG_VERSION").into(),
        doc_string: format!("FashionNet `{}` ({precision})", cfg.name),
        graph: Some(GraphProto {
            name: format!("fashionnet_{}", cfg.name),
            node: net.g.nodes,
            initializer: net.g.initializers,
            input: vec![tensor_info(
                tn::IMAGE,
                DataType::Float,
                Some(vec![n(), d(3), d(s), d(s)]),
            )],
            output: outputs,
            ..Default::default()
        }),
        metadata_props: meta
            .into_iter()
            .map(|(k, v)| StringStringEntryProto {
                key: k.to_string(),
                value: v,
            })
            .collect(),
        ..Default::default()
    }
}

/// The fp32 model of a checked checkpoint.
pub fn from_checkpoint(ck: &Checkpoint) -> ModelProto {
    let w = fold(ck);
    build_model(&ck.config, &ck.labels, &ck.fingerprint(), &w, Mode::Float)
}

/// Encode and write `model` to `path` atomically.
pub fn write_model(path: &Path, model: &ModelProto) -> Result<()> {
    crate::write_atomic(path, &model.encode_to_vec())
}

/// Read an ONNX file written by this crate and its metadata.
pub fn read_model(path: &Path) -> Result<(ModelProto, ModelInfo)> {
    let bytes = std::fs::read(path).map_err(|e| ExportError::Io {
        path: path.display().to_string(),
        source: e,
    })?;
    let model = ModelProto::decode(bytes.as_slice()).map_err(|e| ExportError::Model {
        path: path.display().to_string(),
        reason: format!("not an ONNX model: {e}"),
    })?;
    let info = model_info(&model).map_err(|reason| ExportError::Model {
        path: path.display().to_string(),
        reason,
    })?;
    Ok((model, info))
}

/// The metadata of a FashionNet ONNX model.
pub fn model_info(model: &ModelProto) -> std::result::Result<ModelInfo, String> {
    let get = |k: &str| {
        model
            .metadata_props
            .iter()
            .find(|p| p.key == k)
            .map(|p| p.value.clone())
            .ok_or_else(|| format!("metadata_props has no `{k}` (not a FashionNet export?)"))
    };
    let config = ModelConfig::from_json(&get(mk::CONFIG)?).map_err(|e| e.to_string())?;
    let labels: Labels =
        serde_json::from_str(&get(mk::LABELS)?).map_err(|e| format!("{}: {e}", mk::LABELS))?;
    let preprocess: Preprocess = serde_json::from_str(&get(mk::PREPROCESS)?)
        .map_err(|e| format!("{}: {e}", mk::PREPROCESS))?;
    Ok(ModelInfo {
        config,
        labels,
        fingerprint: get(mk::FINGERPRINT)?,
        preprocess,
        precision: get(PRECISION_KEY).unwrap_or_else(|_| "fp32".into()),
    })
}

/// The folded float weights stored in an fp32 model (for quantization).
pub fn weights_of(model: &ModelProto, info: &ModelInfo) -> std::result::Result<Weights, String> {
    if info.precision != "fp32" {
        return Err(format!(
            "model is {}, quantization needs the fp32 export",
            info.precision
        ));
    }
    let graph = model.graph.as_ref().ok_or("model has no graph")?;
    let mut w = Weights::new();
    for t in &graph.initializer {
        if t.name.ends_with(".weight") || t.name.ends_with(".bias") {
            if let Some(v) = builder::tensor_f32(t) {
                w.insert(t.name.clone(), v);
            }
        }
    }
    for (name, shape) in info.config.parameters() {
        if name.contains(".bn.") {
            continue;
        }
        let n: usize = shape.iter().product();
        match w.get(&name) {
            None => return Err(format!("initializer `{name}` is missing")),
            Some(v) if v.len() != n => {
                return Err(format!(
                    "initializer `{name}` has {} values, config needs {shape:?}",
                    v.len()
                ))
            }
            _ => {}
        }
    }
    Ok(w)
}
