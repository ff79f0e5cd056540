//! Frame sources behind one trait: V4L2 cameras, MJPEG streams (stdin or a
//! file, how CSI cameras reach us via `rpicam-vid` or GStreamer), image files
//! and folders, and a built-in synthetic demo scene.
//!
//! A source fills a caller-owned [`Frame`] (interleaved RGB8, reused across
//! frames) and says what happened with a [`FrameStatus`]: a frame, a corrupt
//! frame that was skipped (counted by the caller), or the end of the stream.

pub mod camera_format;
pub mod demo;
pub mod images;
pub mod jpeg;
pub mod mjpeg;
pub mod reopen;
#[cfg(feature = "v4l")]
pub mod v4l_camera;
pub mod yuyv;

use std::path::PathBuf;
use std::time::{SystemTime, UNIX_EPOCH};

/// One decoded frame: interleaved RGB8, row stride `width * 3`.
#[derive(Debug, Clone, Default)]
pub struct Frame {
    /// Pixels (`width * height * 3` bytes in use; the buffer is reused).
    pub rgb: Vec<u8>,
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// Sequence number within the source (from 1).
    pub sequence: u64,
    /// Capture time, Unix milliseconds.
    pub timestamp_ms: u64,
}

impl Frame {
    /// Resize the pixel buffer for `width x height` (keeps its allocation
    /// when it is already large enough).
    pub fn reshape(&mut self, width: u32, height: u32) {
        self.width = width;
        self.height = height;
        self.rgb.resize(width as usize * height as usize * 3, 0);
    }

    /// The pixels in use.
    pub fn pixels(&self) -> &[u8] {
        &self.rgb[..self.width as usize * self.height as usize * 3]
    }
}

/// What [`FrameSource::next_frame`] produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FrameStatus {
    /// A new frame is in the buffer.
    Frame,
    /// A frame arrived but could not be decoded; it was skipped. The buffer
    /// holds no new frame.
    Corrupt(String),
    /// Frames were lost between the previous frame and this one (camera
    /// sequence gap); a new frame is in the buffer.
    FrameAfterDrop(u64),
    /// The device is gone and is being reopened (the reason); no frame.
    /// The caller may check for shutdown and call again.
    Reconnecting(String),
    /// The source is exhausted (end of file or stream).
    End,
}

/// Errors a source reports that end or interrupt it (as opposed to a corrupt
/// frame, which is a [`FrameStatus`]).
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// The source specification does not parse.
    #[error("source `{spec}`: {reason} (expected v4l:/dev/videoN, mjpeg:-, mjpeg:FILE, images:DIR_OR_FILE or demo)")]
    Spec {
        /// The text given.
        spec: String,
        /// What is wrong.
        reason: String,
    },
    /// Opening or reading the device or file failed.
    #[error("source {what}: {source}")]
    Io {
        /// Which device or file.
        what: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The device cannot deliver a usable format.
    #[error("camera {device}: {reason}")]
    Format {
        /// The device.
        device: String,
        /// What is missing.
        reason: String,
    },
    /// Built without the `v4l` feature.
    #[error("this build has no V4L2 support (built without the `v4l` feature)")]
    NoV4l,
}

/// A source of frames.
pub trait FrameSource: Send {
    /// Fill `frame` with the next frame. Blocks until one is available.
    fn next_frame(&mut self, frame: &mut Frame) -> Result<FrameStatus, SourceError>;

    /// A short description for logs (`v4l:/dev/video0 640x480 MJPEG 30fps`).
    fn describe(&self) -> String;
}

/// A parsed `--source` value.
#[derive(Debug, Clone, PartialEq)]
pub enum SourceSpec {
    /// A V4L2 camera by path (`/dev/video0`, `/dev/v4l/by-id/...`).
    V4l(PathBuf),
    /// An MJPEG stream on stdin.
    MjpegStdin,
    /// An MJPEG stream in a file (or FIFO).
    MjpegFile(PathBuf),
    /// An image file or a folder of images.
    Images(PathBuf),
    /// The shipped demo clip, looped (the generated demo scene when the
    /// demo assets are not there).
    Demo,
}

