//! The fp32 ONNX writer: shapes, metadata, parity with an independent naive
//! forward pass, refusal of bad checkpoints, and the onnxruntime / ONNX
//! checker cross-check through the venv python.

mod common;

use deepfashion::contract::{self, metadata_keys as mk, tensor_names as tn, ModelConfig};
use export::evaluate::random_inputs;
use export::infer::TractModel;
use export::{checkpoint, onnx};

#[test]
fn writer_declares_contract_shapes_and_metadata() {
    let dir = tempfile::tempdir().unwrap();
    let (_, ck) = common::tiny_checkpoint(dir.path(), 1);
    let model = onnx::from_checkpoint(&ck);
    let cfg = &ck.config;
    let g = model.graph.as_ref().unwrap();
    assert_eq!(model.opset_import[0].version, onnx::OPSET);
    assert_eq!(g.input.len(), 1);
    assert_eq!(g.input[0].name, tn::IMAGE);
    let names: Vec<&str> = g.output.iter().map(|o| o.name.as_str()).collect();
    assert_eq!(names, tn::OUTPUTS);
    // No GridSample/AffineGrid; the landmark pooling is plain arithmetic.
    let ops: std::collections::BTreeSet<&str> = g.node.iter().map(|n| n.op_type.as_str()).collect();
    assert!(
        !ops.contains("GridSample") && !ops.contains("AffineGrid"),
        "{ops:?}"
    );
    for op in ["MatMul", "ReduceMax", "Abs", "Relu", "Conv", "Gemm"] {
        assert!(ops.contains(op), "{op} missing from {ops:?}");
    }
    // Batch norm was folded: no BN op, no bn initializers.
    assert!(!ops.contains("BatchNormalization"));
    assert!(g.initializer.iter().all(|t| !t.name.contains(".bn.")));
    let info = onnx::model_info(&model).unwrap();
    assert_eq!(&info.config, cfg);
    assert_eq!(info.labels, ck.labels);
    assert_eq!(info.fingerprint, ck.fingerprint());
    assert_eq!(info.fingerprint.len(), 32);
    assert_eq!(info.preprocess, contract::Preprocess::for_config(cfg));
    let get = |k: &str| {
        model
            .metadata_props
            .iter()
            .find(|p| p.key == k)
            .map(|p| p.value.clone())
    };
    assert_eq!(
        get(mk::CONTRACT_VERSION).unwrap(),
        contract::CONTRACT_VERSION.to_string()
    );
    assert!(get(mk::LANDMARK_SLOTS).unwrap().contains("left_collar"));

    // Run in tract with batch 2 and check output shapes and invariants.
    let path = dir.path().join("tiny.onnx");
    onnx::write_model(&path, &model).unwrap();
    let tm = TractModel::load(&path, 2).unwrap();
    let x = random_inputs(cfg.input_size, 2, 3).concat();
    let outs = tm.run(&x).unwrap();
    let shapes: Vec<Vec<usize>> = outs.iter().map(|o| o.shape.clone()).collect();
    assert_eq!(
        shapes,
        vec![
            vec![2, 8, 2],
            vec![2, 8, 3],
            vec![2, cfg.num_categories],
            vec![2, cfg.num_attributes],
            vec![2, cfg.embedding_dim]
        ]
    );
    let emb = &outs[4].data;
    for row in emb.chunks(cfg.embedding_dim) {
        let n: f32 = row.iter().map(|v| v * v).sum::<f32>().sqrt();
        assert!((n - 1.0).abs() < 1e-4, "embedding norm {n}");
    }
    for row in outs[2].data.chunks(cfg.num_categories) {
        assert!((row.iter().sum::<f32>() - 1.0).abs() < 1e-4);
    }
    assert!(outs[0].data.iter().all(|v| (0.0..=1.0).contains(v)));
}

