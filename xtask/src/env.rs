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

/// Run a tool for its output: its stdout when it exits 0, else an error
/// naming `step` with the tool's stderr.
pub fn stdout_of(step: &str, cmd: &mut Command) -> Result<String> {
    eprintln!("xtask: [{step}] {cmd:?}");
    let out = cmd
        .output()
        .with_context(|| format!("step `{step}`: could not start {:?}", cmd.get_program()))?;
    if !out.status.success() {
        bail!(
            "step `{step}` failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The last JSON object a tool printed: the last line that starts (at
/// column 0) with `{`, parsed as one value; a pretty-printed object's inner
/// lines are indented, and text after the object is ignored.
pub fn last_json(text: &str) -> Result<serde_json::Value> {
    let start = text
        .rfind("\n{")
        .map(|i| i + 1)
        .or_else(|| text.starts_with('{').then_some(0))
        .with_context(|| format!("no JSON object in the output:\n{text}"))?;
    serde_json::Deserializer::from_str(&text[start..])
        .into_iter::<serde_json::Value>()
        .next()
        .context("no JSON object in the output")?
        .with_context(|| format!("bad JSON in the output:\n{}", &text[start..]))
}

/// [`stdout_of`] and [`last_json`]: a tool that reports one JSON object.
pub fn json_of(step: &str, cmd: &mut Command) -> Result<serde_json::Value> {
    last_json(&stdout_of(step, cmd)?).with_context(|| format!("step `{step}`"))
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

#[cfg(test)]
mod tests {
    use super::last_json;

    #[test]
    fn last_json_finds_the_last_object_pretty_or_not() {
        let v = last_json("log {not json}\n{\"a\": 1}\n{\"b\": 2}\ntrailing text\n").unwrap();
        assert_eq!(v["b"], 2);
        let v = last_json("{\n  \"x\": {\n    \"y\": 3\n  }\n}\n").unwrap();
        assert_eq!(v["x"]["y"], 3);
        assert!(last_json("no object here").is_err());
        assert!(last_json("{\"broken\": \n").is_err());
    }
}
