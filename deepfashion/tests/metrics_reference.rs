//! `score` against the independent numpy reference
//! (`tests/score_reference.py`) on random predictions for the fixture
//! datasets, to 1e-6. Skips (with a notice) when no python with numpy is
//! found.

use deepfashion::annotations::{load, Benchmark, LoadOptions};
use deepfashion::metrics::{score, write_predictions, Prediction};
use rand::{Rng, SeedableRng};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;

fn python() -> Option<PathBuf> {
    let venv = Path::new(env!("CARGO_MANIFEST_DIR")).join("../.venv/bin/python");
    for cand in [venv, PathBuf::from("python3")] {
        let ok = Command::new(&cand)
            .args(["-c", "import numpy"])
            .output()
            .map(|o| o.status.success())
            .unwrap_or(false);
        if ok {
            return Some(cand);
        }
    }
    None
}

fn random_predictions(ds: &deepfashion::annotations::Dataset, seed: u64) -> Vec<Prediction> {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    ds.images
        .iter()
        .map(|r| {
            let mut p = Prediction::new(r.image.clone());
            if !ds.categories.is_empty() {
                p.category = Some((0..ds.categories.len()).map(|_| rng.gen()).collect());
            }
            if !ds.attributes.is_empty() {
                p.attributes = Some((0..ds.attributes.len()).map(|_| rng.gen()).collect());
            }
            let b = r.bbox.unwrap_or([0.0, 0.0, 100.0, 100.0]);
            p.landmarks = Some(
                (0..8)
                    .map(|_| [rng.gen_range(b[0]..b[2]), rng.gen_range(b[1]..b[3])])
                    .collect(),
            );
            p.embedding = Some((0..4).map(|_| rng.gen_range(-1.0..1.0)).collect());
            p
        })
        .collect()
}

/// Every number in `want` must be within 1e-6 of the same path in `got`.
fn compare(want: &Value, got: &Value, path: &str) {
    match want {
        Value::Object(m) => {
            for (k, v) in m {
                let g = got
                    .get(k)
                    .unwrap_or_else(|| panic!("rust output lacks {path}.{k}: {got}"));
                compare(v, g, &format!("{path}.{k}"));
            }
        }
        Value::Array(a) => {
            let g = got
                .as_array()
                .unwrap_or_else(|| panic!("{path}: not an array"));
            assert_eq!(a.len(), g.len(), "{path}");
            for (i, (x, y)) in a.iter().zip(g).enumerate() {
                compare(x, y, &format!("{path}[{i}]"));
            }
        }
        Value::Number(n) => {
            let (w, g) = (n.as_f64().unwrap(), got.as_f64().unwrap_or(f64::NAN));
            assert!((w - g).abs() <= 1e-6, "{path}: reference {w}, rust {g}");
        }
        other => assert_eq!(other, got, "{path}"),
    }
}

#[test]
fn score_matches_numpy_reference() {
    let Some(py) = python() else {
        eprintln!("SKIP score_matches_numpy_reference: no python with numpy found");
        return;
    };
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/DeepFashion");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/score_reference.py");
    let tmp = tempfile::tempdir().unwrap();
    let cases = [
        (Benchmark::CategoryAttribute, "test"),
        (Benchmark::CategoryAttribute, "train"),
        (Benchmark::Fine, "test"),
        (Benchmark::Fine, "train"),
        (Benchmark::InShop, "query"),
        (Benchmark::Consumer2Shop, "test"),
        (Benchmark::Landmarks, "test"),
        (Benchmark::Landmarks, "train"),
    ];
    let mut compared = 0;
    for (i, (b, split)) in cases.into_iter().enumerate() {
        let ds = load(&root, b, &LoadOptions::default()).unwrap();
        for seed in 0..2u64 {
            let preds = random_predictions(&ds, seed * 31 + i as u64);
            let file = tmp.path().join(format!("{b}-{split}-{seed}.jsonl"));
            write_predictions(&file, &preds).unwrap();
            let ours = serde_json::to_value(score(&ds, split, &preds).unwrap()).unwrap();
            let out = Command::new(&py)
                .arg(&script)
                .arg(&root)
                .arg(b.to_string())
                .arg(split)
                .arg(&file)
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "reference failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            let want: Value = serde_json::from_slice(&out.stdout).unwrap();
            assert!(
                want.as_object().is_some_and(|m| !m.is_empty()),
                "{b} {split}: reference scored nothing"
            );
            compare(&want, &ours, &format!("{b}/{split}"));
            compared += 1;
        }
    }
    eprintln!("compared {compared} score runs with the numpy reference");
}
