//! Where things are and how to run a step: the workspace root, the project
//! virtualenv, and the environment every cargo invocation gets (libtorch from
//! the venv's PyTorch).

use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};
use std::process::Command;

/// The workspace root (parent of `xtask/`).
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives in the workspace")
        .to_path_buf()
}

/// The project virtualenv (`.venv` at the root).
pub fn venv() -> PathBuf {
    root().join(".venv")
}

/// The venv's python.
pub fn venv_python() -> PathBuf {
    venv().join("bin").join("python")
}

/// The cargo target directory in use (`CARGO_TARGET_DIR`, else `target/`
/// at the root): where the builds xtask starts leave their binaries.
pub fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join("target"))
}

/// A command at the workspace root with the venv on PATH and
/// `LIBTORCH_USE_PYTORCH=1`, so tch builds against the venv's torch.
pub fn command(program: impl AsRef<std::ffi::OsStr>) -> Command {
    let mut c = Command::new(program);
    c.current_dir(root());
    let venv = venv();
    let path = std::env::var_os("PATH").unwrap_or_default();
    let mut paths = vec![venv.join("bin")];
    paths.extend(std::env::split_paths(&path));
    c.env("PATH", std::env::join_paths(paths).expect("PATH joins"));
    c.env("VIRTUAL_ENV", &venv);
    c.env("LIBTORCH_USE_PYTORCH", "1");
    c
}

/// `cargo` with the project environment.
pub fn cargo() -> Command {
    command(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
}

/// Run a command, echoing it; fail with the step name when it fails.
pub fn run(step: &str, cmd: &mut Command) -> Result<()> {
    eprintln!("xtask: [{step}] {cmd:?}");
    let started = std::time::Instant::now();
    let status = cmd
        .status()
        .with_context(|| format!("step `{step}`: could not start {:?}", cmd.get_program()))?;
    let secs = started.elapsed().as_secs_f64();
    if !status.success() {
        bail!("step `{step}` failed ({status}) after {secs:.0} s");
    }
    eprintln!("xtask: [{step}] done in {secs:.0} s");
    Ok(())
}

/// Whether a command runs and exits 0 (output discarded).
pub fn succeeds(cmd: &mut Command) -> bool {
    cmd.stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

/// The CPU model (`/proc/cpuinfo`), for the machine line of a benchmark;
/// the architecture when it cannot be read.
pub fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|x| x.trim().to_string())
        })
        .unwrap_or_else(|| std::env::consts::ARCH.to_string())
}

/// The current UTC time in `date` format `fmt` (e.g. `+%Y-%m-%d`), for the
/// date line of a benchmark; empty when `date` cannot run.
pub fn utc_now(fmt: &str) -> String {
    Command::new("date")
        .args(["-u", fmt])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default()
}
