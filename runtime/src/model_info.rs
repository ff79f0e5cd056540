//! What an exported FashionNet ONNX file says about itself: the contract
//! metadata in its `metadata_props` (config, labels, preprocessing, landmark
//! slots, fingerprint, contract version), its size and its graph form (plain
//! f32 or operator-form int8). Read once at start-up, before the graph is
//! handed to tract, so that a wrong file is refused with a message that says
//! which key or tensor is wrong.

use deepfashion::contract::{
    metadata_keys, tensor_names, Labels, ModelConfig, Preprocess, CONTRACT_VERSION, LANDMARK_SLOTS,
};
use serde::Serialize;
use std::path::{Path, PathBuf};
use tract_onnx::pb;

/// Errors raised while loading or checking a model.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    /// The file could not be read.
    #[error("model {path}: cannot read: {source}")]
    Io {
        /// The model file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file is not an ONNX protobuf.
    #[error("model {path}: not an ONNX model: {reason}")]
    NotOnnx {
        /// The model file.
        path: PathBuf,
        /// What the decoder said.
        reason: String,
    },
    /// A `metadata_props` key is missing or malformed.
    #[error("model {path}: metadata `{key}`: {reason}")]
    Metadata {
        /// The model file.
        path: PathBuf,
        /// The metadata key.
        key: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// Inputs or outputs do not match the contract.
    #[error("model {path}: {reason}")]
    Contract {
        /// The model file.
        path: PathBuf,
        /// What does not match (names the missing or wrong tensors).
        reason: String,
    },
    /// tract refused the graph (unsupported op, shape error...).
    #[error("model {path}: tract: {reason}")]
    Tract {
        /// The model file.
        path: PathBuf,
        /// tract's error chain.
        reason: String,
    },
}

/// How the graph computes: plain f32, or operator-form int8
/// (`QLinearConv`/`QLinearMatMul`/`ConvInteger`/`MatMulInteger`), or f32 with
/// QuantizeLinear/DequantizeLinear pairs (which tract runs in f32).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum GraphForm {
    /// No quantized operators.
    Fp32,
    /// Operator-form int8: reaches tract's int8 kernels.
    Int8,
    /// QDQ pairs around f32 operators.
    Qdq,
}

impl std::fmt::Display for GraphForm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            GraphForm::Fp32 => "fp32",
            GraphForm::Int8 => "int8",
            GraphForm::Qdq => "qdq",
        })
    }
}

/// Everything the runtime needs to use a model file alone.
#[derive(Debug, Clone, Serialize)]
pub struct ModelInfo {
    /// The model file.
    pub path: PathBuf,
    /// File size in bytes.
    pub file_bytes: u64,
    /// The FashionNet configuration (`fashionnet.config`).
    pub config: ModelConfig,
    /// Category and attribute names (`fashionnet.labels`).
    pub labels: Labels,
    /// Input size, mean, std (`fashionnet.preprocess`).
    pub preprocess: Preprocess,
    /// Landmark slot names (`fashionnet.landmark_slots`).
    pub landmark_slots: Vec<String>,
    /// Model fingerprint (`fashionnet.fingerprint`).
    pub fingerprint: String,
    /// Contract version (`fashionnet.contract_version`).
    pub contract_version: u32,
    /// Graph form, from the operator types.
    pub graph_form: GraphForm,
    /// Number of graph nodes.
    pub nodes: usize,
    /// Number of stored weight values (initializers).
    pub weights: u64,
}

