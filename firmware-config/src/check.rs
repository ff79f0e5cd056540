//! The device config checked against a board. The schema is the runtime's
//! own ([`fashion_runtime::config::DeviceConfig`], `deny_unknown_fields`):
//! whatever the runtime would refuse is refused here with the runtime's
//! message. On top of it come the checks that need the board: thread count,
//! camera kind, paths, and the model's input size.

use crate::board::{BoardProfile, CameraKind, STABLE_CAMERA_PATH};
use fashion_runtime::config::{ConfigError, DeviceConfig};
use fashion_runtime::model_info::ModelInfo;
use fashion_runtime::sources::SourceSpec;
use std::fmt;
use std::path::Path;

/// One problem with a config on a board.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The config key (dotted for sections: `engine.threads`).
    pub key: String,
    /// What is wrong and what is allowed.
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "`{}`: {}", self.key, self.message)
    }
}

/// Errors raised by the config check.
#[derive(Debug, thiserror::Error)]
pub enum CheckError {
    /// The runtime's own schema refused the file (unknown key, wrong type,
    /// out-of-range value); the message names the key.
    #[error(transparent)]
    Schema(#[from] ConfigError),
    /// The config is valid for the runtime but not for this board.
    #[error("config {path} does not fit board `{board}`:\n{}", .problems.iter().map(|p| format!("  - {p}")).collect::<Vec<_>>().join("\n"))]
    Board {
        /// The config file.
        path: String,
        /// The board name.
        board: String,
        /// Every problem found.
        problems: Vec<Problem>,
    },
    /// The model file could not be read or does not fit the board.
    #[error("model {path}: {reason}")]
    Model {
        /// The model file.
        path: String,
        /// What is wrong.
        reason: String,
    },
}

/// A config that passed every check.
#[derive(Debug, Clone)]
pub struct CheckedConfig {
    /// The parsed config.
    pub config: DeviceConfig,
    /// The camera kind its source means on this board.
    pub camera: CameraKind,
}

/// Check config text (`path` names it in messages) against `board`.
pub fn check_text(
    text: &str,
    path: &Path,
    board: &BoardProfile,
) -> Result<CheckedConfig, CheckError> {
    let config = DeviceConfig::from_toml(text, path)?;
    let mut problems = Vec::new();
    let mut problem = |key: &str, message: String| {
        problems.push(Problem {
            key: key.into(),
            message,
        })
    };

    let csi = board
        .cameras
        .iter()
        .copied()
        .find(|c| *c != CameraKind::UsbV4l2);
    let usb = board.cameras.contains(&CameraKind::UsbV4l2);
    let allowed_sources = {
        let mut a = Vec::new();
        if let Some(c) = csi {
            a.push(format!(
                "`mjpeg:-` ({c} camera; the unit pipes {} into the runtime)",
                if c == CameraKind::PiCsi {
                    "rpicam-vid"
                } else {
                    "GStreamer"
                }
            ));
        }
        if usb {
            a.push(format!("`v4l:{STABLE_CAMERA_PATH}` (USB camera, the udev-stable path) or another absolute `v4l:/dev/...` path"));
        }
        a.join(" or ")
    };
    let mut camera = board.camera;
    match &config.source {
        None => problem(
            "source",
            format!("missing; on {} allowed: {allowed_sources}", board.name),
        ),
        Some(SourceSpec::MjpegStdin) => match csi {
            Some(c) => camera = c,
            None => problem(
                "source",
                format!(
                    "`mjpeg:-` needs a CSI camera, which {} has not; allowed: {allowed_sources}",
                    board.name
                ),
            ),
        },
        Some(SourceSpec::V4l(dev)) => {
            if !usb {
                problem(
                    "source",
                    format!(
                        "USB (V4L2) cameras are not supported on {}; allowed: {allowed_sources}",
                        board.name
                    ),
                );
            } else if !dev.is_absolute() || !dev.starts_with("/dev") {
                problem(
                    "source",
                    format!(
                        "`v4l:{}` must be an absolute path under /dev; allowed: {allowed_sources}",
                        dev.display()
                    ),
                );
            } else {
                camera = CameraKind::UsbV4l2;
            }
        }
        Some(other) => problem(
            "source",
            format!(
                "{other:?} is not a camera; a board service needs one; allowed: {allowed_sources}"
            ),
        ),
    }

    match &config.model {
        None => problem("model", "missing; the absolute path of the ONNX model on the board (a bundle sets it to the bundled model)".into()),
        Some(m) if !m.is_absolute() => problem("model", format!("`{}` must be an absolute path (the service runs with WorkingDirectory=/var/lib/fashion-runtime)", m.display())),
        Some(_) => {}
    }
    for (key, value) in [("table", &config.table), ("annotated", &config.annotated)] {
        if let Some(p) = value {
            if !p.is_absolute() {
                problem(key, format!("`{}` must be an absolute path", p.display()));
            }
        }
    }
    if let Some(p) = &config.jsonl {
        if p.as_os_str() != "-" && !p.is_absolute() {
            problem("jsonl", format!("`{}` must be `-` (the journal) or an absolute path (under /var/lib/fashion-runtime: the service may write only there)", p.display()));
        }
    }
    for (key, value) in [("jsonl", &config.jsonl), ("annotated", &config.annotated)] {
        if let Some(p) = value {
            if p.is_absolute()
                && !p.starts_with("/var/lib/fashion-runtime")
                && !p.starts_with("/tmp")
            {
                problem(key, format!("`{}` is read-only for the service (ProtectSystem=strict); use a path under /var/lib/fashion-runtime", p.display()));
            }
        }
    }
    if config.engine.threads > board.cores {
        problem(
            "engine.threads",
            format!("{} is more than the {} cores of {}; allowed: 0 (one per core) or 1..={} (the profile suggests {})", config.engine.threads, board.cores, board.name, board.cores, board.threads),
        );
    }
    if config.frames.is_some() {
        problem("frames", "a board service runs until stopped; remove `frames` (with it the service exits after N frames)".into());
    }
    if camera != CameraKind::UsbV4l2 && (config.camera.width > 4096 || config.camera.height > 4096)
    {
        problem(
            "camera",
            format!(
                "{}x{} is larger than a CSI camera delivers as MJPEG (at most 4096x4096)",
                config.camera.width, config.camera.height
            ),
        );
    }
    if !problems.is_empty() {
        return Err(CheckError::Board {
            path: path.display().to_string(),
            board: board.name.clone(),
            problems,
        });
    }
    Ok(CheckedConfig { config, camera })
}

/// Read and check a config file.
pub fn check_file(path: &Path, board: &BoardProfile) -> Result<CheckedConfig, CheckError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    check_text(&text, path, board)
}

