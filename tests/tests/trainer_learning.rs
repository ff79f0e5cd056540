//! The trainer learns: a short `trainer train --config tiny` run on a small
//! synthetic set (generated here) lowers its loss and beats the trivial
//! baselines on the test splits by a margin.
//!
//! Runs the `trainer` binary found by `e2e_tests::workspace_bin`; cargo
//! builds it when the trainer package is part of the run (`cargo test
//! --workspace`, as `cargo xtask test` does) or after `cargo build -p
//! trainer` into the same target directory.

use std::process::Command;

#[test]
fn tiny_training_beats_the_baselines() {
    let bin = e2e_tests::trainer_bin();
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    e2e_tests::synth(&data, 11, 800, 96);
    let mut cfg = deepfashion::contract::ModelConfig::tiny();
    cfg.name = "tiny-64".into();
    cfg.input_size = 64;
    let model = tmp.path().join("model.json");
    std::fs::write(&model, cfg.to_json()).unwrap();
    let run = tmp.path().join("run");
    let out = e2e_tests::run_ok(
        Command::new(&bin)
            .args(["train", "--data"])
            .arg(&data)
            .arg("--config")
            .arg(&model)
            .arg("--out")
            .arg(&run)
            .args(["--device", "cpu", "--threads", "2", "--quiet"])
            .args(["--steps", "600", "--seed", "1"]),
        "trainer train",
    );
    println!("{}", String::from_utf8_lossy(&out.stdout));

    // The loss terms fall (unweighted, so stage changes do not matter):
    // mean of the first vs the last quarter of the C&A rows.
    let rows: Vec<serde_json::Value> = std::fs::read_to_string(run.join("metrics.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .filter(|r: &serde_json::Value| r["batch"] == "category")
        .collect();
    assert!(rows.len() >= 8, "{} rows", rows.len());
    let k = rows.len() / 4;
    for term in ["category", "landmarks"] {
        let mean = |s: &[serde_json::Value]| {
            s.iter().map(|r| r[term].as_f64().unwrap()).sum::<f64>() / s.len() as f64
        };
        let (first, last) = (mean(&rows[..k]), mean(&rows[rows.len() - k..]));
        assert!(last < 0.7 * first, "{term} loss {first} -> {last}");
    }

    let s: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("summary.json")).unwrap()).unwrap();
    let get = |who: &str, m: &str| s[who][m].as_f64().unwrap();
    let (cat, cat0) = (
        get("model", "category_top1"),
        get("baseline", "category_top1"),
    );
    let (ne, ne0) = (get("model", "landmark_ne"), get("baseline", "landmark_ne"));
    let (ret, ret0) = (
        get("model", "inshop_top20"),
        get("baseline", "inshop_top20"),
    );
    // Margins of this shortened run (64 px input, 800 images, 600 steps;
    // measured 3.87x, 0.70x, 3.44x). The full-length targets of the trainer
    // issue (3x, 0.6x, 3x) hold for the 2,000-image `tiny` run, see
    // BENCHMARKS.md.
    assert!(cat >= 2.5 * cat0, "category top-1 {cat} vs majority {cat0}");
    assert!(ne <= 0.8 * ne0, "landmark NE {ne} vs mean landmark {ne0}");
    assert!(ret >= 2.0 * ret0, "In-shop top-20 {ret} vs random {ret0}");
    assert!(run.join("curves.png").exists());
}
