//! The device configuration: one TOML file that holds every flag of
//! `fashion-runtime tag`, shared with `firmware-config` (which validates and
//! bundles it). Unknown keys are refused with the list of allowed keys
//! (`deny_unknown_fields`), so a typo never silently does nothing.
//!
//! ```toml
//! model = "/opt/fashionnet/edge.int8.onnx"
//! table = "/opt/fashionnet/shop.table"
//! source = "v4l:/dev/v4l/by-id/usb-046d_HD_Webcam-video-index0"
//! jsonl = "-"
//!
//! [camera]
//! width = 640
//! height = 480
//! max_fps = 30
//!
//! [engine]
//! threads = 4
//! disable_direct_spatial = false
//!
//! [http]      # crate::outputs::http::HttpConfig
//! [mqtt]      # crate::outputs::mqtt::MqttConfig
//! ```
//!
//! Command-line flags of `fashion-runtime tag` override the file.

use crate::outputs::http::HttpConfig;
use crate::outputs::mqtt::MqttConfig;
use crate::sources::{CameraRequest, SourceSpec};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// Errors reading or writing a device config.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read or written.
    #[error("config {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The TOML does not parse or has an unknown or mistyped key (the
    /// message names the key, its line, and the allowed keys).
    #[error("config {path}: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// The parser's message.
        message: String,
    },
    /// A value is out of range or a required setting is missing.
    #[error("config: `{field}`: {reason}")]
    Invalid {
        /// The key (dotted for sections: `engine.threads`).
        field: &'static str,
        /// What is wrong.
        reason: String,
    },
}

/// Everything `fashion-runtime tag` needs, as a TOML file.
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DeviceConfig {
    /// The exported FashionNet ONNX model (fp32 or int8).
    pub model: Option<PathBuf>,
    /// The shop table built for that model (optional: without it, no
    /// matches).
    pub table: Option<PathBuf>,
    /// Frame source: `v4l:/dev/videoN` (or a `/dev/v4l/by-id/...` path),
    /// `mjpeg:-` (stdin), `mjpeg:FILE`, `images:DIR_OR_FILE` or `demo`.
    pub source: Option<SourceSpec>,
    /// Stop after this many frames (absent: run until the source ends or
    /// SIGTERM).
    pub frames: Option<u64>,
    /// Write JSON lines here (`-` = stdout).
    pub jsonl: Option<PathBuf>,
    /// Write annotated frames (JPEG) into this folder.
    pub annotated: Option<PathBuf>,
    /// Reload model and table when their files change on disk (SIGHUP always
    /// reloads).
    pub watch_files: bool,
    /// Seconds between stats lines in the log.
    pub stats_interval_s: u32,
    /// Camera negotiation (V4L2 sources).
    pub camera: CameraConfig,
    /// Region of interest.
    pub roi: RoiConfig,
    /// Inference engine knobs (what `fashion-runtime bench --choose` writes).
    pub engine: EngineConfig,
    /// How many results per frame.
    pub results: ResultsConfig,
    /// Live preview HTTP server (absent: off).
    pub http: Option<HttpConfig>,
    /// MQTT publishing (absent: off).
    pub mqtt: Option<MqttConfig>,
}

/// Camera size and rate request.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CameraConfig {
    /// Requested width in pixels.
    pub width: u32,
    /// Requested height in pixels.
    pub height: u32,
    /// Highest frame rate wanted; 0 = as fast as the camera goes.
    pub max_fps: u32,
}

impl Default for CameraConfig {
    fn default() -> Self {
        let r = CameraRequest::default();
        Self {
            width: r.width,
            height: r.height,
            max_fps: r.max_fps,
        }
    }
}

impl From<CameraConfig> for CameraRequest {
    fn from(c: CameraConfig) -> Self {
        CameraRequest {
            width: c.width,
            height: c.height,
            max_fps: c.max_fps,
        }
    }
}

/// The region of the frame the network sees: a square.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RoiConfig {
    /// Side of the centred square as a fraction of the frame's short side
    /// (1.0 = the largest centred square). Ignored when `box_px` is set.
    pub centre_scale: f32,
    /// A fixed square `[x0, y0, side]` in frame pixels instead of the
    /// centre.
    pub box_px: Option<[f32; 3]>,
}

impl Default for RoiConfig {
    fn default() -> Self {
        Self {
            centre_scale: 1.0,
            box_px: None,
        }
    }
}

/// Inference knobs.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EngineConfig {
    /// Threads for tract's matrix products; 0 = one per CPU core.
    pub threads: usize,
    /// tract's `TRACT_DISABLE_DIRECT_SPATIAL` (im2col convolutions).
    pub disable_direct_spatial: bool,
}

