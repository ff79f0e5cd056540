//! `fashion-runtime bench`: per-stage numbers, and `--choose` measuring
//! every candidate and writing the winner into the config.

mod common;

use common::TestModel;
use fashion_runtime::config::DeviceConfig;

#[test]
fn bench_reports_stages_and_choose_writes_the_config() {
    let dir = tempfile::tempdir().unwrap();
    let fp32 = dir.path().join("edge.onnx");
    TestModel::small(50).write(&fp32);
    // A second "form" next to it (same contract; the name is what counts).
    let other = dir.path().join("edge.int8.onnx");
    let mut m = TestModel::small(50);
    m.hidden = 4;
    m.write(&other);

    let out = common::runtime_command()
        .args([
            "bench",
            "--json",
            "--frames",
            "3",
            "--threads",
            "2",
            "--model",
        ])
        .arg(&fp32)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(r["threads"], 2);
    assert_eq!(r["frames"], 3);
    for stage in ["preprocess", "inference", "decode", "total"] {
        assert!(r[stage]["mean_us"].as_f64().unwrap() > 0.0, "{stage}: {r}");
    }
    let share = r["outside_inference_share"].as_f64().unwrap();
    assert!((0.0..1.0).contains(&share));

    let cfg = dir.path().join("device.toml");
    std::fs::write(&cfg, "source = \"demo\"\n").unwrap();
    let out = common::runtime_command()
        .args([
            "bench",
            "--choose",
            "--json",
            "--frames",
            "2",
            "--threads",
            "2",
            "--config",
        ])
        .arg(&cfg)
        .arg("--model")
        .arg(&fp32)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let cands = r["candidates"].as_array().unwrap();
    // 2 forms (the int8 sibling found by name) x threads 1..2 x DDS on/off.
    assert_eq!(cands.len(), 8);
    let w = &cands[r["winner"].as_u64().unwrap() as usize];
    let best = cands
        .iter()
        .map(|c| c["total"]["mean_us"].as_f64().unwrap())
        .fold(f64::INFINITY, f64::min);
    assert_eq!(w["total"]["mean_us"].as_f64().unwrap(), best);
    let c = DeviceConfig::load(&cfg).unwrap();
    assert_eq!(c.source.map(|s| s.to_string()).as_deref(), Some("demo"));
    assert_eq!(
        c.model.unwrap(),
        std::path::PathBuf::from(w["model"].as_str().unwrap())
    );
    assert_eq!(c.engine.threads as u64, w["threads"].as_u64().unwrap());
    assert_eq!(
        c.engine.disable_direct_spatial,
        w["disable_direct_spatial"].as_bool().unwrap()
    );
}
