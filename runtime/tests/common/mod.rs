//! Test models: small ONNX graphs with the FashionNet contract's input,
//! outputs and metadata, built with `tract_onnx::pb` + `prost`, so the
//! runtime is tested without the exporter. The body is a 3x3 conv, ReLU,
//! global average pool, then one linear head per output with the contract's
//! activations (sigmoid landmarks, softmax visibility and category, sigmoid
//! attributes, L2-normalized embedding).
#![allow(dead_code)]

use deepfashion::contract::{
    metadata_keys, AttributeLabel, CategoryLabel, Labels, ModelConfig, Preprocess,
    CONTRACT_VERSION, LANDMARK_SLOTS,
};
use prost::Message;
use std::path::Path;
use tract_onnx::pb;

/// What to build.
#[derive(Debug, Clone)]
pub struct TestModel {
    /// Config stored in the metadata (input size, class counts, D).
    pub config: ModelConfig,
    /// Weight seed (different seeds: different fingerprints).
    pub seed: u64,
    /// Outputs to leave out (to test refusal).
    pub drop_outputs: Vec<&'static str>,
    /// Hidden width after the conv.
    pub hidden: usize,
}

impl TestModel {
    /// A small model: input 64, 6 categories, 12 attributes, D = 8.
    pub fn small(seed: u64) -> Self {
        let mut config = ModelConfig::tiny();
        config.name = "test".into();
        config.input_size = 64;
        config.num_categories = 6;
        config.num_attributes = 12;
        config.embedding_dim = 8;
        Self {
            config,
            seed,
            drop_outputs: vec![],
            hidden: 8,
        }
    }

    /// The fingerprint written into the metadata.
    pub fn fingerprint(&self) -> String {
        format!("{:016x}{:016x}", self.seed, self.seed ^ 0xfa51_1011)
    }

    /// The labels written into the metadata.
    pub fn labels(&self) -> Labels {
        Labels {
            categories: (0..self.config.num_categories)
                .map(|i| CategoryLabel {
                    name: format!("cat{i}"),
                    garment_type: 1 + (i % 3) as u8,
                })
                .collect(),
            attributes: (0..self.config.num_attributes)
                .map(|i| AttributeLabel {
                    name: format!("attr{i}"),
                    group: "texture".into(),
                })
                .collect(),
        }
    }

    /// Encode the ONNX model.
    pub fn encode(&self) -> Vec<u8> {
        build(self).encode_to_vec()
    }

    /// Write it to `path`.
    pub fn write(&self, path: &Path) {
        std::fs::write(path, self.encode()).unwrap();
    }
}

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> f32 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((self.0 >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
    }
    fn vec(&mut self, n: usize, scale: f32) -> Vec<f32> {
        (0..n).map(|_| self.next() * scale).collect()
    }
}

fn tensor(name: &str, dims: &[i64], data: Vec<f32>) -> pb::TensorProto {
    pb::TensorProto {
        name: name.into(),
        dims: dims.to_vec(),
        data_type: 1,
        float_data: data,
        ..Default::default()
    }
}

fn i64_tensor(name: &str, data: Vec<i64>) -> pb::TensorProto {
    pb::TensorProto {
        name: name.into(),
        dims: vec![data.len() as i64],
        data_type: 7,
        int64_data: data,
        ..Default::default()
    }
}

fn node(
    op: &str,
    inputs: &[&str],
    outputs: &[&str],
    attrs: Vec<pb::AttributeProto>,
) -> pb::NodeProto {
    pb::NodeProto {
        op_type: op.into(),
        name: format!("{op}_{}", outputs[0]),
        input: inputs.iter().map(|s| s.to_string()).collect(),
        output: outputs.iter().map(|s| s.to_string()).collect(),
        attribute: attrs,
        ..Default::default()
    }
}

fn ints(name: &str, v: &[i64]) -> pb::AttributeProto {
    pb::AttributeProto {
        name: name.into(),
        r#type: 7,
        ints: v.to_vec(),
        ..Default::default()
    }
}

