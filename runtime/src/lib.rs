//! `fashion-runtime`: FashionNet on the board (DESIGN.md sections 8, 9, 11).
//!
//! Camera frames in; landmarks, categories, attributes and the nearest shop
//! items out, with tract running the exported ONNX graph. It must depend
//! on neither libtorch nor anything workstation-only, and it cross-compiles
//! for `aarch64-unknown-linux-gnu` and `armv7-unknown-linux-gnueabihf`.
//!
//! - [`model_info`]: the contract metadata of a model file, checked at load.
//! - [`engine`]: the tract plan with its reused input and output buffers.
//! - [`sources`]: frame sources (V4L2, MJPEG streams, images, demo).
//! - [`demo_assets`]: the shipped demo model, table and clip (the default).
//! - [`pipeline`]: one frame: ROI, preprocess, infer, decode, search.
//! - [`table`]: the shop table as the runtime uses it.
//! - [`tag`]: the frame loop with its fault handling.
//! - [`config`]: the device config (TOML) shared with `firmware-config`.
//! - [`stats`], [`signals`], [`bench`]: stats line, signals and file
//!   watching, latency measurement and knob choice.
//! - [`result`], [`outputs`]: the per-frame result and where it goes;
//!   [`sink`] connects the frame loop to the outputs a config asks for.

#[cfg(feature = "engine")]
pub mod bench;
pub mod config;
pub mod demo_assets;
#[cfg(feature = "engine")]
pub mod engine;
#[cfg(feature = "engine")]
pub mod model_info;
pub mod outputs;
#[cfg(feature = "engine")]
pub mod pipeline;
pub mod result;
pub mod signals;
#[cfg(feature = "engine")]
pub mod sink;
pub mod sources;
pub mod stats;
pub mod table;
#[cfg(feature = "engine")]
pub mod tag;

/// Number of CPU cores (at least 1): the default thread count.
pub fn available_cores() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
}
