//! Latency measurement per stage (`fashion-runtime bench`) and the choice
//! of the fastest way to run a model on this device (`bench --choose`):
//! graph form (fp32 vs int8 file), thread count, and tract's
//! `TRACT_DISABLE_DIRECT_SPATIAL`, each measured, the winner written into
//! the device config.
//!
//! Frames are the demo scene at 640x480, decoded once and reused, so the
//! numbers are preprocess + inference + decode + search (capture depends on
//! the camera and is reported by `tag`'s stats line).

use crate::available_cores;
use crate::config::{ResultsConfig, RoiConfig};
use crate::engine::EngineOptions;
use crate::model_info::GraphForm;
use crate::pipeline::Pipeline;
use crate::result::FrameResult;
use crate::sources::{demo, Frame};
use crate::tag::load_pair;
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// Latency distribution of one stage, microseconds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct StageStats {
    /// Mean.
    pub mean_us: f64,
    /// Median.
    pub p50_us: f64,
    /// 90th percentile.
    pub p90_us: f64,
}

impl StageStats {
    /// From samples (microseconds, fractional: the pipeline's stage times
    /// are read at full resolution, as a small model's decode takes well
    /// under 1 us).
    pub fn from_samples(samples: &mut [f64]) -> Self {
        if samples.is_empty() {
            return Self {
                mean_us: 0.0,
                p50_us: 0.0,
                p90_us: 0.0,
            };
        }
        samples.sort_unstable_by(f64::total_cmp);
        let n = samples.len();
        let q = |p: f64| samples[((n as f64 - 1.0) * p).round() as usize];
        Self {
            mean_us: samples.iter().sum::<f64>() / n as f64,
            p50_us: q(0.5),
            p90_us: q(0.9),
        }
    }
}

/// One measured configuration.
#[derive(Debug, Clone, Serialize)]
pub struct BenchReport {
    /// Model file.
    pub model: PathBuf,
    /// Its graph form.
    pub form: GraphForm,
    /// Model config name.
    pub config: String,
    /// Threads.
    pub threads: usize,
    /// `TRACT_DISABLE_DIRECT_SPATIAL`.
    pub disable_direct_spatial: bool,
    /// Timed frames.
    pub frames: usize,
    /// Model load + optimize time, milliseconds.
    pub load_ms: f64,
    /// Crop/resize/normalize.
    pub preprocess: StageStats,
    /// Network.
    pub inference: StageStats,
    /// Output decoding.
    pub decode: StageStats,
    /// Table search (zeros without a table).
    pub search: StageStats,
    /// Whole frame (without capture).
    pub total: StageStats,
    /// Frames per second from the mean total.
    pub fps: f64,
    /// Share of the frame time spent outside inference.
    pub outside_inference_share: f64,
    /// Items in the table (0 without).
    pub table_items: usize,
    /// Peak resident memory of the process so far, kB (Linux).
    pub peak_rss_kb: Option<u64>,
}

