//! Annotated frames to a folder: `frame_000001.jpg`, ... written atomically
//! (temporary file, fsync, rename), optionally keeping only the newest N.

use std::collections::VecDeque;
use std::fmt::Write as _;
use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// Errors of the frame folder.
#[derive(Debug, thiserror::Error)]
pub enum FolderError {
    /// The folder could not be created.
    #[error("cannot create frame folder {path}: {source}")]
    Create {
        /// The folder.
        path: PathBuf,
        /// The cause.
        source: io::Error,
    },
    /// A frame could not be written.
    #[error("cannot write annotated frame {path}: {source}")]
    Write {
        /// The final file name.
        path: PathBuf,
        /// The cause.
        source: io::Error,
    },
}

/// Writes JPEG frames into a folder.
#[derive(Debug)]
pub struct FrameFolderSink {
    dir: PathBuf,
    keep_last: Option<usize>,
    written: VecDeque<u64>,
    name: String,
    tmp: PathBuf,
    path: PathBuf,
}

impl FrameFolderSink {
    /// Write into `dir` (created if missing). With `keep_last = Some(n)`,
    /// the oldest frame written by this sink is deleted once `n` newer ones
    /// exist, bounding the disk use.
    pub fn create(dir: &Path, keep_last: Option<usize>) -> Result<Self, FolderError> {
        fs::create_dir_all(dir).map_err(|source| FolderError::Create {
            path: dir.to_path_buf(),
            source,
        })?;
        let keep_last = keep_last.map(|n| n.max(1));
        Ok(Self {
            dir: dir.to_path_buf(),
            keep_last,
            written: VecDeque::with_capacity(keep_last.map_or(0, |n| n + 1)),
            name: String::with_capacity(32),
            tmp: PathBuf::with_capacity(dir.as_os_str().len() + 32),
            path: PathBuf::with_capacity(dir.as_os_str().len() + 32),
        })
    }

    /// The file name frame `frame` is written to.
    pub fn file_name(frame: u64) -> String {
        format!("frame_{frame:06}.jpg")
    }

    /// Write `jpeg` as frame number `frame`, replacing any earlier file of
    /// that name; readers never see a partial file.
    pub fn write(&mut self, frame: u64, jpeg: &[u8]) -> Result<(), FolderError> {
        self.set_paths(frame);
        let res = write_atomically(&self.tmp, &self.path, jpeg);
        if let Err(source) = res {
            let _ = fs::remove_file(&self.tmp);
            return Err(FolderError::Write {
                path: self.path.clone(),
                source,
            });
        }
        if let Some(keep) = self.keep_last {
            if self.written.back() != Some(&frame) {
                self.written.push_back(frame);
            }
            while self.written.len() > keep {
                if let Some(old) = self.written.pop_front() {
                    self.set_paths(old);
                    if let Err(e) = fs::remove_file(&self.path) {
                        tracing::warn!("cannot remove old frame {}: {e}", self.path.display());
                    }
                }
            }
        }
        Ok(())
    }

    fn set_paths(&mut self, frame: u64) {
        self.name.clear();
        let _ = write!(self.name, ".frame_{frame:06}.jpg.tmp");
        self.tmp.clear();
        self.tmp.push(&self.dir);
        self.tmp.push(&self.name);
        self.path.clear();
        self.path.push(&self.dir);
        self.path.push(&self.name[1..self.name.len() - 4]);
    }
}

fn write_atomically(tmp: &Path, path: &Path, bytes: &[u8]) -> io::Result<()> {
    let mut f = File::create(tmp)?;
    f.write_all(bytes)?;
    f.sync_all()?;
    drop(f);
    fs::rename(tmp, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_named_frames_and_keeps_the_newest() {
        let dir = tempfile::tempdir().unwrap();
        let mut sink = FrameFolderSink::create(&dir.path().join("frames"), Some(2)).unwrap();
        for n in 1..=4u64 {
            sink.write(n, &[n as u8; 3]).unwrap();
        }
        let mut names: Vec<String> = fs::read_dir(dir.path().join("frames"))
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        assert_eq!(names, ["frame_000003.jpg", "frame_000004.jpg"]);
        let bytes = fs::read(dir.path().join("frames/frame_000004.jpg")).unwrap();
        assert_eq!(bytes, [4, 4, 4]);
        assert_eq!(FrameFolderSink::file_name(12), "frame_000012.jpg");
    }
}