#[test]
fn tract_matches_independent_reference_forward() {
    let dir = tempfile::tempdir().unwrap();
    let (_, ck) = common::tiny_checkpoint(dir.path(), 2);
    let path = dir.path().join("tiny.onnx");
    onnx::write_model(&path, &onnx::from_checkpoint(&ck)).unwrap();
    let tm = TractModel::load(&path, 1).unwrap();
    let mut worst = 0f32;
    for x in random_inputs(ck.config.input_size, 2, 5) {
        let p = tm.predict(&x).unwrap();
        let r = common::reference_forward(&ck, &x);
        for (name, (a, b)) in tn::OUTPUTS.iter().zip(
            [
                &p.landmarks,
                &p.visibility,
                &p.category,
                &p.attributes,
                &p.embedding,
            ]
            .into_iter()
            .zip(r.iter()),
        ) {
            assert_eq!(a.len(), b.len(), "{name}");
            for (u, v) in a.iter().zip(b) {
                let d = (u - v).abs();
                worst = worst.max(d);
                assert!(d <= 1e-4, "{name}: tract {u} vs reference {v}");
            }
        }
    }
    eprintln!("tract vs naive reference: max abs diff {worst:.2e}");
}

#[test]
fn checkpoint_not_matching_config_is_refused_and_nothing_written() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = ModelConfig::tiny();
    let labels = checkpoint::placeholder_labels(&cfg);
    let mut tensors = checkpoint::random_tensors(&cfg, 3);
    let i = tensors
        .iter()
        .position(|t| t.0 == "conv3_2.weight")
        .unwrap();
    tensors[i].1 = vec![32, 16, 3, 3];
    tensors[i].2.truncate(32 * 16 * 9);
    let path = dir.path().join("bad.safetensors");
    checkpoint::write(&path, &cfg, &labels, "{}", &tensors).unwrap();
    let e = checkpoint::load(&path).unwrap_err().to_string();
    assert!(
        e.contains("conv3_2.weight")
            && e.contains("[32, 16, 3, 3]")
            && e.contains("[32, 32, 3, 3]"),
        "{e}"
    );

    let mut tensors = checkpoint::random_tensors(&cfg, 3);
    tensors.retain(|t| t.0 != "embedding.bias");
    checkpoint::write(&path, &cfg, &labels, "{}", &tensors).unwrap();
    let e = checkpoint::load(&path).unwrap_err().to_string();
    assert!(e.contains("embedding.bias") && e.contains("missing"), "{e}");

    std::fs::write(&path, b"not a checkpoint").unwrap();
    assert!(checkpoint::load(&path).is_err());
    // Nothing but the checkpoint we wrote is there.
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
}

#[test]
fn onnxruntime_and_onnx_checker_agree_with_tract() {
    let Some(py) = common::venv_python("onnx, onnxruntime, numpy") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let (_, ck) = common::tiny_checkpoint(dir.path(), 4);
    let path = dir.path().join("tiny.onnx");
    onnx::write_model(&path, &onnx::from_checkpoint(&ck)).unwrap();
    let s = ck.config.input_size;
    let inputs = random_inputs(s, 2, 9);
    let npy = dir.path().join("x.npy");
    common::write_npy(&npy, &inputs, s);
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../bench/export_check.py");
    let out = std::process::Command::new(&py)
        .arg(&script)
        .arg(&path)
        .arg(&npy)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["checker"], "ok");
    let tm = TractModel::load(&path, 1).unwrap();
    let mut tract: Vec<Vec<f32>> = vec![Vec::new(); 5];
    for x in &inputs {
        for (k, o) in tm.run(x).unwrap().into_iter().enumerate() {
            tract[k].extend(o.data);
        }
    }
    let mut worst = 0f64;
    for (k, name) in tn::OUTPUTS.iter().enumerate() {
        let ort: Vec<f64> = v["outputs"][name]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_f64().unwrap())
            .collect();
        assert_eq!(ort.len(), tract[k].len(), "{name}");
        for (a, b) in ort.iter().zip(&tract[k]) {
            worst = worst.max((a - *b as f64).abs());
        }
    }
    eprintln!(
        "onnxruntime {} vs tract: max abs diff {worst:.2e}",
        v["ort_version"]
    );
    assert!(worst <= 1e-4, "onnxruntime vs tract max abs diff {worst}");
}
