//! The inference engine: a checked FashionNet graph, optimized by tract for
//! batch 1, with its input tensor and output buffers allocated once.
//!
//! "Load and check" ([`Engine::load`]) is apart from "run a frame"
//! ([`Engine::run`]): everything that can be checked (input size, output
//! names and shapes, label counts) is checked at load time, so a frame never
//! fails for a reason that was knowable at start-up.
//!
//! Per frame the caller writes the normalized crop into
//! [`Engine::input_mut`] (a view into the reused input tensor), calls
//! [`Engine::run`], and reads [`Engine::outputs`] (fixed buffers copied out
//! of tract's result). Our side allocates nothing per frame; tract's
//! `SimpleState::run` itself allocates its intermediate tensors (measured in
//! `tests/no_alloc.rs`).

use crate::model_info::{ModelError, ModelInfo};
use deepfashion::contract::{tensor_names, NUM_LANDMARKS};
use std::path::Path;
use std::sync::Arc;
use tract_onnx::prelude::*;
use tract_onnx::tract_core::knobs::KnobScope;
use tract_onnx::tract_core::plan::{SimplePlan, SimpleState};
use tract_onnx::tract_core::runtime::RunOptions;

/// Knobs that change how tract prepares and runs the graph.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EngineOptions {
    /// Threads for matrix products (1 = single-threaded).
    pub threads: usize,
    /// Set tract's `TRACT_DISABLE_DIRECT_SPATIAL` while optimizing (im2col
    /// instead of the direct spatial convolution).
    pub disable_direct_spatial: bool,
}

impl Default for EngineOptions {
    fn default() -> Self {
        Self {
            threads: 1,
            disable_direct_spatial: false,
        }
    }
}

/// The raw model outputs of one frame, copied out of tract into buffers
/// sized at load time.
#[derive(Debug, Clone)]
pub struct RawOutputs {
    /// `[8][2]` landmark positions in [0,1] of the crop.
    pub landmarks: [[f32; 2]; NUM_LANDMARKS],
    /// `[8][3]` visibility probabilities (visible, occluded, truncated).
    pub visibility: [[f32; 3]; NUM_LANDMARKS],
    /// `C` category probabilities.
    pub category: Vec<f32>,
    /// `A` attribute probabilities.
    pub attributes: Vec<f32>,
    /// `D` L2-normalized embedding.
    pub embedding: Vec<f32>,
}

type Plan = SimplePlan<TypedFact, Box<dyn TypedOp>>;

/// A loaded, checked, optimized model ready to run frames.
pub struct Engine {
    info: ModelInfo,
    options: EngineOptions,
    state: SimpleState<TypedFact, Box<dyn TypedOp>>,
    /// The plan's executor: with several threads, each run happens on one
    /// of its threads (see [`Engine::run`]).
    executor: tract_linalg::multithread::Executor,
    input: Arc<Tensor>,
    /// Output index in the plan for landmarks, visibility, category,
    /// attributes, embedding (contract order).
    output_index: [usize; 5],
    outputs: RawOutputs,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("model", &self.info.path)
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

impl Engine {
    /// Read, check, optimize for batch 1 and prepare a model file.
    pub fn load(path: &Path, options: EngineOptions) -> Result<Engine, ModelError> {
        let (info, proto) = ModelInfo::read(path)?;
        Self::from_proto(info, &proto, options)
    }

