//! The demo assets shipped in the repository (`assets/demo/`, made by
//! `cargo xtask demo-assets`): a small int8 model of the `tiny` config
//! trained on synthetic DeepFashion, its shop table (the synthetic In-shop
//! gallery) and a short MJPEG clip of synthetic test images. They are the
//! built-in default of `fashion-runtime tag`: the demo model knows only
//! synthetic garments.

use std::path::{Path, PathBuf};

/// File name of the demo model (int8 ONNX).
pub const MODEL: &str = "fashionnet-tiny.int8.onnx";
/// File name of the demo shop table.
pub const TABLE: &str = "shop.table";
/// File name of the demo clip (MJPEG).
pub const CLIP: &str = "demo.mjpeg";

/// The folder holding the demo assets: `$FASHION_DEMO_DIR` when set,
/// otherwise `assets/demo` of the source tree this binary was built from,
/// otherwise `demo/` next to the binary (how a bundle may ship them).
/// `None` when none of these holds the demo model.
pub fn dir() -> Option<PathBuf> {
    let mut candidates = Vec::new();
    if let Some(d) = std::env::var_os("FASHION_DEMO_DIR") {
        candidates.push(PathBuf::from(d));
    }
    candidates.push(Path::new(env!("CARGO_MANIFEST_DIR")).join("../assets/demo"));
    if let Some(exe_dir) = std::env::current_exe()
        .ok()
        .and_then(|e| e.parent().map(Path::to_path_buf))
    {
        candidates.push(exe_dir.join("demo"));
    }
    candidates.into_iter().find(|d| d.join(MODEL).is_file())
}

/// Path of one demo asset (`MODEL`, `TABLE` or `CLIP`), when it exists.
pub fn file(name: &str) -> Option<PathBuf> {
    dir().map(|d| d.join(name)).filter(|p| p.is_file())
}
