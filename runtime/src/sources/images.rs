//! Image files and folders as a frame source: one file, or every `.jpg`,
//! `.jpeg` and `.png` in a folder (sorted by name, not recursive). A file
//! that does not decode is reported corrupt and skipped.

use super::{jpeg, now_ms, Frame, FrameSource, FrameStatus, SourceError};
use std::path::{Path, PathBuf};

/// Frames from image files.
pub struct ImageSource {
    files: Vec<PathBuf>,
    next: usize,
    data: Vec<u8>,
    name: String,
}

/// Whether a path has an image extension the runtime decodes.
pub fn is_image(path: &Path) -> bool {
    matches!(
        path.extension()
            .and_then(|e| e.to_str())
            .map(|e| e.to_ascii_lowercase())
            .as_deref(),
        Some("jpg" | "jpeg" | "png")
    )
}

impl ImageSource {
    /// A file or a folder of images.
    pub fn open(path: &Path) -> Result<Self, SourceError> {
        let io = |source| SourceError::Io {
            what: path.display().to_string(),
            source,
        };
        let meta = std::fs::metadata(path).map_err(io)?;
        let files = if meta.is_dir() {
            let mut files: Vec<PathBuf> = std::fs::read_dir(path)
                .map_err(io)?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.is_file() && is_image(p))
                .collect();
            files.sort();
            if files.is_empty() {
                return Err(SourceError::Spec {
                    spec: format!("images:{}", path.display()),
                    reason: "the folder has no .jpg, .jpeg or .png files".into(),
                });
            }
            files
        } else {
            vec![path.to_path_buf()]
        };
        Ok(Self {
            files,
            next: 0,
            data: Vec::new(),
            name: format!("images:{}", path.display()),
        })
    }

    /// The files in the order they are delivered.
    pub fn files(&self) -> &[PathBuf] {
        &self.files
    }
}

impl FrameSource for ImageSource {
    fn next_frame(&mut self, frame: &mut Frame) -> Result<FrameStatus, SourceError> {
        let Some(path) = self.files.get(self.next).cloned() else {
            return Ok(FrameStatus::End);
        };
        self.next += 1;
        self.data.clear();
        if let Err(e) = std::io::Read::read_to_end(
            &mut match std::fs::File::open(&path) {
                Ok(f) => f,
                Err(e) => return Ok(FrameStatus::Corrupt(format!("{}: {e}", path.display()))),
            },
            &mut self.data,
        ) {
            return Ok(FrameStatus::Corrupt(format!("{}: {e}", path.display())));
        }
        let decoded = if self.data.starts_with(&[0xFF, 0xD8]) {
            jpeg::decode_into_frame(&self.data, frame)
        } else {
            decode_other(&self.data, frame)
        };
        match decoded {
            Ok(()) => {
                frame.sequence = self.next as u64;
                frame.timestamp_ms = now_ms();
                Ok(FrameStatus::Frame)
            }
            Err(e) => Ok(FrameStatus::Corrupt(format!("{}: {e}", path.display()))),
        }
    }

    fn describe(&self) -> String {
        format!("{} ({} files)", self.name, self.files.len())
    }
}

fn decode_other(data: &[u8], frame: &mut Frame) -> Result<(), String> {
    let img = image::load_from_memory(data).map_err(|e| e.to_string())?;
    let rgb = img.to_rgb8();
    frame.reshape(rgb.width(), rgb.height());
    frame.rgb.copy_from_slice(rgb.as_raw());
    Ok(())
}
