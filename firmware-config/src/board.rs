//! Board profiles: what a board can run and how its camera reaches the
//! runtime. Six are built in; more can be loaded from TOML files with the
//! same fields (`firmware-config boards --json` prints the built-ins in the
//! same shape).

use deepfashion::contract::ModelConfig;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::path::Path;

/// Errors raised while finding or loading a board profile.
#[derive(Debug, thiserror::Error)]
pub enum BoardError {
    /// No built-in board has this name.
    #[error("unknown board `{name}` (built in: {known}; or pass a profile TOML file)")]
    Unknown {
        /// The name asked for.
        name: String,
        /// The built-in names, comma separated.
        known: String,
    },
    /// The profile file could not be read.
    #[error("reading board profile {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The profile file is not a valid profile.
    #[error("board profile {path}: {message}")]
    Parse {
        /// The file.
        path: String,
        /// What is wrong (from the TOML parser, with line and key).
        message: String,
    },
    /// The profile parsed but is inconsistent.
    #[error("board profile `{board}`: field `{field}`: {reason}")]
    Invalid {
        /// The board name.
        board: String,
        /// The offending field.
        field: &'static str,
        /// What is wrong and what is allowed.
        reason: String,
    },
}

/// How the camera's frames reach `fashion-runtime`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CameraKind {
    /// A USB UVC camera read directly through V4L2 (`v4l:/dev/...`).
    UsbV4l2,
    /// A Raspberry Pi CSI camera: `rpicam-vid` writes MJPEG to the runtime's stdin.
    PiCsi,
    /// A Jetson CSI camera: GStreamer (`nvarguscamerasrc ! nvjpegenc`) writes
    /// MJPEG to the runtime's stdin.
    JetsonCsi,
}

impl CameraKind {
    /// Every kind, in a stable order.
    pub const ALL: [CameraKind; 3] = [
        CameraKind::UsbV4l2,
        CameraKind::PiCsi,
        CameraKind::JetsonCsi,
    ];

    /// The kebab-case name used in TOML and on the command line.
    pub fn name(self) -> &'static str {
        match self {
            CameraKind::UsbV4l2 => "usb-v4l2",
            CameraKind::PiCsi => "pi-csi",
            CameraKind::JetsonCsi => "jetson-csi",
        }
    }

    /// The command that produces an MJPEG stream on stdout for this kind at
    /// `width x height`, or `None` when the runtime reads the camera itself.
    pub fn producer(self, width: u32, height: u32) -> Option<String> {
        match self {
            CameraKind::UsbV4l2 => None,
            CameraKind::PiCsi => Some(format!(
                "rpicam-vid -t 0 --codec mjpeg --width {width} --height {height} -o -"
            )),
            CameraKind::JetsonCsi => Some(format!(
                "gst-launch-1.0 -q nvarguscamerasrc ! 'video/x-raw(memory:NVMM),width={width},height={height}' ! nvjpegenc ! fdsink fd=1"
            )),
        }
    }

    /// The runtime `--source` value for this kind (`device` is the V4L2
    /// device for USB cameras).
    pub fn runtime_source(self, device: &str) -> String {
        match self {
            CameraKind::UsbV4l2 => format!("v4l:{device}"),
            CameraKind::PiCsi | CameraKind::JetsonCsi => "mjpeg:-".to_string(),
        }
    }
}

impl fmt::Display for CameraKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The stable device path the udev rule gives a USB camera.
pub const STABLE_CAMERA_PATH: &str = "/dev/fashion-camera";

/// One board: what to build for it and what it can run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BoardProfile {
    /// Short name (`rpi4`).
    pub name: String,
    /// Human description (board, OS).
    pub description: String,
    /// Rust target triple of the OS's user space.
    pub target: String,
    /// Oldest glibc of the OS releases we support on this board (`2.27`).
    /// The runtime binary must not require a newer `GLIBC_` symbol version.
    pub glibc: String,
    /// glibc version to link against when cross-building (`2.17`; at most
    /// [`Self::glibc`]). One binary per triple serves every board.
    pub build_glibc: String,
    /// CPU cores the board has.
    pub cores: usize,
    /// Inference threads to use by default (leaves room for the camera).
    pub threads: usize,
    /// Camera kind set up by default.
    pub camera: CameraKind,
    /// Camera kinds a device config may use on this board.
    pub cameras: Vec<CameraKind>,
    /// Capture width in pixels.
    pub capture_width: u32,
    /// Capture height in pixels.
    pub capture_height: u32,
    /// Model configuration preset (from `deepfashion::contract`).
    pub model_preset: String,
    /// Model input side `S` that fits this board.
    pub input_size: usize,
}