impl std::str::FromStr for SourceSpec {
    type Err = SourceError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = |reason: &str| SourceError::Spec {
            spec: s.to_string(),
            reason: reason.to_string(),
        };
        if s == "demo" {
            return Ok(SourceSpec::Demo);
        }
        let (kind, rest) = s.split_once(':').ok_or_else(|| err("missing `KIND:`"))?;
        if rest.is_empty() {
            return Err(err("empty path"));
        }
        match kind {
            "v4l" => Ok(SourceSpec::V4l(rest.into())),
            "mjpeg" if rest == "-" => Ok(SourceSpec::MjpegStdin),
            "mjpeg" => Ok(SourceSpec::MjpegFile(rest.into())),
            "images" => Ok(SourceSpec::Images(rest.into())),
            _ => Err(err(&format!("unknown kind `{kind}`"))),
        }
    }
}

impl std::fmt::Display for SourceSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SourceSpec::V4l(p) => write!(f, "v4l:{}", p.display()),
            SourceSpec::MjpegStdin => f.write_str("mjpeg:-"),
            SourceSpec::MjpegFile(p) => write!(f, "mjpeg:{}", p.display()),
            SourceSpec::Images(p) => write!(f, "images:{}", p.display()),
            SourceSpec::Demo => f.write_str("demo"),
        }
    }
}

impl serde::Serialize for SourceSpec {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for SourceSpec {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// Camera settings for V4L2 sources.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CameraRequest {
    /// Requested width.
    pub width: u32,
    /// Requested height.
    pub height: u32,
    /// Highest frame rate wanted (0 = as fast as the camera goes).
    pub max_fps: u32,
}

impl Default for CameraRequest {
    fn default() -> Self {
        Self {
            width: 640,
            height: 480,
            max_fps: 0,
        }
    }
}

/// Open a source. V4L2 cameras come wrapped in [`reopen::Reopening`], which
/// reopens a vanished camera with backoff; `state` reports its condition.
pub fn open(
    spec: &SourceSpec,
    camera: CameraRequest,
    state: reopen::SharedSourceState,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
) -> Result<Box<dyn FrameSource>, SourceError> {
    match spec {
        SourceSpec::MjpegStdin => Ok(Box::new(mjpeg::MjpegSource::new(
            Box::new(std::io::stdin()),
            "mjpeg:-".into(),
        ))),
        SourceSpec::MjpegFile(p) => {
            let f = std::fs::File::open(p).map_err(|source| SourceError::Io {
                what: p.display().to_string(),
                source,
            })?;
            Ok(Box::new(mjpeg::MjpegSource::new(
                Box::new(f),
                format!("mjpeg:{}", p.display()),
            )))
        }
        SourceSpec::Images(p) => Ok(Box::new(images::ImageSource::open(p)?)),
        SourceSpec::Demo => match crate::demo_assets::file(crate::demo_assets::CLIP) {
            Some(clip) => demo::demo_clip(&clip),
            None => Ok(Box::new(demo::DemoSource::new(640, 480))),
        },
        #[cfg(feature = "v4l")]
        SourceSpec::V4l(path) => {
            let path = path.clone();
            let opener = move || -> Result<Box<dyn FrameSource>, SourceError> {
                Ok(Box::new(v4l_camera::V4lCamera::open(&path, camera)?))
            };
            Ok(Box::new(
                reopen::Reopening::new(Box::new(opener), spec.to_string(), state)?
                    .with_stop_flag(stop),
            ))
        }
        #[cfg(not(feature = "v4l"))]
        SourceSpec::V4l(_) => {
            let _ = (camera, state, stop);
            Err(SourceError::NoV4l)
        }
    }
}

/// Current time in Unix milliseconds.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_kind() {
        assert_eq!(
            "v4l:/dev/v4l/by-id/usb-cam-video-index0"
                .parse::<SourceSpec>()
                .unwrap(),
            SourceSpec::V4l("/dev/v4l/by-id/usb-cam-video-index0".into())
        );
        assert_eq!(
            "mjpeg:-".parse::<SourceSpec>().unwrap(),
            SourceSpec::MjpegStdin
        );
        assert_eq!(
            "mjpeg:a.mjpeg".parse::<SourceSpec>().unwrap(),
            SourceSpec::MjpegFile("a.mjpeg".into())
        );
        assert_eq!("demo".parse::<SourceSpec>().unwrap(), SourceSpec::Demo);
        let e = "rtsp://x".parse::<SourceSpec>().unwrap_err().to_string();
        assert!(e.contains("unknown kind `rtsp`"), "{e}");
        assert!("images:".parse::<SourceSpec>().is_err());
        for s in ["v4l:/dev/video0", "mjpeg:-", "images:dir", "demo"] {
            assert_eq!(s.parse::<SourceSpec>().unwrap().to_string(), s);
        }
    }
}
