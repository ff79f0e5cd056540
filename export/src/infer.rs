//! Running an exported graph in tract (the engine the runtime uses), for
//! calibration, verification, evaluation and gallery embedding.

use crate::onnx::{model_info, ModelInfo};
use crate::{ExportError, Result};
use deepfashion::contract::tensor_names as tn;
use prost::Message;
use std::path::Path;
use std::sync::Arc;
use tract_onnx::pb::ModelProto;
use tract_onnx::prelude::*;

/// One output of a run: name, shape, values.
#[derive(Debug, Clone)]
pub struct Output {
    /// Tensor name.
    pub name: String,
    /// Shape.
    pub shape: Vec<usize>,
    /// Values, row-major.
    pub data: Vec<f32>,
}

/// An exported model loaded and optimized in tract for a fixed batch size.
pub struct TractModel {
    plan: Arc<TypedRunnableModel>,
    /// The model's metadata.
    pub info: ModelInfo,
    /// The batch size the plan was built for.
    pub batch: usize,
    outputs: Vec<String>,
}

fn tract_err(path: &Path) -> impl Fn(anyhow::Error) -> ExportError + '_ {
    move |e| ExportError::Tract(format!("{}: {e:#}", path.display()))
}

impl TractModel {
    /// Load the model at `path` with batch size `batch`.
    pub fn load(path: &Path, batch: usize) -> Result<Self> {
        let bytes = std::fs::read(path).map_err(|e| ExportError::Io {
            path: path.display().to_string(),
            source: e,
        })?;
        let proto = ModelProto::decode(bytes.as_slice()).map_err(|e| ExportError::Model {
            path: path.display().to_string(),
            reason: format!("not an ONNX model: {e}"),
        })?;
        Self::from_proto(proto, batch, path)
    }

    /// Load a model held in memory (`path` is only used in messages).
    pub fn from_proto(proto: ModelProto, batch: usize, path: &Path) -> Result<Self> {
        let info = model_info(&proto).map_err(|reason| ExportError::Model {
            path: path.display().to_string(),
            reason,
        })?;
        let outputs: Vec<String> = proto
            .graph
            .as_ref()
            .map(|g| g.output.iter().map(|o| o.name.clone()).collect())
            .unwrap_or_default();
        let s = info.config.input_size;
        let plan = tract_onnx::onnx()
            .model_for_proto_model(&proto)
            .and_then(|m| m.with_input_fact(0, f32::fact([batch, 3, s, s]).into()))
            // The same graph the runtime runs (int8: fused requantization).
            .and_then(|m| tract_requant::into_optimized(m.into_typed()?))
            .and_then(|m| m.into_runnable())
            .map_err(tract_err(path))?;
        Ok(Self {
            plan,
            info,
            batch,
            outputs,
        })
    }

    /// Output names in order.
    pub fn output_names(&self) -> &[String] {
        &self.outputs
    }

    /// Run on `input` (`batch x 3 x S x S` values).
    pub fn run(&self, input: &[f32]) -> Result<Vec<Output>> {
        let s = self.info.config.input_size;
        let t = tract_ndarray::Array4::from_shape_vec((self.batch, 3, s, s), input.to_vec())
            .map_err(|e| ExportError::Tract(format!("input: {e}")))?;
        let res = self
            .plan
            .run(tvec!(Tensor::from(t).into()))
            .map_err(|e| ExportError::Tract(format!("run: {e:#}")))?;
        let mut out = Vec::with_capacity(res.len());
        for (name, v) in self.outputs.iter().zip(res) {
            let v = v
                .cast_to::<f32>()
                .map_err(|e| ExportError::Tract(format!("output {name}: {e:#}")))?;
            let data = v
                .to_plain_array_view::<f32>()
                .map_err(|e| ExportError::Tract(format!("output {name}: {e:#}")))?
                .iter()
                .copied()
                .collect();
            out.push(Output {
                name: name.clone(),
                shape: v.shape().to_vec(),
                data,
            });
        }
        Ok(out)
    }