impl BoardProfile {
    /// The model configuration for this board: the preset with this board's
    /// input size.
    pub fn model_config(&self) -> Result<ModelConfig, BoardError> {
        let mut cfg = ModelConfig::preset(&self.model_preset)
            .map_err(|e| self.invalid("model_preset", e.to_string()))?;
        cfg.input_size = self.input_size;
        cfg.validate()
            .map_err(|e| self.invalid("input_size", e.to_string()))?;
        Ok(cfg)
    }

    /// The default source line: the camera producer (if any) piped into
    /// `fashion-runtime tag --source ...`.
    pub fn default_source_line(&self) -> String {
        self.source_line(self.camera, "fashion-runtime")
    }

    /// The source line for `camera`, with `runtime` as the runtime binary.
    pub fn source_line(&self, camera: CameraKind, runtime: &str) -> String {
        let source = camera.runtime_source(STABLE_CAMERA_PATH);
        match camera.producer(self.capture_width, self.capture_height) {
            Some(p) => format!("{p} | {runtime} tag --source {source}"),
            None => format!("{runtime} tag --source {source}"),
        }
    }

    /// The ELF machine name the runtime binary must have (`aarch64`, `arm`, `x86_64`).
    pub fn elf_arch(&self) -> &str {
        self.target.split('-').next().unwrap_or("")
    }

    /// Check the profile's fields against each other.
    pub fn validate(&self) -> Result<(), BoardError> {
        if self.name.is_empty()
            || !self
                .name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            return Err(self.invalid(
                "name",
                "must be non-empty ASCII letters, digits, `-` or `_`".into(),
            ));
        }
        let arch = crate::elf::Machine::from_triple(&self.target);
        if arch.is_none() {
            return Err(self.invalid(
                "target",
                format!(
                    "`{}`: allowed architectures are aarch64, armv7, x86_64",
                    self.target
                ),
            ));
        }
        let glibc = parse_glibc(&self.glibc)
            .ok_or_else(|| self.invalid("glibc", format!("`{}` is not like `2.27`", self.glibc)))?;
        let build = parse_glibc(&self.build_glibc).ok_or_else(|| {
            self.invalid(
                "build_glibc",
                format!("`{}` is not like `2.17`", self.build_glibc),
            )
        })?;
        if build > glibc {
            return Err(self.invalid(
                "build_glibc",
                format!(
                    "{} is newer than the board's glibc {}",
                    self.build_glibc, self.glibc
                ),
            ));
        }
        if self.cores == 0 {
            return Err(self.invalid("cores", "must be at least 1".into()));
        }
        if self.threads == 0 || self.threads > self.cores {
            return Err(self.invalid(
                "threads",
                format!("{} must be 1..={} (cores)", self.threads, self.cores),
            ));
        }
        if !self.cameras.contains(&self.camera) {
            return Err(self.invalid("camera", format!("`{}` is not in `cameras`", self.camera)));
        }
        self.model_config()?;
        Ok(())
    }

    fn invalid(&self, field: &'static str, reason: String) -> BoardError {
        BoardError::Invalid {
            board: self.name.clone(),
            field,
            reason,
        }
    }

    /// Load a profile from a TOML file (same fields as the built-ins).
    pub fn from_toml_file(path: &Path) -> Result<Self, BoardError> {
        let text = std::fs::read_to_string(path).map_err(|source| BoardError::Io {
            path: path.display().to_string(),
            source,
        })?;
        let profile: Self = toml::from_str(&text).map_err(|e| BoardError::Parse {
            path: path.display().to_string(),
            message: e.to_string(),
        })?;
        profile.validate()?;
        Ok(profile)
    }
}

/// Parse `2.27` into `(2, 27)`.
pub fn parse_glibc(s: &str) -> Option<(u32, u32)> {
    let (major, minor) = s.trim().split_once('.')?;
    Some((major.parse().ok()?, minor.parse().ok()?))
}

#[allow(clippy::too_many_arguments)]
fn profile(
    name: &str,
    description: &str,
    target: &str,
    glibc: &str,
    cores: usize,
    threads: usize,
    camera: CameraKind,
    cameras: &[CameraKind],
    input_size: usize,
) -> BoardProfile {
    BoardProfile {
        name: name.into(),
        description: description.into(),
        target: target.into(),
        glibc: glibc.into(),
        build_glibc: "2.17".into(),
        cores,
        threads,
        camera,
        cameras: cameras.to_vec(),
        capture_width: 640,
        capture_height: 480,
        model_preset: "edge".into(),
        input_size,
    }
}

