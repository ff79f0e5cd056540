//! The per-frame work: region of interest, crop/resize/normalize into the
//! engine's reused input tensor, inference, decoding (landmarks back to
//! frame pixels with visibility, top-k categories and attributes), and the
//! top-k shop items. Results go into a caller-owned [`FrameResult`]
//! (fixed capacity), so the steady state allocates nothing in this module
//! (proved by `tests/no_alloc.rs`).

use crate::config::{ResultsConfig, RoiConfig};
use crate::engine::{Engine, RawOutputs};
use crate::result::{FrameResult, LandmarkOut, Match, StageLatency, Tag};
use crate::sources::Frame;
use crate::table::Table;
use deepfashion::preprocess::{crop_resize_normalize, CropBox};
use deepfashion::shop_table::Match as TableMatch;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Errors pairing a model with a table.
#[derive(Debug, thiserror::Error)]
pub enum PairError {
    /// The table was built by another model.
    #[error("table {table} was built for model {table_fingerprint}, but model {model} has fingerprint {model_fingerprint}: rebuild the table with this model")]
    Fingerprint {
        /// Table file.
        table: String,
        /// Its fingerprint.
        table_fingerprint: String,
        /// Model file.
        model: String,
        /// The model's fingerprint.
        model_fingerprint: String,
    },
    /// Embedding dimensions differ.
    #[error(
        "table {table} holds {table_dim}-d vectors, model {model} makes {model_dim}-d embeddings"
    )]
    Dimension {
        /// Table file.
        table: String,
        /// Its dimension.
        table_dim: usize,
        /// Model file.
        model: String,
        /// The model's embedding dimension.
        model_dim: usize,
    },
}

/// Check that `table` was built by the model `engine` runs.
pub fn check_pair(engine: &Engine, table: &Table) -> Result<(), PairError> {
    let info = engine.info();
    if table.fingerprint() != info.fingerprint {
        return Err(PairError::Fingerprint {
            table: table.path().display().to_string(),
            table_fingerprint: table.fingerprint().to_string(),
            model: info.path.display().to_string(),
            model_fingerprint: info.fingerprint.clone(),
        });
    }
    if table.dim() != info.config.embedding_dim {
        return Err(PairError::Dimension {
            table: table.path().display().to_string(),
            table_dim: table.dim(),
            model: info.path.display().to_string(),
            model_dim: info.config.embedding_dim,
        });
    }
    Ok(())
}

/// The region of interest of a `width x height` frame.
pub fn roi_for(roi: &RoiConfig, width: u32, height: u32) -> CropBox {
    match roi.box_px {
        Some([x0, y0, side]) => CropBox { x0, y0, side },
        None => {
            let full = CropBox::centre_square(width, height);
            let side = full.side * roi.centre_scale;
            CropBox {
                x0: (width as f32 - side) * 0.5,
                y0: (height as f32 - side) * 0.5,
                side,
            }
        }
    }
}

/// Keep the `N` (at most `k`) largest scores of `scores` in `out`,
/// descending, ties by lower index first. Allocates nothing.
pub fn top_k<const N: usize>(scores: &[f32], k: usize, out: &mut heapless::Vec<Tag, N>) {
    out.clear();
    let k = k.min(N);
    if k == 0 {
        return;
    }
    for (i, &s) in scores.iter().enumerate() {
        let s = if s.is_nan() { f32::NEG_INFINITY } else { s };
        if out.len() == k && s <= out[k - 1].score {
            continue;
        }
        let tag = Tag {
            index: i as u16,
            score: s,
        };
        if out.len() == k {
            out.pop();
        }
        let pos = out.iter().position(|t| s > t.score).unwrap_or(out.len());
        // Capacity is free after the pop above.
        let _ = out.insert(pos, tag);
    }
}

/// Decode raw outputs into `out` (landmarks in frame pixels, top-k tags).
pub fn decode(raw: &RawOutputs, crop: CropBox, results: &ResultsConfig, out: &mut FrameResult) {
    for ((dst, p), v) in out
        .landmarks
        .iter_mut()
        .zip(raw.landmarks.iter())
        .zip(raw.visibility.iter())
    {
        let (x, y) = crop.to_pixels(p[0], p[1]);
        *dst = LandmarkOut {
            x,
            y,
            visibility: *v,
        };
    }
    top_k(&raw.category, results.top_categories, &mut out.categories);
    top_k(&raw.attributes, results.top_attributes, &mut out.attributes);
}

/// Model, optional table, and the per-frame buffers.
pub struct Pipeline {
    engine: Engine,
    table: Option<Arc<Table>>,
    roi: RoiConfig,
    results: ResultsConfig,
    hits: [TableMatch; crate::result::MAX_MATCHES],
    /// The last `process` call's stage times at full resolution
    /// (preprocess, inference, decode, search, whole call).
    stage_times: [Duration; 5],
}

impl std::fmt::Debug for Pipeline {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pipeline")
            .field("engine", &self.engine)
            .field(
                "table",
                &self.table.as_ref().map(|t| t.path().to_path_buf()),
            )
            .finish_non_exhaustive()
    }
}

impl Pipeline {
    /// A pipeline over a checked model/table pair.
    pub fn new(
        engine: Engine,
        table: Option<Arc<Table>>,
        roi: RoiConfig,
        results: ResultsConfig,
    ) -> Result<Self, PairError> {
        if let Some(t) = &table {
            check_pair(&engine, t)?;
        }
        Ok(Self {
            engine,
            table,
            roi,
            results,
            hits: [TableMatch {
                index: 0,
                score: 0.0,
            }; crate::result::MAX_MATCHES],
            stage_times: [Duration::ZERO; 5],
        })
    }

