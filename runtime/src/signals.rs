//! Process signals and file changes the frame loop reacts to: SIGTERM and
//! SIGINT (flush outputs, exit 0), SIGHUP (reload model and table), and a
//! model or table file replaced on disk (reload, when watching is on).
//! Signal handlers only set flags (`signal-hook`); the loop polls them
//! between frames.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::SystemTime;

/// Flags set by signal handlers.
#[derive(Debug, Clone)]
pub struct Signals {
    /// SIGTERM or SIGINT arrived.
    pub terminate: Arc<AtomicBool>,
    /// SIGHUP arrived (cleared by [`Signals::take_reload`]).
    pub reload: Arc<AtomicBool>,
}

impl Signals {
    /// Register the handlers.
    pub fn install() -> std::io::Result<Self> {
        let s = Self::unregistered();
        for sig in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
            signal_hook::flag::register(sig, s.terminate.clone())?;
        }
        signal_hook::flag::register(signal_hook::consts::SIGHUP, s.reload.clone())?;
        Ok(s)
    }

    /// Flags without handlers (tests, library use).
    pub fn unregistered() -> Self {
        Self {
            terminate: Arc::new(AtomicBool::new(false)),
            reload: Arc::new(AtomicBool::new(false)),
        }
    }

    /// Whether termination was asked for.
    pub fn should_stop(&self) -> bool {
        self.terminate.load(Ordering::Relaxed)
    }

    /// Whether a reload was asked for (clears the flag).
    pub fn take_reload(&self) -> bool {
        self.reload.swap(false, Ordering::Relaxed)
    }
}

/// Detects that files were replaced (modification time, size or inode
/// changed). Polled, at most once a second by the caller.
#[derive(Debug, Clone)]
pub struct FileWatch {
    files: Vec<(PathBuf, Option<Stamp>)>,
}

/// What identifies one version of a file: modification time, size, inode.
type Stamp = (SystemTime, u64, u64);

fn stamp(path: &Path) -> Option<Stamp> {
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::metadata(path).ok()?;
    Some((m.modified().ok()?, m.len(), m.ino()))
}

impl FileWatch {
    /// Watch these files (their current state is the baseline).
    pub fn new<'a>(paths: impl IntoIterator<Item = &'a Path>) -> Self {
        Self {
            files: paths
                .into_iter()
                .map(|p| (p.to_path_buf(), stamp(p)))
                .collect(),
        }
    }

    /// Whether any file changed since the last call (or creation). A file
    /// that is momentarily missing (being replaced) is not a change yet.
    pub fn changed(&mut self) -> bool {
        let mut any = false;
        for (path, last) in &mut self.files {
            let now = stamp(path);
            if now.is_some() && now != *last {
                *last = now;
                any = true;
            }
        }
        any
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detects_replacement() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("m.onnx");
        std::fs::write(&p, b"one").unwrap();
        let mut w = FileWatch::new([p.as_path()]);
        assert!(!w.changed());
        let tmp = dir.path().join("m.tmp");
        std::fs::write(&tmp, b"second").unwrap();
        std::fs::rename(&tmp, &p).unwrap();
        assert!(w.changed());
        assert!(!w.changed());
        std::fs::remove_file(&p).unwrap();
        assert!(!w.changed());
    }

    #[test]
    fn flags() {
        let s = Signals::unregistered();
        assert!(!s.take_reload());
        s.reload.store(true, Ordering::Relaxed);
        assert!(s.take_reload());
        assert!(!s.take_reload());
        assert!(!s.should_stop());
    }
}