/// The built-in profiles.
pub fn builtin() -> Vec<BoardProfile> {
    use CameraKind::*;
    const AARCH64: &str = "aarch64-unknown-linux-gnu";
    vec![
        profile(
            "rpi4",
            "Raspberry Pi 4 (Cortex-A72 x4), Raspberry Pi OS 64-bit (Bullseye or later)",
            AARCH64,
            "2.31",
            4,
            4,
            PiCsi,
            &[PiCsi, UsbV4l2],
            192,
        ),
        profile(
            "rpi5",
            "Raspberry Pi 5 (Cortex-A76 x4), Raspberry Pi OS 64-bit (Bookworm or later)",
            AARCH64,
            "2.36",
            4,
            4,
            PiCsi,
            &[PiCsi, UsbV4l2],
            224,
        ),
        profile(
            "rpi-zero2w",
            "Raspberry Pi Zero 2 W (Cortex-A53 x4, 512 MB), Raspberry Pi OS 64-bit",
            AARCH64,
            "2.31",
            4,
            3,
            PiCsi,
            &[PiCsi, UsbV4l2],
            128,
        ),
        profile(
            "rpi-zero2w-32",
            "Raspberry Pi Zero 2 W (Cortex-A53 x4, 512 MB), Raspberry Pi OS 32-bit (armhf)",
            "armv7-unknown-linux-gnueabihf",
            "2.31",
            4,
            3,
            PiCsi,
            &[PiCsi, UsbV4l2],
            128,
        ),
        profile(
            "jetson-nano",
            "Jetson Nano (Cortex-A57 x4), JetPack 4 / L4T 32 (Ubuntu 18.04, glibc 2.27)",
            AARCH64,
            "2.27",
            4,
            4,
            JetsonCsi,
            &[JetsonCsi, UsbV4l2],
            192,
        ),
        profile(
            "jetson-orin",
            "Jetson Orin Nano/NX (Cortex-A78AE x6), JetPack 6 / L4T 36 (Ubuntu 22.04, glibc 2.35)",
            AARCH64,
            "2.35",
            6,
            6,
            JetsonCsi,
            &[JetsonCsi, UsbV4l2],
            224,
        ),
    ]
}

/// Find a board: a built-in name, or a path to a profile TOML file (anything
/// containing `/` or ending in `.toml`).
pub fn find(name_or_path: &str) -> Result<BoardProfile, BoardError> {
    if name_or_path.contains('/') || name_or_path.ends_with(".toml") {
        return BoardProfile::from_toml_file(Path::new(name_or_path));
    }
    let all = builtin();
    let known = all
        .iter()
        .map(|b| b.name.as_str())
        .collect::<Vec<_>>()
        .join(", ");
    all.iter()
        .find(|b| b.name == name_or_path)
        .cloned()
        .ok_or(BoardError::Unknown {
            name: name_or_path.to_string(),
            known,
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtins_are_valid_and_unique() {
        let all = builtin();
        assert_eq!(all.len(), 6);
        for b in &all {
            b.validate().unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(b.model_config().unwrap().input_size, b.input_size);
            assert_eq!(find(&b.name).unwrap(), *b);
        }
        let mut names: Vec<_> = all.iter().map(|b| &b.name).collect();
        names.dedup();
        assert_eq!(names.len(), 6);
    }

    #[test]
    fn source_lines() {
        let pi = find("rpi4").unwrap();
        assert_eq!(
            pi.default_source_line(),
            "rpicam-vid -t 0 --codec mjpeg --width 640 --height 480 -o - | fashion-runtime tag --source mjpeg:-"
        );
        let jetson = find("jetson-nano").unwrap();
        assert!(jetson.default_source_line().starts_with(
            "gst-launch-1.0 -q nvarguscamerasrc ! 'video/x-raw(memory:NVMM),width=640,height=480' ! nvjpegenc ! fdsink fd=1 |"
        ));
        assert_eq!(
            pi.source_line(CameraKind::UsbV4l2, "fashion-runtime"),
            "fashion-runtime tag --source v4l:/dev/fashion-camera"
        );
    }

    #[test]
    fn toml_round_trip_and_errors() {
        let dir = tempfile::tempdir().unwrap();
        let mut b = find("jetson-orin").unwrap();
        b.name = "custom".into();
        let path = dir.path().join("custom.toml");
        std::fs::write(&path, toml::to_string(&b).unwrap()).unwrap();
        assert_eq!(find(path.to_str().unwrap()).unwrap(), b);

        b.threads = 9;
        std::fs::write(&path, toml::to_string(&b).unwrap()).unwrap();
        let e = find(path.to_str().unwrap()).unwrap_err().to_string();
        assert!(e.contains("`threads`") && e.contains("1..=6"), "{e}");

        std::fs::write(&path, "name = \"x\"\nbogus = 1\n").unwrap();
        let e = find(path.to_str().unwrap()).unwrap_err().to_string();
        assert!(e.contains("bogus"), "{e}");

        let e = find("rpi3").unwrap_err().to_string();
        assert!(e.contains("rpi4") && e.contains("jetson-orin"), "{e}");
    }
}