/// Check a model file against the board: its input size must be the
/// board's (`input_size` of the profile). Returns the model's info.
pub fn check_model(model: &Path, board: &BoardProfile) -> Result<ModelInfo, CheckError> {
    let (info, _) = ModelInfo::read(model).map_err(|e| CheckError::Model {
        path: model.display().to_string(),
        reason: e.to_string(),
    })?;
    if info.config.input_size != board.input_size {
        return Err(CheckError::Model {
            path: model.display().to_string(),
            reason: format!(
                "input size {} does not fit board `{}`: it expects {} (the `{}` preset at S={}); export the model with input size {}",
                info.config.input_size, board.name, board.input_size, board.model_preset, board.input_size, board.input_size
            ),
        });
    }
    Ok(info)
}

/// Rewrite the config's `model` and `table` to the paths the bundle installs
/// them at, keeping every other key and comment-free formatting of the rest.
pub fn rewrite_paths(text: &str, model: &str, table: Option<&str>) -> Result<String, CheckError> {
    let mut doc: toml::Table = text
        .parse()
        .map_err(|e: toml::de::Error| ConfigError::Parse {
            path: "config".into(),
            message: e.to_string(),
        })?;
    doc.insert("model".into(), toml::Value::String(model.into()));
    match table {
        Some(t) => {
            doc.insert("table".into(), toml::Value::String(t.into()));
        }
        None => {
            doc.remove("table");
        }
    }
    Ok(
        toml::to_string_pretty(&doc).map_err(|e| ConfigError::Parse {
            path: "config".into(),
            message: e.to_string(),
        })?,
    )
}