    /// Replace model and table by a new pair (checked first; on error the
    /// current pair stays).
    pub fn swap(&mut self, engine: Engine, table: Option<Arc<Table>>) -> Result<(), PairError> {
        if let Some(t) = &table {
            check_pair(&engine, t)?;
        }
        self.engine = engine;
        self.table = table;
        Ok(())
    }

    /// The engine.
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// The engine, mutable (benchmarks).
    pub fn engine_mut(&mut self) -> &mut Engine {
        &mut self.engine
    }

    /// The table, if any.
    pub fn table(&self) -> Option<&Arc<Table>> {
        self.table.as_ref()
    }

    /// Crop, resize and normalize `frame` into the engine input; returns
    /// the crop used.
    pub fn preprocess(&mut self, frame: &Frame) -> CropBox {
        let crop = roi_for(&self.roi, frame.width, frame.height);
        let size = self.engine.input_size();
        crop_resize_normalize(
            frame.pixels(),
            frame.width,
            frame.height,
            crop,
            size,
            false,
            self.engine.input_mut(),
        );
        crop
    }

    /// Run the network on the current input.
    pub fn infer(&mut self) -> anyhow::Result<()> {
        self.engine.run()
    }

    /// Decode the last outputs into `out`.
    pub fn decode(&self, crop: CropBox, out: &mut FrameResult) {
        out.roi = crop;
        decode(self.engine.outputs(), crop, &self.results, out);
    }

    /// Search the table with the last embedding into `out.matches`.
    pub fn search(&mut self, out: &mut FrameResult) {
        out.matches.clear();
        let Some(table) = &self.table else {
            return;
        };
        let k = self.results.top_matches.min(self.hits.len());
        let n = table.search_into(&self.engine.outputs().embedding, &mut self.hits[..k]);
        for h in &self.hits[..n.min(k)] {
            let _ = out.matches.push(Match {
                index: h.index,
                score: h.score,
            });
        }
    }

    /// The last [`Self::process`] call's stage times at full resolution:
    /// preprocess, inference, decode, search, and the whole call (the
    /// frame's `latency` has them in whole microseconds; a small model's
    /// decode takes less than one).
    pub fn stage_times(&self) -> [Duration; 5] {
        self.stage_times
    }

    /// The whole frame: preprocess, infer, decode, search, with timings.
    /// `capture_us` is the time the source took to deliver the frame.
    pub fn process(
        &mut self,
        frame: &Frame,
        capture_us: u32,
        out: &mut FrameResult,
    ) -> anyhow::Result<()> {
        let t0 = Instant::now();
        out.frame = frame.sequence;
        out.timestamp_ms = frame.timestamp_ms;
        out.width = frame.width;
        out.height = frame.height;
        let crop = self.preprocess(frame);
        let t1 = Instant::now();
        self.infer()?;
        let t2 = Instant::now();
        self.decode(crop, out);
        let t3 = Instant::now();
        self.search(out);
        let t4 = Instant::now();
        self.stage_times = [t1 - t0, t2 - t1, t3 - t2, t4 - t3, t4 - t0];
        let us = |d: Duration| d.as_micros().min(u32::MAX as u128) as u32;
        let [preprocess, inference, decode, search, whole] = self.stage_times.map(us);
        out.latency = StageLatency {
            capture_us,
            preprocess_us: preprocess,
            inference_us: inference,
            decode_us: decode,
            search_us: search,
            total_us: capture_us.saturating_add(whole),
        };
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn top_k_is_sorted_and_bounded() {
        let scores = [0.1, 0.9, 0.3, f32::NAN, 0.9, 0.5, 0.05];
        let mut out: heapless::Vec<Tag, 5> = heapless::Vec::new();
        top_k(&scores, 3, &mut out);
        let idx: Vec<u16> = out.iter().map(|t| t.index).collect();
        assert_eq!(idx, vec![1, 4, 5]);
        top_k(&scores, 99, &mut out);
        assert_eq!(out.len(), 5);
        assert!(out.windows(2).all(|w| w[0].score >= w[1].score));
        top_k(&scores, 0, &mut out);
        assert!(out.is_empty());
        // Compare with a full sort on pseudo-random data.
        let data: Vec<f32> = (0..1000)
            .map(|i| ((i * 7919) % 1009) as f32 / 1009.0)
            .collect();
        let mut out: heapless::Vec<Tag, 10> = heapless::Vec::new();
        top_k(&data, 10, &mut out);
        let mut sorted: Vec<(usize, f32)> = data.iter().copied().enumerate().collect();
        sorted.sort_by(|a, b| b.1.partial_cmp(&a.1).unwrap().then(a.0.cmp(&b.0)));
        let want: Vec<u16> = sorted[..10].iter().map(|p| p.0 as u16).collect();
        assert_eq!(out.iter().map(|t| t.index).collect::<Vec<_>>(), want);
    }

    #[test]
    fn roi_default_is_centre_square() {
        let r = roi_for(&RoiConfig::default(), 640, 480);
        assert_eq!((r.x0, r.y0, r.side), (80.0, 0.0, 480.0));
        let half = RoiConfig {
            centre_scale: 0.5,
            box_px: None,
        };
        let r = roi_for(&half, 640, 480);
        assert_eq!((r.x0, r.y0, r.side), (200.0, 120.0, 240.0));
        let fixed = RoiConfig {
            centre_scale: 1.0,
            box_px: Some([10.0, 20.0, 100.0]),
        };
        assert_eq!(roi_for(&fixed, 640, 480).side, 100.0);
    }
}
