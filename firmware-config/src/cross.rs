//! Cross-building the runtime for a board, and checking a prebuilt binary
//! against it.
//!
//! The build is `cargo zigbuild --release -p fashion-runtime --target
//! <triple>.<glibc>`: zig links against the old glibc's symbol versions so
//! one binary runs on every board with that triple. Each (triple, glibc)
//! gets its own cargo target directory under a cache directory, so a second
//! bundle for another board with the same triple reuses the binary (cargo
//! sees nothing to rebuild).

use crate::board::{parse_glibc, BoardProfile};
use crate::elf::{self, ElfInfo, Machine};
use std::path::{Path, PathBuf};
use std::process::Command;

/// Errors raised by the cross build and the binary check.
#[derive(Debug, thiserror::Error)]
pub enum CrossError {
    /// A tool could not be started.
    #[error("could not start `{tool}`: {source}; {hint}")]
    Tool {
        /// The tool.
        tool: String,
        /// The I/O error.
        source: std::io::Error,
        /// How to get it.
        hint: &'static str,
    },
    /// The build failed.
    #[error("cross build for {target} failed ({status}); command: {command}")]
    Build {
        /// Target with glibc suffix.
        target: String,
        /// Exit status.
        status: String,
        /// The command line.
        command: String,
    },
    /// The binary could not be read.
    #[error(transparent)]
    Elf(#[from] elf::ElfError),
    /// The binary does not fit the board.
    #[error("runtime binary {path} does not fit board `{board}`: {reason}")]
    Mismatch {
        /// The binary.
        path: String,
        /// The board.
        board: String,
        /// What does not fit.
        reason: String,
    },
}

/// The cache key (and `--target` value) for a board: `<triple>.<build_glibc>`.
pub fn build_key(board: &BoardProfile) -> String {
    format!("{}.{}", board.target, board.build_glibc)
}

/// The Debian cross sysroot for a triple (for bindgen's headers).
fn debian_sysroot(triple: &str) -> Option<&'static str> {
    match Machine::from_triple(triple)? {
        Machine::Aarch64 => Some("/usr/aarch64-linux-gnu"),
        Machine::Arm => Some("/usr/arm-linux-gnueabihf"),
        _ => None,
    }
}

/// Build `fashion-runtime` for `board` with `cargo zigbuild` in the
/// workspace at `workspace`, with target directory
/// `<cache>/<triple>.<glibc>`; returns the binary's path. `venv_bin` (the
/// project virtualenv's `bin`, where `pip install ziglang` put zig) is put
/// first on `PATH`.
pub fn build_runtime(
    board: &BoardProfile,
    workspace: &Path,
    cache: &Path,
    venv_bin: Option<&Path>,
) -> Result<PathBuf, CrossError> {
    let key = build_key(board);
    let target_dir = cache.join(&key);
    let mut cmd = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    cmd.current_dir(workspace)
        .args([
            "zigbuild",
            "--release",
            "-p",
            "fashion-runtime",
            "--target",
            &key,
        ])
        .env("CARGO_TARGET_DIR", &target_dir);
    if let Some(bin) = venv_bin {
        let path = std::env::var_os("PATH").unwrap_or_default();
        let mut paths = vec![bin.to_path_buf()];
        paths.extend(std::env::split_paths(&path));
        if let Ok(joined) = std::env::join_paths(paths) {
            cmd.env("PATH", joined);
        }
    }
    if let Some(sysroot) = debian_sysroot(&board.target) {
        // `v4l`'s bindgen needs the target's kernel headers. cargo-zigbuild
        // sets the target-specific BINDGEN_EXTRA_CLANG_ARGS_<target> itself
        // (zig's include flags appended to the user's value, or to the
        // generic variable when the user set none), so the sysroot goes into
        // the generic variable, which reaches every spelling it writes.
        if std::env::var_os("BINDGEN_EXTRA_CLANG_ARGS").is_none() {
            cmd.env(
                "BINDGEN_EXTRA_CLANG_ARGS",
                format!("--sysroot={sysroot} -I{sysroot}/include"),
            );
        }
    }
    let shown = format!("CARGO_TARGET_DIR={} {:?}", target_dir.display(), cmd);
    tracing::info!("cross-building: {shown}");
    let started = std::time::Instant::now();
    let status = cmd.status().map_err(|source| CrossError::Tool {
        tool: "cargo zigbuild".into(),
        source,
        hint: "install it with `cargo install cargo-zigbuild` and zig with `pip install ziglang` (cargo xtask setup does both)",
    })?;
    if !status.success() {
        return Err(CrossError::Build {
            target: key,
            status: status.to_string(),
            command: shown,
        });
    }
    eprintln!(
        "firmware-config: built fashion-runtime for {key} in {:.0} s",
        started.elapsed().as_secs_f64()
    );
    Ok(target_dir
        .join(&board.target)
        .join("release")
        .join("fashion-runtime"))
}

/// Check that a binary runs on `board`: ELF machine and word size match the
/// triple, and the highest `GLIBC_` version it needs is at most the board's.
pub fn check_binary(path: &Path, board: &BoardProfile) -> Result<ElfInfo, CrossError> {
    let info = elf::read(path)?;
    let mismatch = |reason: String| CrossError::Mismatch {
        path: path.display().to_string(),
        board: board.name.clone(),
        reason,
    };
    let want = Machine::from_triple(&board.target)
        .ok_or_else(|| mismatch(format!("unknown architecture in target `{}`", board.target)))?;
    if info.machine != want {
        return Err(mismatch(format!(
            "it is built for {:?}, the board needs {want:?} ({})",
            info.machine, board.target
        )));
    }
    let want_64 = want != Machine::Arm;
    if info.is_64 != want_64 {
        return Err(mismatch(format!(
            "it is {}-bit, the board runs a {}-bit OS",
            if info.is_64 { 64 } else { 32 },
            if want_64 { 64 } else { 32 }
        )));
    }
    let board_glibc = parse_glibc(&board.glibc)
        .ok_or_else(|| mismatch(format!("board glibc `{}` is malformed", board.glibc)))?;
    if let Some(max) = info.max_glibc() {
        if (max.0, max.1) > board_glibc || ((max.0, max.1) == board_glibc && max.2 > 0) {
            return Err(mismatch(format!(
                "it requires GLIBC_{} but the board's oldest supported OS has glibc {}; build with `cargo zigbuild --target {}`",
                elf::format_version(max),
                board.glibc,
                build_key(board)
            )));
        }
    }
    Ok(info)
}