    /// Prepare an already-read model.
    pub fn from_proto(
        info: ModelInfo,
        proto: &tract_onnx::pb::ModelProto,
        options: EngineOptions,
    ) -> Result<Engine, ModelError> {
        let path = info.path.clone();
        let tract_err = |e: anyhow::Error| ModelError::Tract {
            path: path.clone(),
            reason: format!("{e:#}"),
        };
        let s = info.config.input_size;
        let knobs: Vec<(&str, &str)> = if options.disable_direct_spatial {
            vec![("TRACT_DISABLE_DIRECT_SPATIAL", "true")]
        } else {
            vec![]
        };
        let scope = KnobScope::new(knobs).map_err(tract_err)?;
        let optimized = scope
            .enter(|| -> TractResult<TypedModel> {
                let mut model = tract_onnx::onnx().model_for_proto_model(proto)?;
                model.set_input_fact(0, f32::fact([1, 3, s, s]).into())?;
                // int8 graphs: one pass per requantization instead of four.
                tract_requant::into_optimized(model.into_typed()?)
            })
            .map_err(tract_err)?;

        // Output names in the order tract keeps them (the graph's order).
        let graph_outputs: Vec<String> = proto
            .graph
            .as_ref()
            .map(|g| g.output.iter().map(|o| o.name.clone()).collect())
            .unwrap_or_default();
        let mut output_index = [0usize; 5];
        for (k, name) in tensor_names::OUTPUTS.iter().enumerate() {
            output_index[k] = graph_outputs
                .iter()
                .position(|o| o == name)
                .ok_or_else(|| ModelError::Contract {
                    path: path.clone(),
                    reason: format!("missing output `{name}`"),
                })?;
        }
        let cfg = &info.config;
        let expected: [(&str, Vec<usize>); 5] = [
            (tensor_names::LANDMARKS, vec![1, NUM_LANDMARKS, 2]),
            (tensor_names::VISIBILITY, vec![1, NUM_LANDMARKS, 3]),
            (tensor_names::CATEGORY, vec![1, cfg.num_categories]),
            (tensor_names::ATTRIBUTES, vec![1, cfg.num_attributes]),
            (tensor_names::EMBEDDING, vec![1, cfg.embedding_dim]),
        ];
        let outlets = optimized.output_outlets().map_err(tract_err)?.to_vec();
        if outlets.len() != graph_outputs.len() {
            return Err(ModelError::Contract {
                path: path.clone(),
                reason: format!(
                    "tract sees {} outputs, the ONNX graph lists {}",
                    outlets.len(),
                    graph_outputs.len()
                ),
            });
        }
        for (k, (name, shape)) in expected.iter().enumerate() {
            let fact = optimized
                .outlet_fact(outlets[output_index[k]])
                .map_err(tract_err)?;
            let got: Option<Vec<usize>> = fact.shape.as_concrete().map(|s| s.to_vec());
            if got.as_deref() != Some(shape.as_slice()) || fact.datum_type != f32::datum_type() {
                return Err(ModelError::Contract {
                    path: path.clone(),
                    reason: format!(
                        "output `{name}` is {:?} {:?}, expected f32 {:?} (config `{}`)",
                        fact.datum_type, fact.shape, shape, cfg.name
                    ),
                });
            }
        }

        let executor = executor(options.threads);
        let run_options = RunOptions {
            executor: Some(executor.clone()),
            ..Default::default()
        };
        let plan: Arc<Plan> =
            SimplePlan::new_with_options(optimized, &run_options).map_err(tract_err)?;
        let state = SimpleState::new(&plan).map_err(tract_err)?;
        let input = Arc::new(Tensor::zero::<f32>(&[1, 3, s, s]).map_err(tract_err)?);
        let outputs = RawOutputs {
            landmarks: [[0.0; 2]; NUM_LANDMARKS],
            visibility: [[0.0; 3]; NUM_LANDMARKS],
            category: vec![0.0; cfg.num_categories],
            attributes: vec![0.0; cfg.num_attributes],
            embedding: vec![0.0; cfg.embedding_dim],
        };
        tracing::info!(
            model = %info.path.display(),
            config = %info.config.name,
            form = %info.graph_form,
            threads = options.threads,
            disable_direct_spatial = options.disable_direct_spatial,
            "model loaded"
        );
        Ok(Engine {
            info,
            options,
            state,
            executor,
            input,
            output_index,
            outputs,
        })
    }

    /// The model's metadata.
    pub fn info(&self) -> &ModelInfo {
        &self.info
    }

    /// The options the engine was prepared with.
    pub fn options(&self) -> EngineOptions {
        self.options
    }

    /// Input side `S`.
    pub fn input_size(&self) -> usize {
        self.info.config.input_size
    }

    /// The input tensor's values (`3*S*S`, planar CHW), to write the
    /// normalized crop into. Reused across frames.
    pub fn input_mut(&mut self) -> &mut [f32] {
        // tract released its reference at the end of the previous run; if it
        // ever keeps one, this clones once (a copy, not a failure).
        let t = Arc::make_mut(&mut self.input);
        t.to_plain_array_view_mut::<f32>()
            .expect("input tensor is plain f32")
            .into_slice()
            .expect("input tensor is contiguous")
    }

    /// Run the graph on the current input and copy the outputs into
    /// [`Engine::outputs`].
    ///
    /// With several threads the whole run happens on a thread of tract's
    /// pool while its other threads poll for work
    /// ([`tract_requant::pool::run_in_pool`]): each parallel op then splits
    /// its work with no hand-over to the pool and back, and no thread to
    /// wake.
    pub fn run(&mut self) -> anyhow::Result<()> {
        let input = TValue::from_const(self.input.clone());
        let state = &mut self.state;
        let result = tract_requant::pool::run_in_pool(&self.executor, || state.run(tvec![input]))?;
        let o = &mut self.outputs;
        let get = |k: usize| -> anyhow::Result<&[f32]> {
            let t = &result[self.output_index[k]];
            t.try_as_plain_ram()?.as_slice::<f32>()
        };
        for (dst, src) in o.landmarks.iter_mut().zip(get(0)?.chunks_exact(2)) {
            dst.copy_from_slice(src);
        }
        for (dst, src) in o.visibility.iter_mut().zip(get(1)?.chunks_exact(3)) {
            dst.copy_from_slice(src);
        }
        o.category.copy_from_slice(get(2)?);
        o.attributes.copy_from_slice(get(3)?);
        o.embedding.copy_from_slice(get(4)?);
        Ok(())
    }

    /// The outputs of the last [`Engine::run`].
    pub fn outputs(&self) -> &RawOutputs {
        &self.outputs
    }
}

/// tract's executor for `threads` matrix-product threads.
fn executor(threads: usize) -> tract_linalg::multithread::Executor {
    use tract_linalg::multithread::Executor;
    if threads <= 1 {
        Executor::SingleThread
    } else {
        Executor::multithread(threads)
    }
}
