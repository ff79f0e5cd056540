//! The predictions file: JSON lines, one object per image.
//!
//! ```json
//! {"image": "img/x/img_00000001.jpg", "category": [..50 scores..],
//!  "attributes": [..A scores..], "landmarks": [[x, y], ..8..],
//!  "visibility": [[p_visible, p_occluded, p_truncated], ..8..],
//!  "embedding": [..D floats..]}
//! ```
//!
//! Every field but `image` is optional. Landmarks are in original image
//! pixels. Unknown fields are rejected (a misspelt field would otherwise be
//! silently ignored).

use serde::{Deserialize, Serialize};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

/// One line of a predictions file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Prediction {
    /// Image name as in the annotation files.
    pub image: String,
    /// One score per category (any monotone scale: logits or probabilities).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub category: Option<Vec<f32>>,
    /// One score per attribute.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attributes: Option<Vec<f32>>,
    /// `[x, y]` for each of the 8 slots, in original image pixels.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub landmarks: Option<Vec<[f32; 2]>>,
    /// `[p_visible, p_occluded, p_truncated]` for each of the 8 slots.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub visibility: Option<Vec<[f32; 3]>>,
    /// Retrieval embedding (compared by cosine similarity).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub embedding: Option<Vec<f32>>,
}

impl Prediction {
    /// A prediction with only the image name.
    pub fn new(image: impl Into<String>) -> Self {
        Self {
            image: image.into(),
            category: None,
            attributes: None,
            landmarks: None,
            visibility: None,
            embedding: None,
        }
    }
}

/// Errors reading or writing a predictions file.
#[derive(Debug, thiserror::Error)]
pub enum PredictionError {
    /// I/O on the file.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A line is not a valid prediction object.
    #[error("{}:{line}: {msg}", path.display())]
    Line {
        /// The file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        msg: String,
    },
}

/// Read a JSON-lines predictions file. Blank lines are only allowed at the
/// end, so prediction `i` is on line `i + 1` (the line numbers that
/// [`super::score`] errors name).
pub fn read_predictions(path: &Path) -> Result<Vec<Prediction>, PredictionError> {
    let io = |e| PredictionError::Io {
        path: path.to_path_buf(),
        source: e,
    };
    let f = std::fs::File::open(path).map_err(io)?;
    let mut out = Vec::new();
    let mut blank_at = None;
    for (i, line) in BufReader::new(f).lines().enumerate() {
        let line = line.map_err(|e| PredictionError::Line {
            path: path.to_path_buf(),
            line: i + 1,
            msg: format!("unreadable line: {e}"),
        })?;
        if line.trim().is_empty() {
            blank_at.get_or_insert(i + 1);
            continue;
        }
        if let Some(b) = blank_at {
            return Err(PredictionError::Line {
                path: path.to_path_buf(),
                line: b,
                msg: "empty line before the last prediction".into(),
            });
        }
        let p: Prediction = serde_json::from_str(&line).map_err(|e| PredictionError::Line {
            path: path.to_path_buf(),
            line: i + 1,
            msg: e.to_string(),
        })?;
        out.push(p);
    }
    Ok(out)
}

/// Write predictions as JSON lines, atomically (temporary file in the same
/// folder, fsync, rename).
pub fn write_predictions(path: &Path, preds: &[Prediction]) -> Result<(), PredictionError> {
    let io = |e| PredictionError::Io {
        path: path.to_path_buf(),
        source: e,
    };
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "predictions".into());
    let tmp = dir.join(format!(".{name}.tmp{}", std::process::id()));
    let result = (|| {
        let f = std::fs::File::create(&tmp)?;
        let mut w = std::io::BufWriter::new(f);
        for p in preds {
            serde_json::to_writer(&mut w, p)?;
            w.write_all(b"\n")?;
        }
        let f = w.into_inner().map_err(|e| e.into_error())?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result.map_err(io)
}
