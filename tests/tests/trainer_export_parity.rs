//! Parity of two implementations of FashionNet: a checkpoint the trainer
//! wrote, run by the trainer (tch, `trainer predict`) and, exported to fp32
//! ONNX, run by tract (`export::evaluate::predict_images`), on the same
//! images through the same `deepfashion::preprocess` crop.
//!
//! Tolerance: 1e-4 absolute on every output (category and attribute
//! probabilities, visibility probabilities, the L2-normalized embedding,
//! and landmarks in crop-normalized units, i.e. the pixel difference divided
//! by the crop side).
//!
//! Runs the `trainer` binary (see `e2e_tests::workspace_bin`).

use deepfashion::metrics::read_predictions;
use export::infer::TractModel;
use export::{checkpoint, evaluate, images, onnx};
use std::process::Command;

const TOL: f32 = 1e-4;

/// One output of both runs (tch, tract) and the scale its difference is divided by.
type Pair<'a> = (Option<&'a [f32]>, Option<&'a [f32]>, f32);

#[test]
fn trainer_and_exported_graph_agree() {
    let bin = e2e_tests::trainer_bin();
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    e2e_tests::synth(&data, 3, 200, 96);

    // A short real training run, so that batch-norm statistics and every
    // head hold trained (not initial) values.
    let run = tmp.path().join("run");
    e2e_tests::run_ok(
        Command::new(&bin)
            .args(["train", "--data"])
            .arg(&data)
            .args(["--config", "tiny", "--out"])
            .arg(&run)
            .args(["--device", "cpu", "--threads", "2", "--quiet"])
            .args(["--steps", "30", "--seed", "2"]),
        "trainer train",
    );
    let ck_path = deepfashion::contract::run_layout::newest_checkpoint(&run)
        .unwrap()
        .expect("a checkpoint");

    // Exported once, run on both benchmarks.
    let ck = checkpoint::load(&ck_path).unwrap();
    let model_path = tmp.path().join("model.onnx");
    onnx::write_model(&model_path, &onnx::from_checkpoint(&ck)).unwrap();
    let model = TractModel::load(&model_path, 1).unwrap();

    let mut diffs = Vec::new();
    for (benchmark, split) in [("category-attribute", "test"), ("inshop", "query")] {
        let preds_path = tmp.path().join(format!("{benchmark}.jsonl"));
        e2e_tests::run_ok(
            Command::new(&bin)
                .args(["predict", "--checkpoint"])
                .arg(&ck_path)
                .arg("--data")
                .arg(&data)
                .args(["--benchmark", benchmark, "--split", split])
                .args(["--device", "cpu", "--threads", "2", "--out"])
                .arg(&preds_path),
            "trainer predict",
        );
        let tch = read_predictions(&preds_path).unwrap();

        let ds = images::load_dataset(&data, benchmark).unwrap();
        let imgs = evaluate::eval_images(&ds, split);
        let tract = evaluate::predict_images(&model, &imgs, false, "parity").unwrap();
        assert_eq!(tch.len(), tract.len(), "{benchmark}: prediction counts");
        assert!(tch.len() >= 20, "{benchmark}: only {} images", tch.len());

        let s = model.info.config.input_size;
        let margin = model.info.preprocess.crop_margin;
        let mut buf = vec![0f32; 3 * s * s];
        let mut worst = [0f32; 5];
        let mut seen = [false; 5];
        for (img, q) in imgs.iter().zip(&tract) {
            let p = tch
                .iter()
                .find(|p| p.image == q.image)
                .unwrap_or_else(|| panic!("trainer did not predict {}", q.image));
            let crop = images::preprocess(img, s, margin, &mut buf).unwrap();
            let max_diff = |a: &[f32], b: &[f32], scale: f32| {
                assert_eq!(a.len(), b.len(), "{}: lengths", q.image);
                a.iter()
                    .zip(b)
                    .fold(0f32, |m, (x, y)| m.max((x - y).abs() / scale))
            };
            let fields: [Pair; 5] = [
                (
                    p.landmarks.as_deref().map(|l| l.as_flattened()),
                    q.landmarks.as_deref().map(|l| l.as_flattened()),
                    crop.side,
                ),
                (
                    p.visibility.as_deref().map(|v| v.as_flattened()),
                    q.visibility.as_deref().map(|v| v.as_flattened()),
                    1.0,
                ),
                (p.category.as_deref(), q.category.as_deref(), 1.0),
                (p.attributes.as_deref(), q.attributes.as_deref(), 1.0),
                (p.embedding.as_deref(), q.embedding.as_deref(), 1.0),
            ];
            for (k, (a, b, scale)) in fields.into_iter().enumerate() {
                if let (Some(a), Some(b)) = (a, b) {
                    worst[k] = worst[k].max(max_diff(a, b, scale));
                    seen[k] = true;
                }
            }
        }
        eprintln!(
            "{benchmark}/{split}: {} images, max |tch - tract| landmarks {:.2e}, visibility {:.2e}, category {:.2e}, attributes {:.2e}, embedding {:.2e}",
            imgs.len(),
            worst[0],
            worst[1],
            worst[2],
            worst[3],
            worst[4]
        );
        diffs.push((benchmark, worst, seen));
    }
    // Category-attribute predictions carry every output; In-shop ones at
    // least landmarks and embedding (its labels have no categories).
    assert_eq!(diffs[0].2, [true; 5], "category-attribute outputs compared");
    assert!(
        diffs[1].2[0] && diffs[1].2[4],
        "In-shop landmarks and embedding compared"
    );
    for (benchmark, worst, _) in &diffs {
        for (name, d) in [
            "landmarks",
            "visibility",
            "category",
            "attributes",
            "embedding",
        ]
        .iter()
        .zip(worst)
        {
            assert!(
                *d <= TOL,
                "{benchmark}: {name} differs by {d:.3e} between tch and tract (tolerance {TOL})"
            );
        }
    }
}
