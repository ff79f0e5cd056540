//! Model loading and checking, and the engine's outputs against plain tract.

mod common;

use common::TestModel;
use fashion_runtime::engine::{Engine, EngineOptions};
use fashion_runtime::model_info::{GraphForm, ModelInfo};

fn reference(path: &std::path::Path, input: &[f32], s: usize) -> Vec<Vec<f32>> {
    common::plain_run(&common::plain_plan(path), input, s)
}

#[test]
fn loads_checks_and_matches_unoptimized_tract() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.onnx");
    let tm = TestModel::small(1);
    tm.write(&path);
    let (info, _) = ModelInfo::read(&path).unwrap();
    assert_eq!(info.config, tm.config);
    assert_eq!(info.fingerprint, tm.fingerprint());
    assert_eq!(info.graph_form, GraphForm::Fp32);
    assert_eq!(info.labels.categories.len(), 6);

    for threads in [1, 2] {
        for disable_direct_spatial in [false, true] {
            let mut e = Engine::load(
                &path,
                EngineOptions {
                    threads,
                    disable_direct_spatial,
                },
            )
            .unwrap();
            let s = e.input_size();
            let input: Vec<f32> = (0..3 * s * s)
                .map(|i| ((i * 37 % 101) as f32 / 50.0) - 1.0)
                .collect();
            e.input_mut().copy_from_slice(&input);
            e.run().unwrap();
            let want = reference(&path, &input, s);
            let o = e.outputs();
            let got: [Vec<f32>; 5] = [
                o.landmarks.iter().flatten().copied().collect(),
                o.visibility.iter().flatten().copied().collect(),
                o.category.clone(),
                o.attributes.clone(),
                o.embedding.clone(),
            ];
            for (k, (g, w)) in got.iter().zip(&want).enumerate() {
                assert_eq!(g.len(), w.len(), "output {k}");
                for (a, b) in g.iter().zip(w) {
                    assert!((a - b).abs() < 1e-4, "output {k}: {a} vs {b}");
                }
            }
            let norm: f32 = o.embedding.iter().map(|x| x * x).sum::<f32>().sqrt();
            assert!((norm - 1.0).abs() < 1e-4);
            // A second run with another input changes the outputs (the
            // input buffer is really reused and re-read).
            let before = o.category.clone();
            e.input_mut().iter_mut().for_each(|v| *v = -*v);
            e.run().unwrap();
            assert_ne!(e.outputs().category, before);
        }
    }
}

#[test]
fn refuses_a_model_without_the_expected_outputs() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.onnx");
    let mut tm = TestModel::small(2);
    tm.drop_outputs = vec!["embedding", "visibility"];
    tm.write(&path);
    let e = Engine::load(&path, EngineOptions::default())
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("missing output(s) `visibility`, `embedding`"),
        "{e}"
    );
    assert!(e.contains("m.onnx"), "{e}");
}

#[test]
fn refuses_non_onnx_and_missing_metadata() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.onnx");
    std::fs::write(&path, b"\xff\xd8 this is not protobuf \x00\x01\x02").unwrap();
    let e = Engine::load(&path, EngineOptions::default())
        .unwrap_err()
        .to_string();
    assert!(e.contains("bad.onnx"), "{e}");

    // A valid ONNX without the FashionNet metadata.
    let mut proto: tract_onnx::pb::ModelProto =
        prost::Message::decode(TestModel::small(3).encode().as_slice()).unwrap();
    proto
        .metadata_props
        .retain(|p| p.key != "fashionnet.labels");
    std::fs::write(&path, prost::Message::encode_to_vec(&proto)).unwrap();
    let e = Engine::load(&path, EngineOptions::default())
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("fashionnet.labels") && e.contains("missing"),
        "{e}"
    );

    let e = Engine::load(&dir.path().join("absent.onnx"), EngineOptions::default())
        .unwrap_err()
        .to_string();
    assert!(e.contains("absent.onnx"), "{e}");
}

#[test]
fn refuses_a_shape_that_disagrees_with_the_config() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.onnx");
    let tm = TestModel::small(4);
    // Metadata claims 7 categories (and labels to match) but the graph has 6.
    let mut proto: tract_onnx::pb::ModelProto =
        prost::Message::decode(tm.encode().as_slice()).unwrap();
    let mut cfg = tm.config.clone();
    cfg.num_categories = 7;
    let mut labels = tm.labels();
    labels.categories.push(labels.categories[0].clone());
    for p in &mut proto.metadata_props {
        if p.key == "fashionnet.config" {
            p.value = cfg.to_json();
        }
        if p.key == "fashionnet.labels" {
            p.value = serde_json::to_string(&labels).unwrap();
        }
    }
    std::fs::write(&path, prost::Message::encode_to_vec(&proto)).unwrap();
    let e = Engine::load(&path, EngineOptions::default())
        .unwrap_err()
        .to_string();
    assert!(e.contains("output `category`"), "{e}");
}
