//! Int8 quantization: operator form, size, closeness to fp32, tract kernel
//! selection, refusal of unreadable calibration images.

mod common;

use export::evaluate::{random_inputs, verify};
use export::images::{self, ImageRef};
use export::infer::TractModel;
use export::onnx;
use export::quantize::{self, Method};
use std::path::Path;

fn synth(dir: &Path) -> std::path::PathBuf {
    let root = dir.join("synth");
    let opts = deepfashion::synth::SynthOptions {
        seed: 3,
        images: 40,
        size: 96,
        overwrite: false,
    };
    deepfashion::synth::generate(&root, &opts, None).unwrap();
    root
}

#[test]
fn int8_is_operator_form_small_close_and_uses_quantized_kernels() {
    let dir = tempfile::tempdir().unwrap();
    let (_, ck) = common::tiny_checkpoint(dir.path(), 7);
    let fp32 = dir.path().join("tiny.onnx");
    onnx::write_model(&fp32, &onnx::from_checkpoint(&ck)).unwrap();
    let root = synth(dir.path());
    let ds = images::load_dataset(&root, "category-attribute").unwrap();
    let imgs: Vec<ImageRef> = images::split_images(&ds, "train")
        .into_iter()
        .take(12)
        .collect();
    let (info, w) = quantize::read_fp32(&fp32).unwrap();
    for method in [Method::MinMax, Method::Percentile] {
        let ranges = quantize::calibrate(&info, &w, &imgs, method, false).unwrap();
        assert!(ranges.contains_key("image") && ranges.contains_key("conv4_3/out"));
        let plan = quantize::plan(ranges, Default::default());
        let q = quantize::int8_model(&info, &w, &plan);
        let g = q.graph.as_ref().unwrap();
        let ops: std::collections::BTreeSet<&str> =
            g.node.iter().map(|n| n.op_type.as_str()).collect();
        assert!(ops.contains("QLinearConv"), "{ops:?}");
        assert!(
            !ops.contains("Conv") && !ops.contains("Gemm"),
            "float layers left: {ops:?}"
        );
        assert!(
            g.node.iter().all(|n| n.domain.is_empty()),
            "vendor op in graph"
        );
        let q_path = dir.path().join(format!("tiny-{method:?}.int8.onnx"));
        onnx::write_model(&q_path, &q).unwrap();
        let ratio = std::fs::metadata(&q_path).unwrap().len() as f64
            / std::fs::metadata(&fp32).unwrap().len() as f64;
        assert!(ratio <= 0.30, "int8 is {:.1}% of fp32", 100.0 * ratio);

        let qm = TractModel::load(&q_path, 1).unwrap();
        let fm = TractModel::load(&fp32, 1).unwrap();
        assert_eq!(qm.info.fingerprint, fm.info.fingerprint);
        assert_eq!(qm.info.precision, "int8");
        // tract keeps the convolutions in the integer domain.
        let census = qm.op_census();
        eprintln!("{method:?}: tract ops of the int8 plan: {census:?}");
        let quantized_ops: usize = census
            .iter()
            .filter(|(n, _)| {
                n.contains("Q") || n.contains("i8") || n.contains("u8") || n.contains("Quant")
            })
            .map(|(_, c)| c)
            .sum();
        assert!(quantized_ops > 0, "{census:?}");
        let s = info.config.input_size;
        let inputs: Vec<Vec<f32>> = imgs
            .iter()
            .take(6)
            .map(|i| {
                let mut v = vec![0f32; 3 * s * s];
                images::preprocess(i, s, 0.1, &mut v).unwrap();
                v
            })
            .collect();
        let p = verify(&qm, &fm, &inputs).unwrap();
        eprintln!("{method:?}: {p:?}");
        let emb = p.outputs.iter().find(|o| o.name == "embedding").unwrap();
        assert!(
            emb.mean_abs < 0.05,
            "embedding mean abs diff {}",
            emb.mean_abs
        );
        let lm = p.outputs.iter().find(|o| o.name == "landmarks").unwrap();
        assert!(lm.max_abs < 0.1, "landmark max abs diff {}", lm.max_abs);
    }
}

#[test]
fn keep_float_layers_stay_float() {
    let dir = tempfile::tempdir().unwrap();
    let (_, ck) = common::tiny_checkpoint(dir.path(), 8);
    let fp32 = dir.path().join("tiny.onnx");
    onnx::write_model(&fp32, &onnx::from_checkpoint(&ck)).unwrap();
    let (info, w) = quantize::read_fp32(&fp32).unwrap();
    let keep = quantize::parse_keep_float(&info, &["fc6_local,landmarks".to_string()]).unwrap();
    assert!(quantize::parse_keep_float(&info, &["nope".to_string()]).is_err());
    let inputs = random_inputs(info.config.input_size, 3, 1);
    let ranges = quantize::calibrate_with(&info, &w, 3, Method::MinMax, false, |i, b| {
        b.copy_from_slice(&inputs[i]);
        Ok(())
    })
    .unwrap();
    let q = quantize::int8_model(&info, &w, &quantize::plan(ranges, keep));
    let g = q.graph.as_ref().unwrap();
    let gemms: Vec<&str> = g
        .node
        .iter()
        .filter(|n| n.op_type == "Gemm")
        .map(|n| n.name.as_str())
        .collect();
    assert_eq!(gemms.len(), 2, "{gemms:?}");
    assert!(
        gemms.iter().any(|n| n.starts_with("fc6_local"))
            && gemms.iter().any(|n| n.starts_with("landmarks"))
    );
    let path = dir.path().join("keep.onnx");
    onnx::write_model(&path, &q).unwrap();
    let qm = TractModel::load(&path, 1).unwrap();
    qm.predict(&inputs[0]).unwrap();
}

#[test]
fn unreadable_calibration_image_is_named_and_quantizing_fp32_only() {
    let dir = tempfile::tempdir().unwrap();
    let (_, ck) = common::tiny_checkpoint(dir.path(), 9);
    let fp32 = dir.path().join("tiny.onnx");
    onnx::write_model(&fp32, &onnx::from_checkpoint(&ck)).unwrap();
    let (info, w) = quantize::read_fp32(&fp32).unwrap();
    let bad = dir.path().join("broken.jpg");
    std::fs::write(&bad, b"\xff\xd8 not really a jpeg").unwrap();
    let imgs = vec![ImageRef {
        path: bad.clone(),
        name: "broken.jpg".into(),
        bbox: None,
        item_id: None,
    }];
    let e = quantize::calibrate(&info, &w, &imgs, Method::MinMax, false)
        .unwrap_err()
        .to_string();
    assert!(e.contains("broken.jpg"), "{e}");
    // An int8 model cannot be quantized again.
    let ranges = quantize::calibrate_with(&info, &w, 1, Method::MinMax, false, |_, b| {
        b.fill(0.5);
        Ok(())
    })
    .unwrap();
    let q = dir.path().join("q.onnx");
    onnx::write_model(
        &q,
        &quantize::int8_model(&info, &w, &quantize::plan(ranges, Default::default())),
    )
    .unwrap();
    let e = quantize::read_fp32(&q).unwrap_err().to_string();
    assert!(e.contains("int8"), "{e}");
}
