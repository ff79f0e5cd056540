//! Streaming reader for the `list_*.txt` layout: a count line, a column-name
//! line (except item lists and the fine split files), then data rows. Rows
//! are handed to a callback as tokens; a failing row is an error naming file
//! and line, or, in lenient mode, is skipped and counted.

use super::{parse, DataError};
use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};

/// What precedes the data rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Layout {
    /// Count line, column-name line, rows.
    CountHeader,
    /// Count line, rows (`list_item_*.txt`).
    CountOnly,
    /// Rows only (fine split files).
    Plain,
}

/// Reading context shared by all files of one load.
pub(crate) struct Reader {
    pub lenient: bool,
    pub skipped: usize,
}

impl Reader {
    /// Read `path` with `layout`, calling `row(tokens, raw_line)` for every
    /// non-blank data line. Returns the number of data rows seen (skipped
    /// ones included).
    pub fn read<F>(&mut self, path: &Path, layout: Layout, mut row: F) -> Result<usize, DataError>
    where
        F: FnMut(&[&str], &str) -> Result<(), String>,
    {
        let file = File::open(path).map_err(|e| DataError::Io {
            path: path.to_path_buf(),
            source: e,
        })?;
        let mut reader = BufReader::with_capacity(1 << 20, file);
        let mut bytes: Vec<u8> = Vec::new();
        let mut line_no = 0usize;
        let mut declared: Option<usize> = None;
        let mut need_header = layout == Layout::CountHeader;
        let mut need_count = layout != Layout::Plain;
        let mut rows = 0usize;
        loop {
            bytes.clear();
            let n = reader
                .read_until(b'\n', &mut bytes)
                .map_err(|e| DataError::Io {
                    path: path.to_path_buf(),
                    source: e,
                })?;
            if n == 0 {
                break;
            }
            line_no += 1;
            // Invalid UTF-8 is replaced, then reported by the row parser as a
            // bad token rather than as an I/O error.
            let line = String::from_utf8_lossy(&bytes);
            let line: &str = &line;
            if line.trim_ascii().is_empty() {
                continue;
            }
            if need_count {
                need_count = false;
                // The count line is structural: even lenient mode cannot guess.
                declared = Some(parse::count_line(line).map_err(|m| malformed(path, line_no, m))?);
                continue;
            }
            if need_header {
                need_header = false;
                parse::header_line(line).map_err(|m| malformed(path, line_no, m))?;
                continue;
            }
            rows += 1;
            let toks = parse::tokens(line);
            if let Err(m) = row(&toks, line) {
                if self.lenient {
                    self.skipped += 1;
                    tracing::warn!("{}:{line_no}: skipped: {m}", path.display());
                } else {
                    return Err(malformed(path, line_no, m));
                }
            }
        }
        if need_count {
            return Err(DataError::File {
                path: path.to_path_buf(),
                msg: "empty file (expected a count line)".into(),
            });
        }
        if need_header {
            return Err(DataError::File {
                path: path.to_path_buf(),
                msg: "missing the column-name line".into(),
            });
        }
        if let Some(d) = declared {
            if d != rows {
                let msg = format!("count line says {d} rows, the file has {rows}");
                if self.lenient {
                    tracing::warn!("{}: {msg}", path.display());
                } else {
                    return Err(DataError::File {
                        path: path.to_path_buf(),
                        msg,
                    });
                }
            }
        }
        Ok(rows)
    }
}

/// A malformed-row error.
pub(crate) fn malformed(path: &Path, line: usize, msg: String) -> DataError {
    DataError::Malformed {
        path: PathBuf::from(path),
        line,
        msg,
    }
}
