//! The outputs a device config asks for, behind the frame loop's
//! [`FrameSink`]: JSON lines, annotated frames, the preview server and MQTT
//! (all implemented in [`crate::outputs`]).

use crate::config::DeviceConfig;
use crate::outputs::folder::FrameFolderSink;
use crate::outputs::http::{CameraStatus, PreviewServer};
use crate::outputs::jsonl::JsonlSink;
use crate::outputs::mqtt::MqttPublisher;
use crate::outputs::{Outputs, OutputsError, OwnedNames};
use crate::result::{FrameResult, Names};
use crate::sources::reopen::SourceState;
use crate::sources::Frame;
use crate::tag::FrameSink;
use anyhow::{Context, Result};
use std::time::Duration;

/// How long MQTT may take to send its queue on shutdown.
pub const MQTT_GRACE: Duration = Duration::from_secs(2);

/// Apply `--http ADDR` and `--mqtt HOST:PORT` to a config (keeping the
/// other settings of its `[http]` / `[mqtt]` sections).
pub fn apply_output_flags(
    cfg: &mut DeviceConfig,
    http: Option<&str>,
    mqtt: Option<&str>,
) -> Result<()> {
    if let Some(addr) = http {
        let mut h = cfg.http.clone().unwrap_or_default();
        h.addr = addr
            .parse()
            .with_context(|| format!("--http {addr}: expected ADDR:PORT, e.g. 0.0.0.0:8080"))?;
        cfg.http = Some(h);
    }
    if let Some(broker) = mqtt {
        let mut m = cfg.mqtt.clone().unwrap_or_default();
        m.broker = broker.to_string();
        cfg.mqtt = Some(m);
    }
    Ok(())
}

/// All configured outputs.
#[derive(Debug)]
pub struct Sink {
    outputs: Option<Outputs>,
}

impl Sink {
    /// Open (and start) the outputs `cfg` asks for.
    pub fn open(cfg: &DeviceConfig, names: OwnedNames) -> Result<Self> {
        let mut o = Outputs::new(names.clone());
        if let Some(j) = &cfg.jsonl {
            o = o.with_jsonl(if j.as_os_str() == "-" {
                JsonlSink::stdout()
            } else {
                JsonlSink::append_to(j)?
            });
        }
        if let Some(dir) = &cfg.annotated {
            o = o.with_folder(FrameFolderSink::create(dir, None)?);
        }
        if let Some(h) = &cfg.http {
            h.validate()?;
            let server = PreviewServer::start(h, names.clone())?;
            tracing::info!(addr = %server.local_addr(), "preview server listening");
            o = o.with_preview(server, h.max_fps, h.jpeg_quality);
        }
        if let Some(m) = &cfg.mqtt {
            m.validate()?;
            o = o.with_mqtt(MqttPublisher::start(m, names)?);
        }
        Ok(Self { outputs: Some(o) })
    }
}

impl FrameSink for Sink {
    fn frame(&mut self, frame: &Frame, result: &FrameResult, _names: &Names<'_>) -> Result<()> {
        let Some(o) = self.outputs.as_mut() else {
            return Ok(());
        };
        match o.emit(frame.pixels(), result) {
            Ok(()) => Ok(()),
            // Losing the JSON lines (a closed pipe, a full disk) ends the run.
            Err(e @ OutputsError::Jsonl(_)) => Err(e.into()),
            Err(e) => {
                tracing::warn!(error = %e, "output failed for this frame");
                Ok(())
            }
        }
    }

    fn source_state(&mut self, state: &SourceState) {
        if let Some(o) = &self.outputs {
            o.set_camera_status(match state {
                SourceState::Starting => CameraStatus::Starting,
                SourceState::Running { .. } => CameraStatus::Ok,
                SourceState::Reconnecting { .. } => CameraStatus::Reconnecting,
                SourceState::Ended => CameraStatus::Stopped,
            });
        }
    }

    fn finish(&mut self) -> Result<()> {
        if let Some(o) = self.outputs.take() {
            o.finish(MQTT_GRACE)?;
        }
        Ok(())
    }
}
