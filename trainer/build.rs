//! Link libtorch so that the `trainer` binaries start without
//! `LD_LIBRARY_PATH` and see CUDA (DESIGN.md section 11): `-ltorch` (and
//! `-ltorch_cuda` when the libtorch has it) with `--no-as-needed`, so the
//! CUDA backend's static initializers run, plus an rpath to libtorch's lib
//! folder. The folder comes from torch-sys (`DEP_TCH_LIBTORCH_LIB`), else
//! `LIBTORCH/lib`, else the venv's `python -c 'import torch'`.

use std::path::PathBuf;
use std::process::Command;

fn libtorch_lib() -> Option<PathBuf> {
    if let Ok(p) = std::env::var("DEP_TCH_LIBTORCH_LIB") {
        return Some(PathBuf::from(p));
    }
    if let Ok(p) = std::env::var("LIBTORCH") {
        return Some(PathBuf::from(p).join("lib"));
    }
    let python = std::env::var("PYTHON_SYS_EXECUTABLE").unwrap_or_else(|_| "python3".into());
    let out = Command::new(python)
        .args([
            "-c",
            "import torch, os; print(os.path.join(os.path.dirname(torch.__file__), 'lib'))",
        ])
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()))
}

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=DEP_TCH_LIBTORCH_LIB");
    println!("cargo:rerun-if-env-changed=LIBTORCH");
    if std::env::var("CARGO_CFG_TARGET_OS").as_deref() != Ok("linux") {
        return;
    }
    let Some(lib) = libtorch_lib() else {
        println!("cargo:warning=trainer: libtorch lib folder not found; binaries will need LD_LIBRARY_PATH");
        return;
    };
    println!("cargo:rustc-link-search=native={}", lib.display());
    println!("cargo:rustc-link-arg=-Wl,-rpath,{}", lib.display());
    println!("cargo:rustc-link-arg=-Wl,--no-as-needed");
    println!("cargo:rustc-link-arg=-ltorch");
    if lib.join("libtorch_cuda.so").exists() {
        println!("cargo:rustc-link-arg=-ltorch_cuda");
    }
    println!("cargo:rustc-link-arg=-Wl,--as-needed");
}
