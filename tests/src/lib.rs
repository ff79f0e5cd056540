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
