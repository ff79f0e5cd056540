//! Shared helpers for the firmware-config integration tests: running the
//! CLI, writing configs and placeholder inputs, and the skip-or-fail rule
//! for tests that need outside tools (`FASHION_REQUIRE_SERVICES=1` turns a
//! skip into a failure).

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The CLI under test.
pub fn cli() -> Command {
    Command::new(env!("CARGO_BIN_EXE_firmware-config"))
}

/// Run the CLI, returning (success, stdout, stderr).
pub fn run(args: &[&str]) -> (bool, String, String) {
    let out: Output = cli().args(args).output().expect("firmware-config runs");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Whether missing services/tools must fail the test (CI) instead of skipping it.
pub fn services_required() -> bool {
    std::env::var("FASHION_REQUIRE_SERVICES").is_ok_and(|v| v == "1")
}

/// Skip (print a notice, return `true`) or fail, when `why` keeps a test from running.
pub fn skip_or_fail(test: &str, why: &str) -> bool {
    if services_required() {
        panic!("{test}: {why} (FASHION_REQUIRE_SERVICES=1, so this is a failure, not a skip)");
    }
    eprintln!("SKIP {test}: {why} (set FASHION_REQUIRE_SERVICES=1 to make this a failure)");
    true
}

/// Whether a program is on PATH (or an absolute path exists).
pub fn have(program: &str) -> bool {
    if program.starts_with('/') {
        return Path::new(program).exists();
    }
    std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join(program).is_file()))
        .unwrap_or(false)
}

/// A valid device config for a board of the built-in kind `camera`
/// (`mjpeg:-` for CSI, `v4l:/dev/fashion-camera` for USB).
pub fn config_text(source: &str, threads: usize) -> String {
    format!(
        "model = \"/opt/fashion-runtime/current/model/edge.onnx\"\nsource = \"{source}\"\njsonl = \"-\"\nstats_interval_s = 10\n\n[camera]\nwidth = 640\nheight = 480\nmax_fps = 15\n\n[engine]\nthreads = {threads}\n"
    )
}

/// A profile TOML for this x86-64 machine, so a bundle can carry a binary
/// that runs here (the SSH tests install onto loopback).
pub fn loopback_board(dir: &Path) -> PathBuf {
    let p = dir.join("loopback-x86.toml");
    std::fs::write(
        &p,
        r#"name = "loopback-x86"
description = "This test machine (x86-64 Linux), reached over SSH on loopback"
target = "x86_64-unknown-linux-gnu"
glibc = "2.99"
build_glibc = "2.17"
cores = 2
threads = 2
camera = "usb-v4l2"
cameras = ["usb-v4l2"]
capture_width = 640
capture_height = 480
model_preset = "edge"
input_size = 192
"#,
    )
    .unwrap();
    p
}

/// Placeholder model and table files (the bundle tests skip the model
/// metadata check; the bytes only have to travel intact).
pub fn placeholder_inputs(dir: &Path, tag: &str) -> (PathBuf, PathBuf) {
    let model = dir.join("edge.onnx");
    let table = dir.join("shop.table");
    std::fs::write(&model, format!("model bytes {tag}").repeat(1000)).unwrap();
    std::fs::write(&table, format!("table bytes {tag}").repeat(100)).unwrap();
    (model, table)
}

/// Build a bundle with the CLI; panics with its stderr on failure.
pub fn bundle(
    board: &str,
    runtime_bin: &Path,
    dir: &Path,
    config: &Path,
    version: &str,
    out: &Path,
) {
    let (model, table) = placeholder_inputs(dir, version);
    let (ok, stdout, stderr) = run(&[
        "bundle",
        "--board",
        board,
        "--model",
        model.to_str().unwrap(),
        "--table",
        table.to_str().unwrap(),
        "--config",
        config.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--runtime-bin",
        runtime_bin.to_str().unwrap(),
        "--version",
        version,
        "--skip-model-check",
    ]);
    assert!(ok, "bundle for {board} failed:\n{stdout}\n{stderr}");
}
