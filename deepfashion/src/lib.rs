//! `deepfashion`: the data layer shared by every FashionNet program.
//!
//! - [`contract`]: the model contract (config, parameter and tensor names,
//!   landmark slots, preprocessing constants, fingerprint).
//! - [`preprocess`]: the crop/resize/normalize function all three model
//!   implementations feed from.
//! - [`annotations`]: readers for the released DeepFashion benchmark folders
//!   (Category & Attribute coarse and fine, In-shop, Consumer-to-shop,
//!   Landmark Detection), quirks included.
//! - [`synth`]: a deterministic synthetic DeepFashion in the released layout.
//! - [`metrics`]: the evaluation metrics of DESIGN.md section 7 and the
//!   predictions format that `deepfashion score` reads.
//! - [`shop_table`]: the compact shop embedding table (written by `export`,
//!   searched by the runtime).
//!
//! This crate must depend on neither tch nor tract: the runtime (which
//! cross-compiles to ARM) and the exporter use it too.

#[cfg(feature = "dataset")]
pub mod annotations;
pub mod contract;
#[cfg(feature = "dataset")]
pub mod metrics;
pub mod preprocess;
pub mod shop_table;
#[cfg(feature = "dataset")]
pub mod synth;
