//! Where results go: JSON lines ([`jsonl`]), annotated frames to a folder
//! ([`folder`], drawn by [`annotate`]), the live preview web page
//! ([`http`]) and MQTT ([`mqtt`]). The formats are documented in
//! `runtime/OUTPUTS.md`.
//!
//! [`Outputs`] fans one frame out to the enabled outputs; the frame loop
//! calls [`Outputs::emit`] once per frame and [`Outputs::finish`] on
//! shutdown. Nothing here blocks on a network peer: the preview server and
//! the MQTT publisher run on their own threads and are fed through bounded
//! slots.

pub mod annotate;
pub mod folder;
pub mod http;
pub mod jsonl;
pub mod mqtt;

use std::sync::Arc;
use std::time::{Duration, Instant};

use deepfashion::contract::Labels;

use crate::result::{FrameResult, Names, ShopNames};
use annotate::{AnnotateError, Annotator};
use folder::{FolderError, FrameFolderSink};
use http::{CameraStatus, PreviewServer};
use jsonl::{JsonlError, JsonlSink};
use mqtt::MqttPublisher;

/// Names owned for the lifetime of the outputs (shared with the preview
/// and MQTT threads).
#[derive(Clone, Default)]
pub struct OwnedNames {
    /// The model's labels.
    pub labels: Option<Arc<Labels>>,
    /// The shop table's item names.
    pub shop: Option<Arc<dyn ShopNames>>,
}

impl std::fmt::Debug for OwnedNames {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(&self.view(), f)
    }
}

impl OwnedNames {
    /// A borrowed [`Names`] view.
    pub fn view(&self) -> Names<'_> {
        Names {
            labels: self.labels.as_deref(),
            shop: self.shop.as_deref(),
        }
    }
}

/// An output failed.
#[derive(Debug, thiserror::Error)]
pub enum OutputsError {
    /// JSON lines.
    #[error(transparent)]
    Jsonl(#[from] JsonlError),
    /// Annotated frame folder.
    #[error(transparent)]
    Folder(#[from] FolderError),
    /// Drawing or encoding a frame.
    #[error(transparent)]
    Annotate(#[from] AnnotateError),
}

/// The enabled outputs of a running pipeline.
#[derive(Debug)]
pub struct Outputs {
    names: OwnedNames,
    jsonl: Option<JsonlSink>,
    folder: Option<FrameFolderSink>,
    preview: Option<PreviewServer>,
    preview_interval: Duration,
    last_preview: Option<Instant>,
    mqtt: Option<MqttPublisher>,
    annotator: Annotator,
    spare_jpeg: Vec<u8>,
}

impl Outputs {
    /// Outputs with none enabled yet; add them with the `with_*` methods.
    pub fn new(names: OwnedNames) -> Self {
        Self {
            names,
            jsonl: None,
            folder: None,
            preview: None,
            preview_interval: Duration::ZERO,
            last_preview: None,
            mqtt: None,
            annotator: Annotator::default(),
            spare_jpeg: Vec::new(),
        }
    }

    /// The names used by every output.
    pub fn names(&self) -> &OwnedNames {
        &self.names
    }

    /// Enable JSON lines.
    pub fn with_jsonl(mut self, sink: JsonlSink) -> Self {
        self.jsonl = Some(sink);
        self
    }

    /// Enable annotated frames to a folder.
    pub fn with_folder(mut self, sink: FrameFolderSink) -> Self {
        self.folder = Some(sink);
        self
    }

    /// Enable the preview server (started by the caller with the same
    /// names); frames are encoded for it at most `max_fps` times a second
    /// with JPEG `quality`.
    pub fn with_preview(mut self, server: PreviewServer, max_fps: f32, quality: u8) -> Self {
        self.preview = Some(server);
        self.preview_interval = Duration::from_secs_f32(1.0 / max_fps.clamp(0.1, 120.0));
        self.annotator = Annotator::new(quality);
        self
    }

    /// Enable MQTT publishing.
    pub fn with_mqtt(mut self, publisher: MqttPublisher) -> Self {
        self.mqtt = Some(publisher);
        self
    }

    /// The preview server, if enabled.
    pub fn preview(&self) -> Option<&PreviewServer> {
        self.preview.as_ref()
    }

    /// Tell the preview page the camera status (e.g. `Reconnecting`).
    pub fn set_camera_status(&self, status: CameraStatus) {
        if let Some(p) = &self.preview {
            p.set_camera_status(status);
        }
    }

    /// Send one frame (`rgb`: interleaved RGB8 of `result.width x
    /// result.height`) and its result to every enabled output. The frame is
    /// annotated and encoded only if the folder or the preview (at its
    /// frame rate) wants it. An error of one output does not stop the
    /// others; the first error is returned.
    pub fn emit(&mut self, rgb: &[u8], result: &FrameResult) -> Result<(), OutputsError> {
        let mut first_err: Option<OutputsError> = None;
        if let Some(sink) = &mut self.jsonl {
            if let Err(e) = sink.write(result, &self.names.view()) {
                first_err.get_or_insert(e.into());
            }
        }
        if let Some(mqtt) = &mut self.mqtt {
            mqtt.publish(result);
        }
        let now = Instant::now();
        let preview_due = self.preview.is_some()
            && self
                .last_preview
                .is_none_or(|t| now.duration_since(t) >= self.preview_interval);
        if self.folder.is_some() || preview_due {
            match self
                .annotator
                .annotate_jpeg(rgb, result.width, result.height, result)
            {
                Ok(jpeg) => {
                    if let Some(folder) = &mut self.folder {
                        if let Err(e) = folder.write(result.frame, jpeg) {
                            first_err.get_or_insert(e.into());
                        }
                    }
                    if let (true, Some(p)) = (preview_due, &self.preview) {
                        self.annotator.swap_jpeg(&mut self.spare_jpeg);
                        p.publish(&mut self.spare_jpeg, result);
                        self.last_preview = Some(now);
                    }
                }
                Err(e) => {
                    first_err.get_or_insert(e.into());
                }
            }
        }
        first_err.map_or(Ok(()), Err)
    }

    /// Flush and stop every output: JSON lines flushed (and fsynced for a
    /// file), the MQTT queue sent within `mqtt_grace`, the preview stopped.
    pub fn finish(mut self, mqtt_grace: Duration) -> Result<(), OutputsError> {
        if let Some(p) = &self.preview {
            p.set_camera_status(CameraStatus::Stopped);
        }
        if let Some(m) = self.mqtt.take() {
            m.shutdown(mqtt_grace);
        }
        if let Some(p) = self.preview.take() {
            p.shutdown();
        }
        if let Some(mut j) = self.jsonl.take() {
            j.finish()?;
        }
        Ok(())
    }
}
