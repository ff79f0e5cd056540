//! The frame loop of `fashion-runtime tag`: frames from a source through the
//! pipeline into the outputs, with the faults handled where they happen:
//! corrupt frames counted and skipped, a failed inference counted, SIGTERM
//! ending the loop cleanly (outputs flushed), SIGHUP or a replaced model or
//! table file reloading the pair, which is swapped in only once it is
//! checked.
//!
//! The outputs are reached through [`FrameSink`], so this loop knows nothing
//! about files, HTTP or MQTT.

use crate::config::{ResultsConfig, RoiConfig};
use crate::engine::{Engine, EngineOptions};
use crate::pipeline::{check_pair, Pipeline};
use crate::result::{FrameResult, Names, ShopNames};
use crate::signals::{FileWatch, Signals};
use crate::sources::reopen::{set_state, SharedSourceState, SourceState};
use crate::sources::{Frame, FrameSource, FrameStatus};
use crate::stats::{Stats, StatsSnapshot};
use crate::table::Table;
use anyhow::Context;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Where results go (implemented over [`crate::outputs`] by the binary,
/// and by collectors in tests).
pub trait FrameSink {
    /// One processed frame.
    fn frame(
        &mut self,
        frame: &Frame,
        result: &FrameResult,
        names: &Names<'_>,
    ) -> anyhow::Result<()>;
    /// The source changed condition (running, reconnecting, ended).
    fn source_state(&mut self, _state: &SourceState) {}
    /// A stats line was produced.
    fn stats(&mut self, _stats: &StatsSnapshot) {}
    /// The loop ends: flush everything.
    fn finish(&mut self) -> anyhow::Result<()> {
        Ok(())
    }
}

/// What the loop needs besides the source and the sink.
#[derive(Debug, Clone)]
pub struct TagOptions {
    /// Model file.
    pub model: PathBuf,
    /// Table file (optional).
    pub table: Option<PathBuf>,
    /// Engine knobs.
    pub engine: EngineOptions,
    /// Region of interest.
    pub roi: RoiConfig,
    /// Results per frame.
    pub results: ResultsConfig,
    /// Stop after this many processed frames.
    pub frames: Option<u64>,
    /// Reload when the model or table file changes.
    pub watch_files: bool,
    /// Seconds between stats lines.
    pub stats_interval: Duration,
}

/// How the loop ended.
#[derive(Debug, Clone, PartialEq)]
pub struct TagSummary {
    /// Frames processed.
    pub frames: u64,
    /// Corrupt frames skipped.
    pub corrupt: u64,
    /// Frames dropped by the camera.
    pub dropped: u64,
    /// Frames whose inference failed.
    pub failed: u64,
    /// Successful reloads.
    pub reloads: u64,
    /// Whether SIGTERM/SIGINT ended it.
    pub terminated: bool,
}

/// Load a model and (optionally) a table and check they belong together.
pub fn load_pair(
    model: &Path,
    table: Option<&Path>,
    engine: EngineOptions,
) -> anyhow::Result<(Engine, Option<Arc<Table>>)> {
    let engine = Engine::load(model, engine)?;
    let table = match table {
        Some(t) => {
            let t = Table::open(t)?;
            check_pair(&engine, &t)?;
            Some(Arc::new(t))
        }
        None => None,
    };
    Ok((engine, table))
}

/// Load the model and table of `opts`, then [`run_with`].
pub fn run(
    opts: &TagOptions,
    source: &mut dyn FrameSource,
    source_state: &SharedSourceState,
    signals: &Signals,
    sink: &mut dyn FrameSink,
) -> anyhow::Result<TagSummary> {
    let (engine, table) = load_pair(&opts.model, opts.table.as_deref(), opts.engine)?;
    run_with(opts, engine, table, source, source_state, signals, sink)
}

fn state_kind(s: &SourceState) -> u8 {
    match s {
        SourceState::Starting => 0,
        SourceState::Running { .. } => 1,
        SourceState::Reconnecting { .. } => 2,
        SourceState::Ended => 3,
    }
}

/// Run the loop over an already loaded pair until the source ends,
/// `frames` are done, or SIGTERM.
pub fn run_with(
    opts: &TagOptions,
    engine: Engine,
    table: Option<Arc<Table>>,
    source: &mut dyn FrameSource,
    source_state: &SharedSourceState,
    signals: &Signals,
    sink: &mut dyn FrameSink,
) -> anyhow::Result<TagSummary> {
    let mut pipeline = Pipeline::new(engine, table, opts.roi, opts.results)?;
    tracing::info!(source = %source.describe(), "tagging");
    let mut watch = opts.watch_files.then(|| {
        FileWatch::new(std::iter::once(opts.model.as_path()).chain(opts.table.as_deref()))
    });
    let mut last_watch = Instant::now();
    let mut stats = Stats::new(opts.stats_interval);
    let mut frame = Frame::default();
    let mut result = FrameResult::default();
    let mut terminated = false;
    let mut reported: Option<u8> = None;
    let report = |sink: &mut dyn FrameSink, reported: &mut Option<u8>| {
        let Ok(state) = source_state.lock().map(|s| s.clone()) else {
            return;
        };
        if *reported != Some(state_kind(&state)) {
            *reported = Some(state_kind(&state));
            sink.source_state(&state);
        }
    };
    loop {
        if signals.should_stop() {
            tracing::info!("termination signal: flushing outputs");
            terminated = true;
            break;
        }
        let mut reload = signals.take_reload();
        if let Some(w) = watch.as_mut() {
            if last_watch.elapsed() >= Duration::from_secs(1) {
                last_watch = Instant::now();
                reload |= w.changed();
            }
        }
        if reload {
            match load_pair(&opts.model, opts.table.as_deref(), opts.engine)
                .and_then(|(e, t)| pipeline.swap(e, t).map_err(anyhow::Error::from))
            {
                Ok(()) => {
                    stats.reloads += 1;
                    tracing::info!(model = %opts.model.display(), "model and table reloaded");
                }
                Err(e) => {
                    tracing::error!(error = %format!("{e:#}"), "reload refused, keeping the current model and table")
                }
            }
        }
        if opts.frames.is_some_and(|n| stats.frames >= n) {
            break;
        }
        let t0 = Instant::now();
        match source.next_frame(&mut frame).context("reading frames")? {
            FrameStatus::Frame => {}
            FrameStatus::FrameAfterDrop(n) => stats.dropped += n,
            FrameStatus::Corrupt(why) => {
                stats.corrupt += 1;
                tracing::warn!(reason = %why, corrupt = stats.corrupt, "corrupt frame skipped");
                continue;
            }
            FrameStatus::Reconnecting(why) => {
                tracing::debug!(reason = %why, "source reconnecting");
                report(sink, &mut reported);
                continue;
            }
            FrameStatus::End => {
                set_state(source_state, SourceState::Ended);
                report(sink, &mut reported);
                break;
            }
        }
        if reported != Some(1) {
            let running = matches!(
                *source_state
                    .lock()
                    .map_err(|_| anyhow::anyhow!("state lock"))?,
                SourceState::Running { .. }
            );
            if !running {
                set_state(
                    source_state,
                    SourceState::Running {
                        description: source.describe(),
                    },
                );
            }
            report(sink, &mut reported);
        }
        if frame.width == 0 || frame.height == 0 {
            stats.corrupt += 1;
            continue;
        }
        let capture_us = t0.elapsed().as_micros().min(u32::MAX as u128) as u32;
        if let Err(e) = pipeline.process(&frame, capture_us, &mut result) {
            stats.failed += 1;
            tracing::error!(error = %format!("{e:#}"), "inference failed, frame skipped");
            continue;
        }
        stats.record(&result.latency);
        let shop = pipeline.table().map(|t| t.as_ref() as &dyn ShopNames);
        let names = Names::new(&pipeline.engine().info().labels, shop);
        sink.frame(&frame, &result, &names)?;
        if let Some(s) = stats.maybe_log() {
            sink.stats(&s);
        }
    }
    let last = stats.snapshot();
    stats.log(&last);
    sink.stats(&last);
    sink.finish()?;
    Ok(TagSummary {
        frames: stats.frames,
        corrupt: stats.corrupt,
        dropped: stats.dropped,
        failed: stats.failed,
        reloads: stats.reloads,
        terminated,
    })
}
