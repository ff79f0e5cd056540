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

/// Write a random In-shop and C&A coarse benchmark (released formats, with
/// padding and zero-padded numbers) so that the comparison also runs on
/// sets larger than the hand-written fixtures.
fn write_random_benchmarks(root: &Path, seed: u64) {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let n = 150;
    // In-shop: 30 items, 5 images each; image 0 train (items < 10) else
    // query, the rest gallery.
    let ins = root.join("In-shop Clothes Retrieval Benchmark");
    std::fs::create_dir_all(ins.join("Anno")).unwrap();
    std::fs::create_dir_all(ins.join("Eval")).unwrap();
    let (mut part, mut bbox, mut lms) = (String::new(), String::new(), String::new());
    for i in 0..n {
        let item = i / 5;
        let name = format!("img/WOMEN/Dresses/id_{item:08}/{:02}_1_front.jpg", i % 5);
        let split = if item < 10 {
            "train"
        } else if i % 5 == 0 {
            "query"
        } else {
            "gallery"
        };
        part += &format!("{name:<60}id_{item:08}   {split}\n");
        let ct = rng.gen_range(1..=3u8);
        bbox += &format!(
            "{name:<60}{ct}  1  {:03}  {:03}  {:03}  {:03}\n",
            rng.gen_range(0..50),
            rng.gen_range(0..50),
            rng.gen_range(100..250),
            rng.gen_range(100..250)
        );
        let k = [6, 4, 8][usize::from(ct - 1)];
        let trip: Vec<String> = (0..k)
            .map(|_| {
                format!(
                    "{} {:03} {:03}",
                    rng.gen_range(0..3),
                    rng.gen_range(0..260),
                    rng.gen_range(0..260)
                )
            })
            .collect();
        lms += &format!(
            "{name:<60}{ct}  {}  {}\n",
            rng.gen_range(1..5),
            trip.join("  ")
        );
    }
    let w = |p: PathBuf, head: &str, body: &str| {
        std::fs::write(p, format!("{n}\n{head}\n{body}")).unwrap()
    };
    w(
        ins.join("Eval/list_eval_partition.txt"),
        "image_name  item_id  evaluation_status",
        &part,
    );
    w(
        ins.join("Anno/list_bbox_inshop.txt"),
        "image_name  clothes_type  pose_type  x_1  y_1  x_2  y_2",
        &bbox,
    );
    w(
        ins.join("Anno/list_landmarks_inshop.txt"),
        "image_name  clothes_type  variation_type  landmark_visibility_1",
        &lms,
    );
    // C&A: 8 categories, 20 attributes, no variation column.
    let ca = root.join("Category and Attribute Prediction Benchmark");
    std::fs::create_dir_all(ca.join("Anno")).unwrap();
    std::fs::create_dir_all(ca.join("Eval")).unwrap();
    let cats: String = (0..8)
        .map(|c| format!("Cat{c}            {}\n", 1 + c % 3))
        .collect();
    std::fs::write(
        ca.join("Anno/list_category_cloth.txt"),
        format!("8\ncategory_name  category_type\n{cats}"),
    )
    .unwrap();
    let attrs: String = (0..20)
        .map(|a| format!("attr {a} x        {}\n", 1 + a % 5))
        .collect();
    std::fs::write(
        ca.join("Anno/list_attr_cloth.txt"),
        format!("20\nattribute_name  attribute_type\n{attrs}"),
    )
    .unwrap();
    part.clear();
    bbox.clear();
    lms.clear();
    let (mut cat, mut att) = (String::new(), String::new());
    for i in 0..n {
        let name = format!("img/Some_Thing/img_{i:08}.jpg");
        let c = rng.gen_range(0..8usize);
        let split = ["train", "val", "test"][rng.gen_range(0..3)];
        part += &format!("{name:<50}{split}\n");
        cat += &format!("{name:<50}{}\n", c + 1);
        let v: Vec<&str> = (0..20)
            .map(|_| ["-1", "-1", "-1", "0", " 1"][rng.gen_range(0..5)])
            .collect();
        att += &format!("{name:<50}{}\n", v.join(" "));
        bbox += &format!(
            "{name:<50}{:03} {:03} {:03} {:03}\n",
            rng.gen_range(0..50),
            rng.gen_range(0..50),
            rng.gen_range(100..250),
            rng.gen_range(100..250)
        );
        let ct = 1 + c % 3;
        let k = [6, 4, 8][ct - 1];
        let trip: Vec<String> = (0..k)
            .map(|_| {
                format!(
                    "{} {:03} {:03}",
                    rng.gen_range(0..3),
                    rng.gen_range(0..260),
                    rng.gen_range(0..260)
                )
            })
            .collect();
        lms += &format!("{name:<50}{ct}  {}  \n", trip.join("  "));
    }
    w(
        ca.join("Eval/list_eval_partition.txt"),
        "image_name  evaluation_status",
        &part,
    );
    w(
        ca.join("Anno/list_category_img.txt"),
        "image_name  category_label",
        &cat,
    );
    w(
        ca.join("Anno/list_attr_img.txt"),
        "image_name  attribute_labels",
        &att,
    );
    w(
        ca.join("Anno/list_bbox.txt"),
        "image_name  x_1  y_1  x_2  y_2",
        &bbox,
    );
    w(
        ca.join("Anno/list_landmarks.txt"),
        "image_name  clothes_type  landmark_visibility_1",
        &lms,
    );
}

#[test]
fn score_matches_numpy_reference_on_generated_sets() {
    let Some(py) = python() else {
        eprintln!(
            "SKIP score_matches_numpy_reference_on_generated_sets: no python with numpy found"
        );
        return;
    };
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/score_reference.py");
    let tmp = tempfile::tempdir().unwrap();
    write_random_benchmarks(tmp.path(), 7);
    for (b, split) in [
        (Benchmark::InShop, "test"),
        (Benchmark::CategoryAttribute, "val"),
    ] {
        let ds = load(tmp.path(), b, &LoadOptions::default()).unwrap();
        let preds = random_predictions(&ds, 11);
        let file = tmp.path().join(format!("{b}.jsonl"));
        write_predictions(&file, &preds).unwrap();
        let ours = serde_json::to_value(score(&ds, split, &preds).unwrap()).unwrap();
        let out = Command::new(&py)
            .arg(&script)
            .arg(tmp.path())
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
        compare(&want, &ours, &format!("{b}/{split}"));
        eprintln!("{b}/{split}: {}", serde_json::to_string(&ours).unwrap());
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