impl ModelInfo {
    /// Read a model file and check its metadata against the contract.
    /// Returns the info and the decoded protobuf (for [`crate::engine`]).
    pub fn read(path: &Path) -> Result<(ModelInfo, pb::ModelProto), ModelError> {
        let bytes = std::fs::read(path).map_err(|source| ModelError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let proto = <pb::ModelProto as prost::Message>::decode(bytes.as_slice()).map_err(|e| {
            ModelError::NotOnnx {
                path: path.to_path_buf(),
                reason: e.to_string(),
            }
        })?;
        let info = Self::from_proto(path, bytes.len() as u64, &proto)?;
        Ok((info, proto))
    }

    /// Check a decoded protobuf: metadata, input and output names.
    pub fn from_proto(
        path: &Path,
        file_bytes: u64,
        proto: &pb::ModelProto,
    ) -> Result<ModelInfo, ModelError> {
        let p = || path.to_path_buf();
        let meta = |key: &'static str| -> Result<&str, ModelError> {
            proto
                .metadata_props
                .iter()
                .find(|e| e.key == key)
                .map(|e| e.value.as_str())
                .ok_or_else(|| ModelError::Metadata {
                    path: p(),
                    key,
                    reason: "missing (is this a FashionNet export?)".into(),
                })
        };
        let bad = |key: &'static str, reason: String| ModelError::Metadata {
            path: p(),
            key,
            reason,
        };
        let contract_version: u32 = meta(metadata_keys::CONTRACT_VERSION)?
            .trim()
            .parse()
            .map_err(|e| bad(metadata_keys::CONTRACT_VERSION, format!("{e}")))?;
        if contract_version != CONTRACT_VERSION {
            return Err(bad(
                metadata_keys::CONTRACT_VERSION,
                format!(
                    "model has contract {contract_version}, this runtime speaks {CONTRACT_VERSION}"
                ),
            ));
        }
        let config = ModelConfig::from_json(meta(metadata_keys::CONFIG)?)
            .map_err(|e| bad(metadata_keys::CONFIG, e.to_string()))?;
        let labels: Labels = serde_json::from_str(meta(metadata_keys::LABELS)?)
            .map_err(|e| bad(metadata_keys::LABELS, e.to_string()))?;
        if labels.categories.len() != config.num_categories
            || labels.attributes.len() != config.num_attributes
        {
            return Err(bad(
                metadata_keys::LABELS,
                format!(
                    "{} categories / {} attributes, config says {} / {}",
                    labels.categories.len(),
                    labels.attributes.len(),
                    config.num_categories,
                    config.num_attributes
                ),
            ));
        }
        let preprocess: Preprocess = serde_json::from_str(meta(metadata_keys::PREPROCESS)?)
            .map_err(|e| bad(metadata_keys::PREPROCESS, e.to_string()))?;
        if preprocess.input_size != config.input_size {
            return Err(bad(
                metadata_keys::PREPROCESS,
                format!(
                    "input_size {} but config says {}",
                    preprocess.input_size, config.input_size
                ),
            ));
        }
        let landmark_slots: Vec<String> =
            serde_json::from_str(meta(metadata_keys::LANDMARK_SLOTS)?)
                .map_err(|e| bad(metadata_keys::LANDMARK_SLOTS, e.to_string()))?;
        if landmark_slots.len() != LANDMARK_SLOTS.len() {
            return Err(bad(
                metadata_keys::LANDMARK_SLOTS,
                format!(
                    "{} slots, expected {}",
                    landmark_slots.len(),
                    LANDMARK_SLOTS.len()
                ),
            ));
        }
        let fingerprint = meta(metadata_keys::FINGERPRINT)?.trim().to_string();
        if fingerprint.is_empty() {
            return Err(bad(metadata_keys::FINGERPRINT, "empty".into()));
        }

        let graph = proto.graph.as_ref().ok_or_else(|| ModelError::Contract {
            path: p(),
            reason: "the ONNX file has no graph".into(),
        })?;
        let initializers: std::collections::HashSet<&str> =
            graph.initializer.iter().map(|t| t.name.as_str()).collect();
        let inputs: Vec<&str> = graph
            .input
            .iter()
            .map(|v| v.name.as_str())
            .filter(|n| !initializers.contains(n))
            .collect();
        if inputs != [tensor_names::IMAGE] {
            return Err(ModelError::Contract {
                path: p(),
                reason: format!(
                    "expected exactly one input `{}`, found {:?}",
                    tensor_names::IMAGE,
                    inputs
                ),
            });
        }
        let outputs: Vec<&str> = graph.output.iter().map(|v| v.name.as_str()).collect();
        let missing: Vec<&str> = tensor_names::OUTPUTS
            .iter()
            .copied()
            .filter(|n| !outputs.contains(n))
            .collect();
        if !missing.is_empty() {
            return Err(ModelError::Contract {
                path: p(),
                reason: format!(
                    "missing output(s) {} (the graph has {:?}; expected {:?})",
                    missing
                        .iter()
                        .map(|m| format!("`{m}`"))
                        .collect::<Vec<_>>()
                        .join(", "),
                    outputs,
                    tensor_names::OUTPUTS
                ),
            });
        }
        let graph_form = graph_form(graph);
        let weights = graph
            .initializer
            .iter()
            .map(|t| t.dims.iter().product::<i64>().max(0) as u64)
            .sum();
        Ok(ModelInfo {
            path: path.to_path_buf(),
            file_bytes,
            config,
            labels,
            preprocess,
            landmark_slots,
            fingerprint,
            contract_version,
            graph_form,
            nodes: graph.node.len(),
            weights,
        })
    }
}

/// Classify a graph by its operator types.
pub fn graph_form(graph: &pb::GraphProto) -> GraphForm {
    let has = |ops: &[&str]| graph.node.iter().any(|n| ops.contains(&n.op_type.as_str()));
    if has(&[
        "QLinearConv",
        "QLinearMatMul",
        "ConvInteger",
        "MatMulInteger",
    ]) {
        GraphForm::Int8
    } else if has(&["QuantizeLinear", "DequantizeLinear"]) {
        GraphForm::Qdq
    } else {
        GraphForm::Fp32
    }
}