/// How many results per frame.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ResultsConfig {
    /// Top-k categories (at most 5).
    pub top_categories: usize,
    /// Top-k attributes (at most 10).
    pub top_attributes: usize,
    /// Top-k shop items (at most 10).
    pub top_matches: usize,
}

impl Default for ResultsConfig {
    fn default() -> Self {
        Self {
            top_categories: 3,
            top_attributes: 5,
            top_matches: 5,
        }
    }
}

impl DeviceConfig {
    /// Parse TOML text (`path` only names the file in errors).
    pub fn from_toml(text: &str, path: &Path) -> Result<Self, ConfigError> {
        let cfg: DeviceConfig = toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
        cfg.validate()?;
        Ok(cfg)
    }

    /// Read and check a config file.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        Self::from_toml(&text, path)
    }

    /// Check value ranges.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let bad = |field, reason: String| Err(ConfigError::Invalid { field, reason });
        let r = &self.results;
        if r.top_categories > crate::result::MAX_CATEGORIES {
            return bad(
                "results.top_categories",
                format!("{} > {}", r.top_categories, crate::result::MAX_CATEGORIES),
            );
        }
        if r.top_attributes > crate::result::MAX_ATTRIBUTES {
            return bad(
                "results.top_attributes",
                format!("{} > {}", r.top_attributes, crate::result::MAX_ATTRIBUTES),
            );
        }
        if r.top_matches > crate::result::MAX_MATCHES {
            return bad(
                "results.top_matches",
                format!("{} > {}", r.top_matches, crate::result::MAX_MATCHES),
            );
        }
        if !(self.roi.centre_scale > 0.0 && self.roi.centre_scale <= 4.0) {
            return bad(
                "roi.centre_scale",
                format!("{} must be in (0, 4]", self.roi.centre_scale),
            );
        }
        if let Some([_, _, side]) = self.roi.box_px {
            if side.is_nan() || side < 1.0 {
                return bad(
                    "roi.box_px",
                    format!("side {side} must be at least 1 pixel"),
                );
            }
        }
        if self.camera.width == 0 || self.camera.height == 0 {
            return bad("camera", "width and height must be positive".into());
        }
        if self.engine.threads > 256 {
            return bad(
                "engine.threads",
                format!("{} is not a thread count", self.engine.threads),
            );
        }
        Ok(())
    }

    /// Threads to use (resolving 0 to the core count).
    pub fn threads(&self) -> usize {
        if self.engine.threads == 0 {
            crate::available_cores()
        } else {
            self.engine.threads
        }
    }
}

/// Set `engine.threads`, `engine.disable_direct_spatial` and `model` in a
/// config file (created if absent), keeping its other keys, and write it
/// atomically (temporary file, fsync, rename). The result is checked to
/// parse as a [`DeviceConfig`] before it replaces the file.
pub fn write_engine_choice(
    path: &Path,
    model: &Path,
    engine: EngineConfig,
) -> Result<(), ConfigError> {
    let io = |source| ConfigError::Io {
        path: path.to_path_buf(),
        source,
    };
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(io(e)),
    };
    let mut doc: toml::Table = text
        .parse()
        .map_err(|e: toml::de::Error| ConfigError::Parse {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
    doc.insert(
        "model".into(),
        toml::Value::String(model.display().to_string()),
    );
    let eng = doc
        .entry("engine")
        .or_insert_with(|| toml::Value::Table(toml::Table::new()));
    let toml::Value::Table(eng) = eng else {
        return Err(ConfigError::Invalid {
            field: "engine",
            reason: "is not a table".into(),
        });
    };
    eng.insert(
        "threads".into(),
        toml::Value::Integer(engine.threads as i64),
    );
    eng.insert(
        "disable_direct_spatial".into(),
        toml::Value::Boolean(engine.disable_direct_spatial),
    );
    let out = toml::to_string_pretty(&doc).map_err(|e| ConfigError::Parse {
        path: path.to_path_buf(),
        message: e.to_string(),
    })?;
    DeviceConfig::from_toml(&out, path)?;
    write_atomic(path, out.as_bytes()).map_err(io)
}

/// Write `bytes` to `path` atomically: a temporary file in the same folder,
/// fsync, rename, fsync of the folder.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "config".into());
    let tmp = dir.join(format!(".{name}.tmp.{}", std::process::id()));
    {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
    }
    if let Err(e) = std::fs::rename(&tmp, path) {
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    if let Ok(d) = std::fs::File::open(&dir) {
        let _ = d.sync_all();
    }
    Ok(())
}
