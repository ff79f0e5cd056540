//! JSON lines: one [`FrameResult`] object per line, to stdout or a file.
//!
//! The schema is documented in `runtime/OUTPUTS.md`. Each line is formatted
//! into a reused buffer and flushed as soon as it is written, so that a
//! consumer reading the stream (`| jq`, `tail -f`) sees every frame at once.

use std::fs::{File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

use crate::result::{FrameResult, Names};

/// Errors of the JSON-lines sink.
#[derive(Debug, thiserror::Error)]
pub enum JsonlError {
    /// The output file could not be opened.
    #[error("cannot open JSON-lines output {path}: {source}")]
    Open {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: io::Error,
    },
    /// Writing or flushing failed.
    #[error("cannot write JSON lines to {target}: {source}")]
    Write {
        /// `stdout` or the file path.
        target: String,
        /// The cause.
        source: io::Error,
    },
}

/// Writes one JSON object per frame, newline-terminated.
pub struct JsonlSink {
    out: BufWriter<Box<dyn Write + Send>>,
    file: Option<File>,
    target: String,
    line: String,
}

impl std::fmt::Debug for JsonlSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JsonlSink")
            .field("target", &self.target)
            .finish()
    }
}

impl JsonlSink {
    /// JSON lines to standard output (logs go to stderr).
    pub fn stdout() -> Self {
        Self::from_writer(Box::new(io::stdout()), "stdout".to_string())
    }

    /// JSON lines appended to `path` (created if missing, never truncated,
    /// so that a restarted service keeps the earlier lines).
    pub fn append_to(path: &Path) -> Result<Self, JsonlError> {
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(|source| JsonlError::Open {
                path: path.to_path_buf(),
                source,
            })?;
        let sync = file.try_clone().map_err(|source| JsonlError::Open {
            path: path.to_path_buf(),
            source,
        })?;
        let mut sink = Self::from_writer(Box::new(file), path.display().to_string());
        sink.file = Some(sync);
        Ok(sink)
    }

    /// JSON lines to any writer (`target` names it in errors).
    pub fn from_writer(out: Box<dyn Write + Send>, target: String) -> Self {
        Self {
            out: BufWriter::with_capacity(64 * 1024, out),
            file: None,
            target,
            line: String::with_capacity(4096),
        }
    }

    /// Write `result` as one line and flush it.
    pub fn write(&mut self, result: &FrameResult, names: &Names<'_>) -> Result<(), JsonlError> {
        result.write_json(names, &mut self.line);
        self.line.push('\n');
        self.out
            .write_all(self.line.as_bytes())
            .and_then(|()| self.out.flush())
            .map_err(|source| JsonlError::Write {
                target: self.target.clone(),
                source,
            })
    }

    /// Flush buffered lines and, for a file, fsync it (call on shutdown).
    pub fn finish(&mut self) -> Result<(), JsonlError> {
        let target = &self.target;
        let err = |source| JsonlError::Write {
            target: target.clone(),
            source,
        };
        self.out.flush().map_err(err)?;
        if let Some(f) = &self.file {
            f.sync_all().map_err(err)?;
        }
        Ok(())
    }
}

impl Drop for JsonlSink {
    fn drop(&mut self) {
        if let Err(e) = self.finish() {
            tracing::warn!("{e}");
        }
    }
}
