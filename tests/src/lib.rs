//! End-to-end tests across the FashionNet crates live in `tests/tests/`;
//! this library holds the helpers they share (locating built binaries).

use std::path::PathBuf;

/// Path of a workspace binary built into the same target directory as the
/// running test (`target/<profile>/<name>`).
pub fn workspace_bin(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("current exe");
    // target/<profile>/deps/<test> -> target/<profile>/<name>
    let dir = exe.parent().and_then(|p| p.parent()).expect("target dir");
    dir.join(name)
}

/// The `trainer` binary of this target directory; fails the test with how
/// to build it when it is missing.
pub fn trainer_bin() -> PathBuf {
    bin("trainer", "trainer")
}

/// Binary `name` of workspace package `package` in this target directory;
/// fails the test with how to build it when it is missing.
pub fn bin(name: &str, package: &str) -> PathBuf {
    let bin = workspace_bin(name);
    assert!(
        bin.exists(),
        "{} not built: run `cargo build -p {package}` (same target dir) or `cargo test --workspace`",
        bin.display()
    );
    bin
}

/// Generate a synthetic DeepFashion set into `dir` (`images` Category &
/// Attribute images of `size` px, seeded).
pub fn synth(dir: &std::path::Path, seed: u64, images: usize, size: u32) {
    let opts = deepfashion::synth::SynthOptions {
        seed,
        images,
        size,
        overwrite: false,
    };
    deepfashion::synth::generate(dir, &opts, None).expect("synthetic data");
}

/// Run `cmd` to completion and fail the test, with its stderr, unless it
/// exits 0 (`what` names it in the message).
pub fn run_ok(cmd: &mut std::process::Command, what: &str) -> std::process::Output {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("{what}: could not start: {e}"));
    assert!(
        out.status.success(),
        "{what} failed: {}\n{}",
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(&out.stdout)
    );
    out
}
