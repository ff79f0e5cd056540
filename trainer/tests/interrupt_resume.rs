//! SIGINT and `--resume` through the real `trainer` binary: the interrupted
//! run exits 0 with a valid checkpoint at the step it reached, checkpoints
//! are never torn while being written, and the resumed run ends at the
//! planned step. Lives in the trainer package so that cargo builds the
//! binary (`CARGO_BIN_EXE_trainer`).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn synth(dir: &Path) -> PathBuf {
    let out = dir.join("data");
    let opts = deepfashion::synth::SynthOptions {
        seed: 3,
        images: 60,
        size: 64,
        overwrite: false,
    };
    deepfashion::synth::generate(&out, &opts, None).expect("synthetic data");
    out
}

fn small_model(dir: &Path) -> PathBuf {
    let mut cfg = deepfashion::contract::ModelConfig::tiny();
    cfg.name = "test-small".into();
    cfg.input_size = 64;
    cfg.widths = [4, 8, 8, 8, 8];
    cfg.fc_size = 32;
    cfg.embedding_dim = 16;
    let p = dir.join("model.json");
    std::fs::write(&p, cfg.to_json()).unwrap();
    p
}

fn check_dir_is_clean(run: &Path) -> Vec<(u64, PathBuf)> {
    let dir = run.join("checkpoints");
    let mut out = Vec::new();
    let Ok(rd) = std::fs::read_dir(&dir) else {
        return out;
    };
    for e in rd {
        let p = e.unwrap().path();
        let name = p.file_name().unwrap().to_string_lossy().to_string();
        if let Some(step) = name
            .strip_prefix("step-")
            .and_then(|s| s.strip_suffix(".safetensors"))
            .and_then(|s| s.parse::<u64>().ok())
        {
            out.push((step, p));
        }
    }
    out.sort();
    out
}

#[test]
fn sigint_writes_a_checkpoint_and_resume_finishes() {
    let tmp = tempfile::tempdir().unwrap();
    let data = synth(tmp.path());
    let model = small_model(tmp.path());
    let run = tmp.path().join("run");
    let train_cfg = tmp.path().join("train.json");
    std::fs::write(
        &train_cfg,
        r#"{"batch_size": 8, "p_items": 2, "k_images": 2, "checkpoint_every": 3, "log_every": 1}"#,
    )
    .unwrap();
    let total = 60u64;
    let args = |resume: bool| {
        let mut c = Command::new(env!("CARGO_BIN_EXE_trainer"));
        c.args(["train", "--data"])
            .arg(&data)
            .arg("--config")
            .arg(&model)
            .arg("--train-config")
            .arg(&train_cfg)
            .arg("--out")
            .arg(&run)
            .args(["--device", "cpu", "--threads", "1", "--quiet", "--no-eval"])
            .args(["--steps", &total.to_string()])
            .env("LD_LIBRARY_PATH", "") // the binary must not need it
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if resume {
            c.arg("--resume");
        }
        c
    };
    let mut child = args(false).spawn().expect("start trainer");
    // Wait until a few checkpoints have been written, loading every one seen.
    let t0 = Instant::now();
    let mut loaded = 0;
    loop {
        assert!(
            t0.elapsed() < Duration::from_secs(240),
            "trainer made no progress"
        );
        if let Some(status) = child.try_wait().unwrap() {
            let out = child.wait_with_output().unwrap();
            panic!(
                "trainer ended before SIGINT ({status}): {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        for (_, p) in check_dir_is_clean(&run) {
            // A checkpoint under its final name always loads (never torn),
            // unless it was pruned between listing and reading.
            match trainer::checkpoint::load(&p) {
                Ok(_) => loaded += 1,
                Err(e) => assert!(!p.exists(), "torn checkpoint {}: {e:#}", p.display()),
            }
        }
        if check_dir_is_clean(&run)
            .last()
            .is_some_and(|(s, _)| *s >= 6)
        {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(loaded > 0);
    let ok = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(ok.success());
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "exit {:?}: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("interrupted"), "{stdout}");
    let ckpts = check_dir_is_clean(&run);
    let (step, newest) = ckpts.last().cloned().expect("a checkpoint");
    assert!(step > 0 && step < total, "step {step}");
    let ck = trainer::checkpoint::load(&newest).unwrap();
    assert_eq!(ck.state.step, step);
    assert_eq!(ck.state.total_steps, total);
    assert!(!ck.state.optimizer_state_saved);
    // No temporary files left.
    for e in std::fs::read_dir(run.join("checkpoints")).unwrap() {
        let n = e.unwrap().file_name().to_string_lossy().to_string();
        assert!(!n.starts_with('.'), "left over {n}");
    }
    let rows_before = std::fs::read_to_string(run.join("metrics.jsonl"))
        .unwrap()
        .lines()
        .count();

    // Resume to the end.
    let out = args(true).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let ckpts = check_dir_is_clean(&run);
    let (last, path) = ckpts.last().cloned().unwrap();
    assert_eq!(last, total);
    let ck = trainer::checkpoint::load(&path).unwrap();
    assert_eq!(ck.state.step, total);
    let rows: Vec<serde_json::Value> = std::fs::read_to_string(run.join("metrics.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(rows.len() > rows_before);
    // The resumed rows continue after the interrupted step.
    assert_eq!(rows[rows_before]["step"].as_u64().unwrap(), step + 1);
    assert!(run.join("curves.png").exists());
}
