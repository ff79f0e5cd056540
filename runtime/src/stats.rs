//! Running statistics of the frame loop and the periodic stats line (FPS,
//! mean latency per stage, dropped and corrupt frames), logged via tracing.

use crate::result::StageLatency;
use std::time::{Duration, Instant};

/// Counters since start and sums since the last stats line.
#[derive(Debug, Clone)]
pub struct Stats {
    /// Frames processed since start.
    pub frames: u64,
    /// Corrupt frames skipped since start.
    pub corrupt: u64,
    /// Frames the camera dropped since start (sequence gaps).
    pub dropped: u64,
    /// Frames whose inference failed since start.
    pub failed: u64,
    /// Successful model/table reloads.
    pub reloads: u64,
    window_frames: u64,
    window_sum: [u64; 6],
    window_start: Instant,
    interval: Duration,
}

/// One stats line's numbers.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct StatsSnapshot {
    /// Frames per second over the window.
    pub fps: f64,
    /// Mean microseconds per stage: capture, preprocess, inference, decode,
    /// search, total.
    pub mean_us: [u64; 6],
    /// Frames since start.
    pub frames: u64,
    /// Corrupt frames since start.
    pub corrupt: u64,
    /// Dropped frames since start.
    pub dropped: u64,
}

impl Stats {
    /// Stats with a line every `interval`.
    pub fn new(interval: Duration) -> Self {
        Self {
            frames: 0,
            corrupt: 0,
            dropped: 0,
            failed: 0,
            reloads: 0,
            window_frames: 0,
            window_sum: [0; 6],
            window_start: Instant::now(),
            interval,
        }
    }

    /// Count one processed frame.
    pub fn record(&mut self, l: &StageLatency) {
        self.frames += 1;
        self.window_frames += 1;
        let v = [
            l.capture_us,
            l.preprocess_us,
            l.inference_us,
            l.decode_us,
            l.search_us,
            l.total_us,
        ];
        for (s, x) in self.window_sum.iter_mut().zip(v) {
            *s += x as u64;
        }
    }

    /// The current window's numbers.
    pub fn snapshot(&self) -> StatsSnapshot {
        let secs = self.window_start.elapsed().as_secs_f64().max(1e-9);
        let n = self.window_frames.max(1);
        StatsSnapshot {
            fps: self.window_frames as f64 / secs,
            mean_us: self.window_sum.map(|s| s / n),
            frames: self.frames,
            corrupt: self.corrupt,
            dropped: self.dropped,
        }
    }

    /// Log a stats line if the interval has passed (and start a new window).
    pub fn maybe_log(&mut self) -> Option<StatsSnapshot> {
        if self.window_start.elapsed() < self.interval {
            return None;
        }
        let s = self.snapshot();
        self.log(&s);
        self.window_frames = 0;
        self.window_sum = [0; 6];
        self.window_start = Instant::now();
        Some(s)
    }

    /// Log `s` as one line.
    pub fn log(&self, s: &StatsSnapshot) {
        tracing::info!(
            fps = format_args!("{:.1}", s.fps),
            capture_ms = format_args!("{:.1}", s.mean_us[0] as f64 / 1e3),
            preprocess_ms = format_args!("{:.1}", s.mean_us[1] as f64 / 1e3),
            inference_ms = format_args!("{:.1}", s.mean_us[2] as f64 / 1e3),
            decode_ms = format_args!("{:.2}", s.mean_us[3] as f64 / 1e3),
            search_ms = format_args!("{:.2}", s.mean_us[4] as f64 / 1e3),
            total_ms = format_args!("{:.1}", s.mean_us[5] as f64 / 1e3),
            frames = s.frames,
            dropped = s.dropped,
            corrupt = s.corrupt,
            failed = self.failed,
            "stats"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn means_and_counts() {
        let mut s = Stats::new(Duration::from_secs(3600));
        for t in [1000, 3000] {
            s.record(&StageLatency {
                inference_us: t,
                total_us: t + 10,
                ..Default::default()
            });
        }
        s.corrupt = 2;
        let snap = s.snapshot();
        assert_eq!(snap.mean_us[2], 2000);
        assert_eq!(snap.mean_us[5], 2010);
        assert_eq!((snap.frames, snap.corrupt), (2, 2));
        assert!(s.maybe_log().is_none());
    }
}