/// Peak resident set size of this process (`VmHWM`), kB.
pub fn peak_rss_kb() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    s.lines()
        .find(|l| l.starts_with("VmHWM:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// Measure `frames` frames (after `warmup`) through a pipeline.
pub fn measure(
    pipeline: &mut Pipeline,
    frames: usize,
    warmup: usize,
) -> anyhow::Result<[StageStats; 5]> {
    let mut frame = Frame::default();
    demo::draw(&mut frame, 640, 480, 7);
    frame.sequence = 1;
    let mut result = FrameResult::default();
    for _ in 0..warmup {
        pipeline.process(&frame, 0, &mut result)?;
    }
    let mut samples: [Vec<f64>; 5] = Default::default();
    for s in samples.iter_mut() {
        s.reserve(frames);
    }
    for _ in 0..frames {
        pipeline.process(&frame, 0, &mut result)?;
        for (s, d) in samples.iter_mut().zip(pipeline.stage_times()) {
            s.push(d.as_nanos() as f64 / 1e3);
        }
    }
    Ok(samples.map(|mut s| StageStats::from_samples(&mut s)))
}

/// Load a model (and table) with `options` and measure it.
pub fn bench_model(
    model: &Path,
    table: Option<&Path>,
    options: EngineOptions,
    frames: usize,
) -> anyhow::Result<BenchReport> {
    let t = Instant::now();
    let (engine, table) = load_pair(model, table, options)?;
    let load_ms = t.elapsed().as_secs_f64() * 1e3;
    let table_items = table.as_ref().map(|t| t.len()).unwrap_or(0);
    let results = ResultsConfig {
        top_matches: crate::result::MAX_MATCHES,
        ..Default::default()
    };
    let mut pipeline = Pipeline::new(engine, table, RoiConfig::default(), results)?;
    let warmup = (frames / 10).clamp(1, 5);
    let [preprocess, inference, decode, search, total] = measure(&mut pipeline, frames, warmup)?;
    let info = pipeline.engine().info();
    Ok(BenchReport {
        model: model.to_path_buf(),
        form: info.graph_form,
        config: info.config.name.clone(),
        threads: options.threads,
        disable_direct_spatial: options.disable_direct_spatial,
        frames,
        load_ms,
        preprocess,
        inference,
        decode,
        search,
        total,
        fps: if total.mean_us > 0.0 {
            1e6 / total.mean_us
        } else {
            0.0
        },
        outside_inference_share: if total.mean_us > 0.0 {
            ((total.mean_us - inference.mean_us) / total.mean_us).max(0.0)
        } else {
            0.0
        },
        table_items,
        peak_rss_kb: peak_rss_kb(),
    })
}

/// One configuration to try.
#[derive(Debug, Clone, PartialEq)]
pub struct Candidate {
    /// Model file.
    pub model: PathBuf,
    /// Engine knobs.
    pub options: EngineOptions,
}

/// The other graph forms of a model found next to it: for `edge.onnx`,
/// `edge.int8.onnx` / `edge-int8.onnx` / `edge_int8.onnx`; for those, the
/// plain `edge.onnx`. Only files that exist.
pub fn sibling_models(model: &Path) -> Vec<PathBuf> {
    let Some(name) = model.file_name().and_then(|n| n.to_str()) else {
        return vec![];
    };
    let Some(stem) = name.strip_suffix(".onnx") else {
        return vec![];
    };
    let dir = model.parent().unwrap_or(Path::new(""));
    let mut names = vec![];
    let base = ["int8", "fp32", "f32"].iter().find_map(|tag| {
        [".", "-", "_"]
            .iter()
            .find_map(|sep| stem.strip_suffix(&format!("{sep}{tag}")))
    });
    match base {
        Some(b) => {
            names.push(format!("{b}.onnx"));
            for sep in [".", "-", "_"] {
                for tag in ["int8", "fp32", "f32"] {
                    names.push(format!("{b}{sep}{tag}.onnx"));
                }
            }
        }
        None => {
            for sep in [".", "-", "_"] {
                names.push(format!("{stem}{sep}int8.onnx"));
            }
        }
    }
    let mut out: Vec<PathBuf> = names
        .into_iter()
        .filter(|n| n != name)
        .map(|n| dir.join(n))
        .filter(|p| p.is_file())
        .collect();
    out.dedup();
    out
}

/// Every combination of models x threads (1..=max_threads) x
/// direct-spatial on/off.
pub fn candidates(models: &[PathBuf], max_threads: usize) -> Vec<Candidate> {
    let mut out = vec![];
    for m in models {
        for threads in 1..=max_threads.max(1) {
            for disable_direct_spatial in [false, true] {
                out.push(Candidate {
                    model: m.clone(),
                    options: EngineOptions {
                        threads,
                        disable_direct_spatial,
                    },
                });
            }
        }
    }
    out
}

/// Measure every candidate; returns the reports (failed ones are logged and
/// left out) and the index of the fastest by mean total latency.
pub fn choose(
    cands: &[Candidate],
    table: Option<&Path>,
    frames: usize,
) -> anyhow::Result<(Vec<BenchReport>, usize)> {
    let mut reports = vec![];
    for c in cands {
        match bench_model(&c.model, table, c.options, frames) {
            Ok(r) => {
                tracing::info!(
                    model = %c.model.display(),
                    threads = c.options.threads,
                    disable_direct_spatial = c.options.disable_direct_spatial,
                    total_ms = format_args!("{:.2}", r.total.mean_us / 1e3),
                    "candidate measured"
                );
                reports.push(r);
            }
            Err(e) => {
                tracing::warn!(model = %c.model.display(), error = %format!("{e:#}"), "candidate failed")
            }
        }
    }
    let best = reports
        .iter()
        .enumerate()
        .min_by(|a, b| a.1.total.mean_us.total_cmp(&b.1.total.mean_us))
        .map(|(i, _)| i)
        .ok_or_else(|| anyhow::anyhow!("no candidate could be measured"))?;
    Ok((reports, best))
}

/// Threads to try by default: 1..=cores.
pub fn default_max_threads() -> usize {
    available_cores()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stage_stats() {
        let mut s = vec![5.0, 1.0, 3.0, 2.0, 4.0, 100.0, 6.0, 7.0, 8.0, 9.0];
        let st = StageStats::from_samples(&mut s);
        assert_eq!(st.p50_us, 6.0);
        assert_eq!(st.p90_us, 9.0);
        assert!((st.mean_us - 14.5).abs() < 1e-9);
        assert_eq!(StageStats::from_samples(&mut []).mean_us, 0.0);
    }

    #[test]
    fn siblings_and_candidates() {
        let dir = tempfile::tempdir().unwrap();
        for n in ["edge.onnx", "edge.int8.onnx", "other.onnx"] {
            std::fs::write(dir.path().join(n), b"x").unwrap();
        }
        assert_eq!(
            sibling_models(&dir.path().join("edge.onnx")),
            vec![dir.path().join("edge.int8.onnx")]
        );
        assert_eq!(
            sibling_models(&dir.path().join("edge.int8.onnx")),
            vec![dir.path().join("edge.onnx")]
        );
        assert!(sibling_models(&dir.path().join("other.onnx")).is_empty());
        let c = candidates(
            &[
                dir.path().join("edge.onnx"),
                dir.path().join("edge.int8.onnx"),
            ],
            2,
        );
        assert_eq!(c.len(), 8);
    }
}