    /// The five contract outputs of one run, by name.
    pub fn predict(&self, input: &[f32]) -> Result<Prediction> {
        let outs = self.run(input)?;
        let take = |n: &str| {
            outs.iter()
                .find(|o| o.name == n)
                .map(|o| o.data.clone())
                .ok_or_else(|| ExportError::Tract(format!("model has no output `{n}`")))
        };
        Ok(Prediction {
            landmarks: take(tn::LANDMARKS)?,
            visibility: take(tn::VISIBILITY)?,
            category: take(tn::CATEGORY)?,
            attributes: take(tn::ATTRIBUTES)?,
            embedding: take(tn::EMBEDDING)?,
        })
    }

    /// Time every node of the optimized plan over `runs` runs on `input`,
    /// summed per node, slowest first: which ops (and which matmul kernels)
    /// a frame's time goes to.
    pub fn profile(&self, input: &[f32], runs: usize) -> Result<Vec<NodeTime>> {
        let s = self.info.config.input_size;
        let t = tract_ndarray::Array4::from_shape_vec((self.batch, 3, s, s), input.to_vec())
            .map_err(|e| ExportError::Tract(format!("input: {e}")))?;
        let t: Tensor = t.into();
        let mut totals = vec![std::time::Duration::ZERO; self.plan.model().nodes().len()];
        let mut state = tract_onnx::tract_core::plan::SimpleState::new(&self.plan)
            .map_err(|e| ExportError::Tract(format!("state: {e:#}")))?;
        for _ in 0..runs.max(1) {
            state
                .run_plan_with_eval(tvec!(t.clone().into()), |ctx, st, node, inputs| {
                    let start = std::time::Instant::now();
                    let r = tract_onnx::tract_core::plan::eval(ctx, st, node, inputs);
                    totals[node.id] += start.elapsed();
                    r
                })
                .map_err(|e| ExportError::Tract(format!("run: {e:#}")))?;
        }
        let n = runs.max(1) as f64;
        let mut rows: Vec<NodeTime> = self
            .plan
            .model()
            .nodes()
            .iter()
            .map(|node| NodeTime {
                name: node.name.clone(),
                op: node.op.name().to_string(),
                info: node.op.info().unwrap_or_default().join("; "),
                output: node
                    .outputs
                    .first()
                    .map(|o| format!("{:?}", o.fact))
                    .unwrap_or_default(),
                millis: totals[node.id].as_secs_f64() * 1e3 / n,
            })
            .collect();
        rows.sort_by(|a, b| b.millis.total_cmp(&a.millis));
        Ok(rows)
    }

    /// Names of the ops of the optimized plan with their counts (to see
    /// which kernels tract selected, e.g. quantized matmuls).
    pub fn op_census(&self) -> Vec<(String, usize)> {
        let mut m = std::collections::BTreeMap::<String, usize>::new();
        for node in self.plan.model().nodes() {
            *m.entry(node.op.name().to_string()).or_default() += 1;
        }
        m.into_iter().collect()
    }

    /// Debug descriptions of the optimized ops whose name contains `pat`.
    pub fn describe_ops(&self, pat: &str) -> Vec<String> {
        self.plan
            .model()
            .nodes()
            .iter()
            .filter(|n| n.op.name().contains(pat))
            .map(|n| {
                format!(
                    "{} {}: {:?}",
                    n.name,
                    n.op.name(),
                    n.op.info().unwrap_or_default()
                )
            })
            .collect()
    }
}

/// Mean time of one node of the optimized plan per run.
#[derive(Debug, Clone, serde::Serialize)]
pub struct NodeTime {
    /// Node name (derived from the ONNX node it came from).
    pub name: String,
    /// Tract op name (`OptMatMul`, `Im2col`, ...).
    pub op: String,
    /// Tract's description of the op (for matmuls: the kernel it selected).
    pub info: String,
    /// The first output's type and shape.
    pub output: String,
    /// Milliseconds per run.
    pub millis: f64,
}

/// The five outputs for a batch, flattened.
#[derive(Debug, Clone)]
pub struct Prediction {
    /// `[N,8,2]`.
    pub landmarks: Vec<f32>,
    /// `[N,8,3]`.
    pub visibility: Vec<f32>,
    /// `[N,C]`.
    pub category: Vec<f32>,
    /// `[N,A]`.
    pub attributes: Vec<f32>,
    /// `[N,D]`.
    pub embedding: Vec<f32>,
}
