//! The slot shared by the frame loop (writer) and the preview clients
//! (readers): latest JPEG, latest result, camera status, FPS.

use std::fmt::Write as _;
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crate::outputs::OwnedNames;
use crate::result::{write_f32, write_str, FrameResult};

/// Camera status shown on the preview page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CameraStatus {
    /// No frame yet.
    Starting,
    /// Frames are arriving.
    Ok,
    /// The camera went away; the pipeline is reopening it.
    Reconnecting,
    /// The source ended (end of file, shutdown).
    Stopped,
}

impl CameraStatus {
    /// The word used in `/state.json`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Starting => "starting",
            Self::Ok => "ok",
            Self::Reconnecting => "reconnecting",
            Self::Stopped => "stopped",
        }
    }
}

struct Slot {
    jpeg: Vec<u8>,
    /// Publish counter; 0 = nothing published yet.
    seq: u64,
    result: FrameResult,
    camera: CameraStatus,
    fps: f32,
    last_publish: Option<Instant>,
}

pub(crate) struct Shared {
    slot: Mutex<Slot>,
    changed: Condvar,
    names: OwnedNames,
}

impl Shared {
    pub(crate) fn new(names: OwnedNames) -> Self {
        Self {
            slot: Mutex::new(Slot {
                jpeg: Vec::new(),
                seq: 0,
                result: FrameResult::default(),
                camera: CameraStatus::Starting,
                fps: 0.0,
                last_publish: None,
            }),
            changed: Condvar::new(),
            names,
        }
    }

    fn lock(&self) -> MutexGuard<'_, Slot> {
        // A panic while holding the lock cannot leave the slot inconsistent
        // in a way that matters for a preview: keep serving.
        self.slot.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn publish(&self, jpeg: &mut Vec<u8>, result: &FrameResult) {
        let now = Instant::now();
        {
            let mut s = self.lock();
            std::mem::swap(&mut s.jpeg, jpeg);
            s.result.clone_from(result);
            s.seq += 1;
            s.camera = CameraStatus::Ok;
            if let Some(prev) = s.last_publish {
                let dt = now.duration_since(prev).as_secs_f32();
                if dt > 0.0 {
                    let inst = 1.0 / dt;
                    s.fps = if s.fps == 0.0 {
                        inst
                    } else {
                        0.8 * s.fps + 0.2 * inst
                    };
                }
            }
            s.last_publish = Some(now);
        }
        jpeg.clear();
        self.changed.notify_all();
    }

    pub(crate) fn set_camera_status(&self, status: CameraStatus) {
        self.lock().camera = status;
        self.changed.notify_all();
    }

    pub(crate) fn wake_all(&self) {
        self.changed.notify_all();
    }

    /// Wait up to `timeout` for a publish newer than `seen`; returns the
    /// newest sequence number if there is one.
    pub(crate) fn wait_newer(&self, seen: u64, timeout: Duration) -> Option<u64> {
        let s = self.lock();
        let (s, _) = self
            .changed
            .wait_timeout_while(s, timeout, |s| s.seq <= seen)
            .unwrap_or_else(|e| e.into_inner());
        (s.seq > seen).then_some(s.seq)
    }

    /// Copy the latest JPEG into `out` if it is newer than `seen`; returns
    /// its sequence number.
    pub(crate) fn copy_latest(&self, out: &mut Vec<u8>, seen: u64) -> Option<u64> {
        let s = self.lock();
        if s.seq <= seen || s.jpeg.is_empty() {
            return None;
        }
        out.clear();
        out.extend_from_slice(&s.jpeg);
        Some(s.seq)
    }

    /// The `/state.json` body (see `runtime/OUTPUTS.md`).
    pub(crate) fn state_json(&self) -> String {
        let (result, seq, camera, fps, age) = {
            let s = self.lock();
            let age = s.last_publish.map(|t| t.elapsed());
            (s.result.clone(), s.seq, s.camera, s.fps, age)
        };
        // No frame for 3 s: the rate shown decays to 0 rather than freezing.
        let fps = match age {
            Some(a) if a < Duration::from_secs(3) => fps,
            _ => 0.0,
        };
        let mut out = String::with_capacity(4096);
        out.push_str("{\"camera\":");
        let _ = write_str(&mut out, camera.as_str());
        out.push_str(",\"fps\":");
        let _ = write_f32(&mut out, (fps * 10.0).round() / 10.0);
        let _ = write!(out, ",\"seq\":{seq},\"result\":");
        if seq == 0 {
            out.push_str("null");
        } else {
            let names = self.names.view();
            let _ = result.write_json_to(&names, &mut out);
        }
        out.push('}');
        out
    }
}
