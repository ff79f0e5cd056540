//! MQTT publishing for fleets of devices: a minimal MQTT 3.1.1 publisher
//! (std networking, TLS with rustls) on its own thread.
//!
//! The frame loop calls [`MqttPublisher::publish`], which decides from the
//! [`PublishMode`] whether the frame is sent and puts a copy of the result
//! (no heap) into a bounded queue without blocking; a full queue drops the
//! frame. The publisher thread connects, formats each result as the JSON
//! object of `runtime/OUTPUTS.md` and publishes it with the configured QoS.
//! When the broker is unreachable it reconnects with exponential backoff and
//! drops what is queued meanwhile: an outage costs the frames of the outage,
//! never memory or the process.

mod config;
mod packet;
mod session;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, SyncSender, TrySendError};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

pub use config::{MqttConfig, MqttError, PublishMode};

use super::OwnedNames;
use crate::result::{FrameResult, MAX_MATCHES};

/// Counters of the publisher (for the stats line and tests).
#[derive(Debug, Default)]
pub struct MqttStats {
    /// Messages handed to the broker (and acknowledged for QoS 1/2).
    pub sent: AtomicU64,
    /// Frames dropped: queue full or broker unreachable.
    pub dropped: AtomicU64,
    /// Successful connections (the first one included).
    pub connects: AtomicU64,
}

/// A running MQTT publisher.
pub struct MqttPublisher {
    tx: Option<SyncSender<FrameResult>>,
    mode: PublishMode,
    last_key: Option<ChangeKey>,
    stats: Arc<MqttStats>,
    stop: Arc<AtomicBool>,
    worker: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for MqttPublisher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MqttPublisher")
            .field("mode", &self.mode)
            .field("stats", &self.stats)
            .finish()
    }
}

/// What "a change" means for [`PublishMode::OnChange`]: the top category
/// and the set of matched items.
#[derive(Debug, Clone, PartialEq)]
struct ChangeKey {
    top: Option<u16>,
    matches: heapless::Vec<u32, MAX_MATCHES>,
}

impl ChangeKey {
    fn of(r: &FrameResult) -> Self {
        Self {
            top: r.top_category(),
            matches: r.matches.iter().map(|m| m.index).collect(),
        }
    }
}

impl MqttPublisher {
    /// Validate `config`, read the password file (refusing one that group
    /// or others can read) and start the publisher thread. Connecting
    /// happens on that thread: an unreachable broker is not an error here.
    pub fn start(config: &MqttConfig, names: OwnedNames) -> Result<Self, MqttError> {
        let settings = config.prepare()?;
        let (tx, rx) = sync_channel(config.queue);
        let stats = Arc::new(MqttStats::default());
        let stop = Arc::new(AtomicBool::new(false));
        let worker = {
            let (stats, stop) = (stats.clone(), stop.clone());
            thread::Builder::new()
                .name("mqtt-publisher".into())
                .spawn(move || session::run(settings, names, rx, stats, stop))
                .map_err(MqttError::Thread)?
        };
        Ok(Self {
            tx: Some(tx),
            mode: config.mode,
            last_key: None,
            stats,
            stop,
            worker: Some(worker),
        })
    }

    /// Offer one frame. Frames without a category are not published; in
    /// `on_change` mode only a frame whose top category or match set differs
    /// from the last published one is. Never blocks.
    pub fn publish(&mut self, result: &FrameResult) {
        if result.categories.is_empty() {
            return;
        }
        if self.mode == PublishMode::OnChange {
            let key = ChangeKey::of(result);
            if self.last_key.as_ref() == Some(&key) {
                return;
            }
            self.last_key = Some(key);
        }
        let Some(tx) = &self.tx else { return };
        match tx.try_send(result.clone()) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => {
                self.stats.dropped.fetch_add(1, Ordering::Relaxed);
            }
            Err(TrySendError::Disconnected(_)) => {
                self.stats.dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// The publisher's counters.
    pub fn stats(&self) -> Arc<MqttStats> {
        self.stats.clone()
    }

    /// Send what is queued (for at most `grace`), disconnect and stop.
    pub fn shutdown(mut self, grace: Duration) {
        self.stop_within(grace);
    }

    fn stop_within(&mut self, grace: Duration) {
        // Closing the queue asks the thread to drain it and disconnect.
        self.tx = None;
        let Some(worker) = self.worker.take() else {
            return;
        };
        let deadline = Instant::now() + grace;
        while !worker.is_finished() && Instant::now() < deadline {
            thread::sleep(Duration::from_millis(10));
        }
        // Past the grace period: tell it to give up; it checks between
        // packets and within a bounded I/O timeout.
        self.stop.store(true, Ordering::SeqCst);
        if worker.is_finished() {
            let _ = worker.join();
        }
    }
}

impl Drop for MqttPublisher {
    fn drop(&mut self) {
        self.stop_within(Duration::from_millis(500));
    }
}
