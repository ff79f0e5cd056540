//! Reopening a source that disappeared (a USB camera unplugged, a driver
//! reset) with exponential backoff, and the source's condition shared with
//! the outputs (the preview page says "camera lost, retrying in 4 s").

use super::{Frame, FrameSource, FrameStatus, SourceError};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The condition of the frame source.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum SourceState {
    /// Not opened yet.
    Starting,
    /// Delivering frames.
    Running {
        /// What is open (device, format, size).
        description: String,
    },
    /// Lost; reopening.
    Reconnecting {
        /// Reopen attempts so far.
        attempt: u32,
        /// Wait before the next attempt, milliseconds.
        retry_in_ms: u64,
        /// The last error.
        error: String,
    },
    /// The source ended (end of file).
    Ended,
}

/// [`SourceState`] shared between the frame loop and the outputs.
pub type SharedSourceState = Arc<Mutex<SourceState>>;

/// A new shared state (`Starting`).
pub fn shared_state() -> SharedSourceState {
    Arc::new(Mutex::new(SourceState::Starting))
}

/// Set the shared state (ignores a poisoned lock: the state is advisory).
pub fn set_state(state: &SharedSourceState, value: SourceState) {
    if let Ok(mut s) = state.lock() {
        *s = value;
    }
}

/// Backoff schedule: 0.25 s doubling up to 8 s.
#[derive(Debug, Clone, Copy)]
pub struct Backoff {
    /// First wait.
    pub initial: Duration,
    /// Longest wait.
    pub max: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Self {
            initial: Duration::from_millis(250),
            max: Duration::from_secs(8),
        }
    }
}

impl Backoff {
    /// Wait before attempt `attempt` (1-based).
    pub fn delay(&self, attempt: u32) -> Duration {
        let factor = 1u32 << attempt.saturating_sub(1).min(16);
        (self.initial * factor).min(self.max)
    }
}

/// Opens a source (again).
pub type Opener = Box<dyn FnMut() -> Result<Box<dyn FrameSource>, SourceError> + Send>;

/// A source that is reopened with backoff when it fails.
pub struct Reopening {
    opener: Opener,
    inner: Option<Box<dyn FrameSource>>,
    name: String,
    state: SharedSourceState,
    backoff: Backoff,
    attempt: u32,
    /// Called instead of sleeping (tests).
    sleep: fn(Duration),
    stop: Option<Arc<std::sync::atomic::AtomicBool>>,
}

impl Reopening {
    /// Open now (the first open must succeed: a wrong path is an error, not
    /// a retry loop).
    pub fn new(
        mut opener: Opener,
        name: String,
        state: SharedSourceState,
    ) -> Result<Self, SourceError> {
        let inner = opener()?;
        set_state(
            &state,
            SourceState::Running {
                description: inner.describe(),
            },
        );
        Ok(Self {
            opener,
            inner: Some(inner),
            name,
            state,
            backoff: Backoff::default(),
            attempt: 0,
            sleep: std::thread::sleep,
            stop: None,
        })
    }

    /// Use another backoff schedule and sleep function (tests).
    pub fn with_backoff(mut self, backoff: Backoff, sleep: fn(Duration)) -> Self {
        self.backoff = backoff;
        self.sleep = sleep;
        self
    }

    /// Give up reopening (return `End`) once this flag is set (SIGTERM).
    pub fn with_stop_flag(mut self, stop: Arc<std::sync::atomic::AtomicBool>) -> Self {
        self.stop = Some(stop);
        self
    }
}

