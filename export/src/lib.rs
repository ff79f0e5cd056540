//! `export`: turns a FashionNet checkpoint (safetensors, written by the
//! trainer) into ONNX graphs that run in tract and onnxruntime, quantizes
//! them to operator-form int8, checks the exported graphs (parity and
//! accuracy), and builds the shop embedding table the runtime searches.
//!
//! - [`checkpoint`]: read a checkpoint against its config (and write random
//!   ones for tests).
//! - [`onnx`]: the ONNX graph writer (fp32 and int8 from one description of
//!   the topology in [`deepfashion::contract`]).
//! - [`quantize`]: calibration on real images and the int8 plan.
//! - [`infer`]: running an exported graph in tract.
//! - [`images`]: reading images of a benchmark split and preprocessing them.
//! - [`gallery`]: embedding a catalogue into a [`deepfashion::shop_table`].
//!
//! This crate must not depend on tch (libtorch): exporting, evaluating and
//! building a table work on a machine without it.

pub mod checkpoint;
pub mod evaluate;
pub mod gallery;
pub mod images;
pub mod infer;
pub mod onnx;
pub mod quantize;

pub use deepfashion::shop_table;

/// Errors of the export library.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The checkpoint is malformed or does not match its config.
    #[error("checkpoint {path}: {reason}")]
    Checkpoint {
        /// The checkpoint file.
        path: String,
        /// What is wrong.
        reason: String,
    },
    /// The ONNX model is malformed or not one of ours.
    #[error("model {path}: {reason}")]
    Model {
        /// The model file.
        path: String,
        /// What is wrong.
        reason: String,
    },
    /// An image could not be read.
    #[error("image {path}: {reason}")]
    Image {
        /// The image file.
        path: String,
        /// What is wrong.
        reason: String,
    },
    /// tract failed to load or run a graph.
    #[error("tract: {0}")]
    Tract(String),
    /// The model contract was violated.
    #[error(transparent)]
    Contract(#[from] deepfashion::contract::ContractError),
    /// A shop table problem.
    #[error(transparent)]
    Table(#[from] deepfashion::shop_table::TableError),
    /// Anything else, with its context.
    #[error("{0}")]
    Other(String),
}

/// Result alias of this crate.
pub type Result<T, E = ExportError> = std::result::Result<T, E>;

/// Write `bytes` to `path` atomically (temporary file, fsync, rename).
pub fn write_atomic(path: &std::path::Path, bytes: &[u8]) -> Result<()> {
    deepfashion::shop_table::write_atomic(path, bytes).map_err(|e| match e {
        deepfashion::shop_table::TableError::Io { path, source } => {
            ExportError::Io { path, source }
        }
        other => ExportError::Other(other.to_string()),
    })
}
