//! `cargo xtask gpu-check`: a self-contained folder for a CUDA machine with
//! PyTorch 2.11 and no Rust. It holds the release `trainer` and
//! `deepfashion` binaries (stripped), the PyTorch reference script and a
//! `run.sh` that generates synthetic data, trains the `paper` config for a
//! fixed number of steps against that machine's libtorch
//! (`LD_LIBRARY_PATH` = its `torch/lib`), and prints images/s, peak GPU
//! memory and the PyTorch reference's images/s for the same steps.
//!
//! `run.sh` also works on CPU (`DEVICE=cpu CONFIG=tiny STEPS=3`), which is how
//! it is checked on machines without a GPU.

use anyhow::{bail, Context, Result};
use std::path::Path;

use crate::env;

/// Options of `cargo xtask gpu-check`.
#[derive(clap::Args)]
pub struct Args {
    /// After building, run `run.sh` here in CPU mode with a tiny step count.
    #[arg(long)]
    smoke: bool,
}

const RUN_SH: &str = r#"#!/usr/bin/env bash
# FashionNet CUDA check: needs python3 with torch==2.11 (CUDA build), no Rust.
# Env knobs: DEVICE (cuda), CONFIG (paper), STEPS (200), BATCH (32),
# IMAGES (2000), PYTHON (python3), WORK (a temp folder).
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
PY="${PYTHON:-python3}"
DEVICE="${DEVICE:-cuda}"
CONFIG="${CONFIG:-paper}"
STEPS="${STEPS:-200}"
BATCH="${BATCH:-32}"
IMAGES="${IMAGES:-2000}"
WORK="${WORK:-$(mktemp -d)}"
TORCH_LIB="$("$PY" -c 'import torch, os; print(os.path.join(os.path.dirname(torch.__file__), "lib"))')"
export LD_LIBRARY_PATH="$TORCH_LIB${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
echo "== torch: $("$PY" -c 'import torch; print(torch.__version__, "cuda", torch.cuda.is_available())')"
echo "== trainer info"
"$HERE/bin/trainer" info
echo "== synthetic data ($IMAGES images) in $WORK/data"
[ -d "$WORK/data" ] || "$HERE/bin/deepfashion" synth --out "$WORK/data" --images "$IMAGES" --size 160
MEMLOG="$WORK/gpu-mem.log"
SMI_PID=""
if [ "$DEVICE" != "cpu" ] && command -v nvidia-smi >/dev/null; then
  nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits -lms 200 > "$MEMLOG" &
  SMI_PID=$!
fi
echo "== trainer train --config $CONFIG --steps $STEPS --device $DEVICE"
printf '{"batch_size": %s, "checkpoint_every": 0, "log_every": 10}\n' "$BATCH" > "$WORK/train.json"
START=$(date +%s.%N)
"$HERE/bin/trainer" train --data "$WORK/data" --config "$CONFIG" --train-config "$WORK/train.json" \
  --out "$WORK/run" --device "$DEVICE" --steps "$STEPS" --no-eval --quiet
END=$(date +%s.%N)
[ -n "$SMI_PID" ] && kill "$SMI_PID" 2>/dev/null || true
echo "== results"
"$PY" - "$WORK/run/metrics.jsonl" "$START" "$END" "$MEMLOG" <<'PYEOF'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
last = rows[-1]
print(f"trainer: {last['step']} steps, {last['images_per_s']:.1f} images/s (training loop incl. data), "
      f"wall {float(sys.argv[3]) - float(sys.argv[2]):.1f} s, final loss {last['loss']:.4f}")
try:
    mem = [int(x) for x in open(sys.argv[4]) if x.strip().isdigit()]
    print(f"trainer: peak GPU memory used (nvidia-smi, whole GPU) {max(mem)} MiB")
except (OSError, ValueError):
    print("trainer: peak GPU memory: not measured (no nvidia-smi or CPU run)")
PYEOF
AMP=""
[ "$DEVICE" != "cpu" ] && AMP="--amp"
echo "== same model step on random data: tch vs PyTorch eager ($STEPS steps, batch $BATCH)"
"$HERE/bin/trainer" bench-step --config "$CONFIG" --batch "$BATCH" --steps "$STEPS" --device "$DEVICE" $AMP
"$PY" "$HERE/fashionnet_reference.py" --config "$CONFIG" --batch "$BATCH" --steps "$STEPS" --device "$DEVICE" $AMP
echo "== done (work folder $WORK)"
"#;

fn copy(from: &Path, to: &Path) -> Result<()> {
    std::fs::copy(from, to)
        .with_context(|| format!("copying {} to {}", from.display(), to.display()))?;
    Ok(())
}

fn dir_size(p: &Path) -> u64 {
    std::fs::read_dir(p)
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .map(|e| {
                    let m = e.metadata().ok();
                    if m.as_ref().is_some_and(|m| m.is_dir()) {
                        dir_size(&e.path())
                    } else {
                        m.map(|m| m.len()).unwrap_or(0)
                    }
                })
                .sum()
        })
        .unwrap_or(0)
}

/// Build the folder (and optionally smoke-test it on CPU).
pub fn run(args: &Args) -> Result<()> {
    env::run(
        "build trainer + deepfashion (release, x86-64)",
        env::cargo().args([
            "build",
            "--release",
            "-p",
            "trainer",
            "--bin",
            "trainer",
            "-p",
            "deepfashion",
            "--bin",
            "deepfashion",
        ]),
    )?;
    let out = env::root().join("gpu-check");
    let bin = out.join("bin");
    std::fs::create_dir_all(&bin).with_context(|| format!("creating {}", bin.display()))?;
    let rel = env::target_dir().join("release");
    for name in ["trainer", "deepfashion"] {
        let dst = bin.join(name);
        copy(&rel.join(name), &dst)?;
        env::run("strip", std::process::Command::new("strip").arg(&dst))?;
    }
    copy(
        &env::root().join("bench").join("fashionnet_reference.py"),
        &out.join("fashionnet_reference.py"),
    )?;
    let run_sh = out.join("run.sh");
    std::fs::write(&run_sh, RUN_SH).with_context(|| format!("writing {}", run_sh.display()))?;
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&run_sh, std::fs::Permissions::from_mode(0o755))?;
    let size = dir_size(&out);
    eprintln!(
        "xtask: gpu-check folder {} is {:.1} MB",
        out.display(),
        size as f64 / 1e6
    );
    if size > 60_000_000 {
        bail!("gpu-check folder is {} bytes, over the 60 MB limit", size);
    }
    if args.smoke {
        let work = out.join("smoke-work");
        let _ = std::fs::remove_dir_all(&work);
        env::run(
            "run.sh on CPU (smoke)",
            env::command("bash")
                .arg(&run_sh)
                .env("DEVICE", "cpu")
                .env("CONFIG", "tiny")
                .env("STEPS", "3")
                .env("BATCH", "8")
                .env("IMAGES", "40")
                .env("PYTHON", env::venv_python())
                .env("WORK", &work),
        )?;
    }
    println!(
        "gpu-check ready: copy {} to the CUDA machine and run ./run.sh",
        out.display()
    );
    Ok(())
}