fn int(name: &str, v: i64) -> pb::AttributeProto {
    pb::AttributeProto {
        name: name.into(),
        r#type: 2,
        i: v,
        ..Default::default()
    }
}

fn value_info(name: &str, dims: &[Option<i64>]) -> pb::ValueInfoProto {
    use pb::tensor_shape_proto::{dimension::Value, Dimension};
    pb::ValueInfoProto {
        name: name.into(),
        r#type: Some(pb::TypeProto {
            value: Some(pb::type_proto::Value::TensorType(pb::type_proto::Tensor {
                elem_type: 1,
                shape: Some(pb::TensorShapeProto {
                    dim: dims
                        .iter()
                        .map(|d| Dimension {
                            value: Some(match d {
                                Some(v) => Value::DimValue(*v),
                                None => Value::DimParam("N".into()),
                            }),
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

fn build(m: &TestModel) -> pb::ModelProto {
    let c = &m.config;
    let s = c.input_size as i64;
    let h = m.hidden as i64;
    let mut rng = Rng(m.seed.wrapping_add(17));
    let mut init = vec![
        tensor("conv.w", &[h, 3, 3, 3], rng.vec((h * 27) as usize, 0.5)),
        tensor("conv.b", &[h], rng.vec(h as usize, 0.1)),
        i64_tensor("shape_lm", vec![-1, 8, 2]),
        i64_tensor("shape_vis", vec![-1, 8, 3]),
    ];
    let mut nodes = vec![
        node(
            "Conv",
            &["image", "conv.w", "conv.b"],
            &["conv"],
            vec![ints("pads", &[1, 1, 1, 1]), ints("kernel_shape", &[3, 3])],
        ),
        node("Relu", &["conv"], &["relu"], vec![]),
        node("GlobalAveragePool", &["relu"], &["gap"], vec![]),
        node("Flatten", &["gap"], &["feat"], vec![int("axis", 1)]),
    ];
    let heads: [(&str, usize); 5] = [
        ("landmarks", 16),
        ("visibility", 24),
        ("category", c.num_categories),
        ("attributes", c.num_attributes),
        ("embedding", c.embedding_dim),
    ];
    for (name, k) in heads {
        init.push(tensor(
            &format!("{name}.w"),
            &[h, k as i64],
            rng.vec(m.hidden * k, 1.5),
        ));
        init.push(tensor(&format!("{name}.b"), &[k as i64], rng.vec(k, 0.5)));
        let lin = format!("{name}_lin");
        nodes.push(node(
            "Gemm",
            &["feat", &format!("{name}.w"), &format!("{name}.b")],
            &[&lin],
            vec![],
        ));
        match name {
            "landmarks" => {
                nodes.push(node("Sigmoid", &[&lin], &["lm_sig"], vec![]));
                nodes.push(node(
                    "Reshape",
                    &["lm_sig", "shape_lm"],
                    &["landmarks"],
                    vec![],
                ));
            }
            "visibility" => {
                nodes.push(node("Reshape", &[&lin, "shape_vis"], &["vis_r"], vec![]));
                nodes.push(node(
                    "Softmax",
                    &["vis_r"],
                    &["visibility"],
                    vec![int("axis", -1)],
                ));
            }
            "category" => nodes.push(node(
                "Softmax",
                &[&lin],
                &["category"],
                vec![int("axis", 1)],
            )),
            "attributes" => nodes.push(node("Sigmoid", &[&lin], &["attributes"], vec![])),
            _ => {
                nodes.push(node(
                    "ReduceSumSquare",
                    &[&lin],
                    &["emb_ss"],
                    vec![ints("axes", &[1]), int("keepdims", 1)],
                ));
                nodes.push(node("Sqrt", &["emb_ss"], &["emb_norm"], vec![]));
                nodes.push(node("Div", &[&lin, "emb_norm"], &["embedding"], vec![]));
            }
        }
    }
    let outputs = [
        ("landmarks", vec![None, Some(8), Some(2)]),
        ("visibility", vec![None, Some(8), Some(3)]),
        ("category", vec![None, Some(c.num_categories as i64)]),
        ("attributes", vec![None, Some(c.num_attributes as i64)]),
        ("embedding", vec![None, Some(c.embedding_dim as i64)]),
    ]
    .into_iter()
    .filter(|(n, _)| !m.drop_outputs.contains(n))
    .map(|(n, d)| value_info(n, &d))
    .collect();
    let meta = |k: &str, v: String| pb::StringStringEntryProto {
        key: k.into(),
        value: v,
    };
    pb::ModelProto {
        ir_version: 8,
        opset_import: vec![pb::OperatorSetIdProto {
            domain: String::new(),
            version: 13,
        }],
        producer_name: "fashion-runtime tests".into(),
        graph: Some(pb::GraphProto {
            name: "fashionnet_test".into(),
            node: nodes,
            initializer: init,
            input: vec![value_info("image", &[None, Some(3), Some(s), Some(s)])],
            output: outputs,
            ..Default::default()
        }),
        metadata_props: vec![
            meta(metadata_keys::CONFIG, c.to_json()),
            meta(
                metadata_keys::LABELS,
                serde_json::to_string(&m.labels()).unwrap(),
            ),
            meta(
                metadata_keys::PREPROCESS,
                serde_json::to_string(&Preprocess::for_config(c)).unwrap(),
            ),
            meta(
                metadata_keys::LANDMARK_SLOTS,
                serde_json::to_string(&LANDMARK_SLOTS).unwrap(),
            ),
            meta(metadata_keys::FINGERPRINT, m.fingerprint()),
            meta(
                metadata_keys::CONTRACT_VERSION,
                CONTRACT_VERSION.to_string(),
            ),
        ],
        ..Default::default()
    }
}

/// A small JPEG (encoded with the `image` crate) of the demo scene.
pub fn demo_jpeg(width: u32, height: u32, t: u64) -> Vec<u8> {
    let mut f = fashion_runtime::sources::Frame::default();
    fashion_runtime::sources::demo::draw(&mut f, width, height, t);
    let mut out = Vec::new();
    let enc = image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 90);
    image::ImageEncoder::write_image(
        enc,
        f.pixels(),
        width,
        height,
        image::ExtendedColorType::Rgb8,
    )
    .unwrap();
    out
}

/// A command that starts the `fashion-runtime` binary (through the runner
/// in `FASHION_RUNTIME_TEST_RUNNER`, e.g. `qemu-aarch64 -L /usr/aarch64-linux-gnu`,
/// when the tests run as ARM binaries).
pub fn runtime_command() -> std::process::Command {
    let bin = env!("CARGO_BIN_EXE_fashion-runtime");
    match std::env::var("FASHION_RUNTIME_TEST_RUNNER") {
        Ok(r) if !r.trim().is_empty() => {
            let mut parts = r.split_whitespace();
            let mut c = std::process::Command::new(parts.next().unwrap_or_default());
            c.args(parts);
            c.arg(bin);
            c
        }
        _ => std::process::Command::new(bin),
    }
}

/// Plain tract (typed, not optimized) on the model at `path`: the reference
/// the runtime's optimized engine is compared with.
pub fn plain_plan(path: &Path) -> std::sync::Arc<tract_onnx::prelude::TypedRunnableModel> {
    use tract_onnx::prelude::*;
    tract_onnx::onnx()
        .model_for_path(path)
        .unwrap()
        .into_typed()
        .unwrap()
        .into_runnable()
        .unwrap()
}

/// Run `plan` on one `[1, 3, s, s]` input and return every output's values.
pub fn plain_run(
    plan: &std::sync::Arc<tract_onnx::prelude::TypedRunnableModel>,
    input: &[f32],
    s: usize,
) -> Vec<Vec<f32>> {
    use tract_onnx::prelude::*;
    let t = Tensor::from_shape(&[1, 3, s, s], input).unwrap();
    plan.run(tvec![t.into()])
        .unwrap()
        .iter()
        .map(|o| {
            o.try_as_plain_ram()
                .unwrap()
                .as_slice::<f32>()
                .unwrap()
                .to_vec()
        })
        .collect()
}