impl FrameSource for Reopening {
    /// A frame from the device; when the device fails, returns
    /// [`FrameStatus::Reconnecting`] at once, and on each later call waits
    /// the backoff delay and tries to reopen (returning `Reconnecting` again
    /// while that fails), so the caller keeps control between attempts.
    fn next_frame(&mut self, frame: &mut Frame) -> Result<FrameStatus, SourceError> {
        if let Some(stop) = &self.stop {
            if stop.load(std::sync::atomic::Ordering::Relaxed) {
                return Ok(FrameStatus::End);
            }
        }
        if self.inner.is_none() {
            self.attempt += 1;
            let wait = self.backoff.delay(self.attempt);
            (self.sleep)(wait);
            match (self.opener)() {
                Ok(inner) => {
                    tracing::info!(source = %self.name, attempts = self.attempt, "source reopened");
                    set_state(
                        &self.state,
                        SourceState::Running {
                            description: inner.describe(),
                        },
                    );
                    self.inner = Some(inner);
                    self.attempt = 0;
                }
                Err(e) => {
                    let next = self.backoff.delay(self.attempt + 1);
                    tracing::debug!(source = %self.name, error = %e, "reopen failed");
                    set_state(
                        &self.state,
                        SourceState::Reconnecting {
                            attempt: self.attempt,
                            retry_in_ms: next.as_millis() as u64,
                            error: e.to_string(),
                        },
                    );
                    return Ok(FrameStatus::Reconnecting(e.to_string()));
                }
            }
        }
        let inner = self.inner.as_mut().expect("opened above");
        let error = match inner.next_frame(frame) {
            Ok(FrameStatus::End) => "the device stopped delivering frames".to_string(),
            Ok(status) => return Ok(status),
            Err(e) => e.to_string(),
        };
        self.inner = None;
        let wait = self.backoff.delay(self.attempt + 1);
        tracing::warn!(source = %self.name, retry_in_ms = wait.as_millis() as u64, %error, "source lost, reopening");
        set_state(
            &self.state,
            SourceState::Reconnecting {
                attempt: self.attempt,
                retry_in_ms: wait.as_millis() as u64,
                error: error.clone(),
            },
        );
        Ok(FrameStatus::Reconnecting(error))
    }

    fn describe(&self) -> String {
        match &self.inner {
            Some(i) => i.describe(),
            None => format!("{} (reconnecting)", self.name),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    /// Yields `n` frames then fails with an I/O error.
    struct Flaky(u32);
    impl FrameSource for Flaky {
        fn next_frame(&mut self, frame: &mut Frame) -> Result<FrameStatus, SourceError> {
            if self.0 == 0 {
                return Err(SourceError::Io {
                    what: "flaky".into(),
                    source: std::io::Error::other("unplugged"),
                });
            }
            self.0 -= 1;
            frame.reshape(2, 2);
            Ok(FrameStatus::Frame)
        }
        fn describe(&self) -> String {
            "flaky".into()
        }
    }

    #[test]
    fn reopens_with_backoff_and_reports_state() {
        static OPENS: AtomicU32 = AtomicU32::new(0);
        static SLEPT_MS: AtomicU32 = AtomicU32::new(0);
        let opener: Opener = Box::new(|| {
            let k = OPENS.fetch_add(1, Ordering::SeqCst);
            // Open 0 works (2 frames); opens 1 and 2 fail; open 3 works.
            if k == 1 || k == 2 {
                Err(SourceError::Io {
                    what: "cam".into(),
                    source: std::io::Error::from(std::io::ErrorKind::NotFound),
                })
            } else {
                Ok(Box::new(Flaky(2)))
            }
        });
        let state = shared_state();
        let mut src = Reopening::new(opener, "cam".into(), state.clone())
            .unwrap()
            .with_backoff(Backoff::default(), |d| {
                SLEPT_MS.fetch_add(d.as_millis() as u32, Ordering::SeqCst);
            });
        let mut f = Frame::default();
        let mut statuses = vec![];
        while statuses
            .iter()
            .filter(|s| **s == FrameStatus::Frame)
            .count()
            < 4
        {
            statuses.push(src.next_frame(&mut f).unwrap());
        }
        // 2 frames, lost, 2 failed reopens, 2 frames.
        let reconnecting = statuses
            .iter()
            .filter(|s| matches!(s, FrameStatus::Reconnecting(_)))
            .count();
        assert_eq!((statuses.len(), reconnecting), (7, 3), "{statuses:?}");
        assert_eq!(OPENS.load(Ordering::SeqCst), 4);
        // 250 + 500 + 1000 ms of backoff before the third reopen succeeded.
        assert_eq!(SLEPT_MS.load(Ordering::SeqCst), 1750);
        assert!(matches!(
            *state.lock().unwrap(),
            SourceState::Running { .. }
        ));
        assert_eq!(Backoff::default().delay(20), Duration::from_secs(8));
    }
}
