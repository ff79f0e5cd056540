//! Training and evaluation samples: what one image contributes to a batch
//! (crop, landmarks in [0,1] of the crop, labels), the landmark-consistent
//! augmentation and the batch assembly. Decoding happens on worker threads
//! (see [`crate::loader`]).

use anyhow::{Context, Result};
use deepfashion::annotations::{Dataset, ImageRecord, LandmarkState};
use deepfashion::contract::{
    DEFAULT_CROP_MARGIN, FLIP_PERMUTATION, IMAGENET_MEAN, IMAGENET_STD, NUM_LANDMARKS,
};
use deepfashion::preprocess::{crop_resize_normalize, CropBox};
use rand::Rng;
use std::path::PathBuf;

use crate::config::AugmentConfig;

/// One image with its annotations, ready to be decoded into a batch row.
#[derive(Debug, Clone)]
pub struct Sample {
    /// Image file.
    pub path: PathBuf,
    /// Bounding box in original pixels (the whole image when absent).
    pub bbox: Option<[f32; 4]>,
    /// Category index.
    pub category: Option<i64>,
    /// Attribute targets (1 positive, 0 otherwise).
    pub attributes: Option<Vec<f32>>,
    /// Landmarks in original pixels with their state.
    pub landmarks: Option<[(LandmarkState, f32, f32); NUM_LANDMARKS]>,
    /// Item index (retrieval).
    pub item: Option<i64>,
}

impl Sample {
    /// The sample of a record; `item_index` maps item ids to dense indices.
    pub fn from_record(ds: &Dataset, rec: &ImageRecord, item_index: Option<i64>) -> Self {
        Self {
            path: ds.image_path(rec),
            bbox: rec.bbox,
            category: rec.category.map(|c| c as i64),
            attributes: rec
                .attributes
                .as_ref()
                .map(|a| a.iter().map(|&v| if v > 0 { 1.0 } else { 0.0 }).collect()),
            landmarks: rec
                .landmarks
                .map(|l| std::array::from_fn(|i| (l[i].state, l[i].x, l[i].y))),
            item: item_index,
        }
    }
}

/// The crop a sample is evaluated on: the bbox with the contract margin, or
/// the whole image (centred square) when the record has no bbox.
pub fn eval_crop(bbox: Option<[f32; 4]>, width: u32, height: u32) -> CropBox {
    let b = bbox.unwrap_or([0.0, 0.0, width as f32, height as f32]);
    CropBox::around_bbox(b, DEFAULT_CROP_MARGIN)
}

/// A batch in host memory (planar f32 images and flat targets).
#[derive(Debug, Clone)]
pub struct HostBatch {
    /// Rows in the batch.
    pub n: usize,
    /// Input side.
    pub size: usize,
    /// `[n,3,S,S]` normalized images.
    pub images: Vec<f32>,
    /// `[n,8,2]` landmark targets in [0,1] of the (augmented) crop.
    pub lm_target: Vec<f32>,
    /// `[n,8]` 1 where the landmark loss applies (present, not truncated).
    pub lm_mask: Vec<f32>,
    /// `[n,8]` visibility class (0 visible, 1 occluded, 2 truncated).
    pub vis_target: Vec<i64>,
    /// `[n,8]` 1 where the slot is present.
    pub present: Vec<f32>,
    /// `[n]` category (0 where unlabeled).
    pub category: Vec<i64>,
    /// `[n]` whether the category is labeled.
    pub has_category: Vec<bool>,
    /// `[n,A]` attribute targets.
    pub attributes: Vec<f32>,
    /// `[n]` whether attributes are labeled.
    pub has_attributes: Vec<bool>,
    /// `[n]` item index (0 where none).
    pub item: Vec<i64>,
    /// `[n]` whether an item is known.
    pub has_item: Vec<bool>,
    /// The crop used per row (original pixels), for mapping predictions back.
    pub crops: Vec<CropBox>,
}

/// Decode an image file into RGB8.
pub fn decode(path: &std::path::Path) -> Result<image::RgbImage> {
    let img = image::open(path).with_context(|| format!("decoding {}", path.display()))?;
    Ok(img.to_rgb8())
}

/// Per-row augmentation parameters.
#[derive(Debug, Clone, Copy)]
struct Aug {
    flip: bool,
    scale: f32,
    dx: f32,
    dy: f32,
    brightness: f32,
    contrast: f32,
    gain: [f32; 3],
}

impl Aug {
    fn none() -> Self {
        Self {
            flip: false,
            scale: 1.0,
            dx: 0.0,
            dy: 0.0,
            brightness: 1.0,
            contrast: 1.0,
            gain: [1.0; 3],
        }
    }

    fn sample(cfg: &AugmentConfig, rng: &mut impl Rng) -> Self {
        let mut u = |a: f32| if a > 0.0 { rng.gen_range(-a..=a) } else { 0.0 };
        let scale = 1.0 + u(cfg.scale);
        let dx = u(cfg.shift);
        let dy = u(cfg.shift);
        let brightness = 1.0 + u(cfg.brightness);
        let contrast = 1.0 + u(cfg.brightness);
        let gain = [1.0 + u(cfg.color), 1.0 + u(cfg.color), 1.0 + u(cfg.color)];
        let flip = cfg.flip && rng.gen_bool(0.5);
        Self {
            flip,
            scale,
            dx,
            dy,
            brightness,
            contrast,
            gain,
        }
    }
}

impl HostBatch {
    fn new(n: usize, size: usize, num_attributes: usize) -> Self {
        Self {
            n,
            size,
            images: vec![0.0; n * 3 * size * size],
            lm_target: vec![0.0; n * NUM_LANDMARKS * 2],
            lm_mask: vec![0.0; n * NUM_LANDMARKS],
            vis_target: vec![0; n * NUM_LANDMARKS],
            present: vec![0.0; n * NUM_LANDMARKS],
            category: vec![0; n],
            has_category: vec![false; n],
            attributes: vec![0.0; n * num_attributes],
            has_attributes: vec![false; n],
            item: vec![0; n],
            has_item: vec![false; n],
            crops: vec![
                CropBox {
                    x0: 0.0,
                    y0: 0.0,
                    side: 1.0
                };
                n
            ],
        }
    }
}

/// Build a batch from samples, decoding in parallel on the current rayon
/// pool. With `augment`, row `i` uses an RNG seeded from `(seed, i)`, so a
/// batch is the same whatever the thread count.
pub fn build_batch(
    samples: &[&Sample],
    size: usize,
    num_attributes: usize,
    augment: Option<(&AugmentConfig, u64)>,
) -> Result<HostBatch> {
    use rand::SeedableRng;
    use rayon::prelude::*;
    let n = samples.len();
    let mut b = HostBatch::new(n, size, num_attributes);
    let plane = 3 * size * size;
    let rows: Vec<Result<(Vec<f32>, CropBox, Aug)>> = samples
        .par_iter()
        .enumerate()
        .map(|(i, s)| {
            let aug = match augment {
                Some((cfg, seed)) => {
                    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(
                        seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ (i as u64),
                    );
                    Aug::sample(cfg, &mut rng)
                }
                None => Aug::none(),
            };
            let img = decode(&s.path)?;
            let (w, h) = img.dimensions();
            let base = eval_crop(s.bbox, w, h);
            let side = base.side * aug.scale;
            let cx = base.x0 + base.side * 0.5 + aug.dx * base.side;
            let cy = base.y0 + base.side * 0.5 + aug.dy * base.side;
            let crop = CropBox {
                x0: cx - side * 0.5,
                y0: cy - side * 0.5,
                side,
            };
            let mut out = vec![0.0f32; plane];
            crop_resize_normalize(img.as_raw(), w, h, crop, size, aug.flip, &mut out);
            photometric(&mut out, size, &aug);
            Ok((out, crop, aug))
        })
        .collect();
    for (i, (row, s)) in rows.into_iter().zip(samples).enumerate() {
        let (pixels, crop, aug) = row?;
        b.images[i * plane..(i + 1) * plane].copy_from_slice(&pixels);
        b.crops[i] = crop;
        if let Some(lms) = &s.landmarks {
            for (slot, &(state, x, y)) in lms.iter().enumerate() {
                let (mut u, v) = crop.to_unit(x, y);
                let mut dst = slot;
                if aug.flip {
                    u = 1.0 - u;
                    dst = FLIP_PERMUTATION[slot];
                }
                let k = i * NUM_LANDMARKS + dst;
                b.lm_target[2 * k] = u;
                b.lm_target[2 * k + 1] = v;
                let (present, loss, cls) = match state {
                    LandmarkState::Absent => (0.0, 0.0, 0),
                    LandmarkState::Visible => (1.0, 1.0, 0),
                    LandmarkState::Occluded => (1.0, 1.0, 1),
                    LandmarkState::Truncated => (1.0, 0.0, 2),
                };
                b.present[k] = present;
                b.lm_mask[k] = loss;
                b.vis_target[k] = cls;
            }
        }
        if let Some(c) = s.category {
            b.category[i] = c;
            b.has_category[i] = true;
        }
        if let Some(a) = &s.attributes {
            if a.len() == num_attributes {
                b.attributes[i * num_attributes..(i + 1) * num_attributes].copy_from_slice(a);
                b.has_attributes[i] = true;
            }
        }
        if let Some(it) = s.item {
            b.item[i] = it;
            b.has_item[i] = true;
        }
    }
    Ok(b)
}

/// Brightness, contrast and per-channel gain, applied in normalized space
/// (`x = (p - m) / s`, so `p * g` is `g * x + (g - 1) * m / s`).
fn photometric(out: &mut [f32], size: usize, aug: &Aug) {
    if aug.brightness == 1.0 && aug.contrast == 1.0 && aug.gain == [1.0; 3] {
        return;
    }
    let plane = size * size;
    for c in 0..3 {
        let g = aug.brightness * aug.gain[c];
        let offset = (g - 1.0) * IMAGENET_MEAN[c] / IMAGENET_STD[c];
        let ch = &mut out[c * plane..(c + 1) * plane];
        let mean = ch.iter().sum::<f32>() / plane as f32;
        for v in ch.iter_mut() {
            let x = g * *v + offset;
            let m = g * mean + offset;
            *v = m + (x - m) * aug.contrast;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write_image(dir: &std::path::Path) -> PathBuf {
        // 40x20 image: left half red, right half blue.
        let img = image::RgbImage::from_fn(40, 20, |x, _| {
            if x < 20 {
                image::Rgb([255, 0, 0])
            } else {
                image::Rgb([0, 0, 255])
            }
        });
        let p = dir.join("a.png");
        img.save(&p).unwrap();
        p
    }

    #[test]
    fn flip_mirrors_landmarks_and_swaps_slots() {
        let dir = tempfile::tempdir().unwrap();
        let path = write_image(dir.path());
        let mut lms = [(LandmarkState::Absent, 0.0, 0.0); NUM_LANDMARKS];
        lms[0] = (LandmarkState::Visible, 10.0, 10.0); // left collar on the red side
        lms[1] = (LandmarkState::Truncated, 30.0, 10.0);
        let s = Sample {
            path,
            bbox: Some([0.0, 0.0, 40.0, 20.0]),
            category: Some(3),
            attributes: Some(vec![1.0, 0.0]),
            landmarks: Some(lms),
            item: None,
        };
        let plain = build_batch(&[&s], 16, 2, None).unwrap();
        let cfg = AugmentConfig {
            flip: true,
            scale: 0.0,
            shift: 0.0,
            brightness: 0.0,
            color: 0.0,
        };
        // Find a seed that flips.
        let flipped = (0..64)
            .map(|seed| build_batch(&[&s], 16, 2, Some((&cfg, seed))).unwrap())
            .find(|b| b.images != plain.images)
            .expect("some seed flips");
        // Slot 0 moved to slot 1 with x mirrored; its loss mask follows it.
        assert!((flipped.lm_target[2] - (1.0 - plain.lm_target[0])).abs() < 1e-6);
        assert!((flipped.lm_target[3] - plain.lm_target[1]).abs() < 1e-6);
        assert_eq!(flipped.lm_mask[1], 1.0);
        assert_eq!(flipped.lm_mask[0], 0.0);
        assert_eq!(flipped.vis_target[0], 2);
        assert_eq!(plain.vis_target[1], 2);
        // The pixel under the landmark stays red after the flip.
        let px = |b: &HostBatch, slot: usize| {
            let x = (b.lm_target[2 * slot] * 16.0) as usize;
            let y = (b.lm_target[2 * slot + 1] * 16.0) as usize;
            b.images[y * 16 + x] // red channel plane
        };
        assert!(px(&plain, 0) > 1.0);
        assert!(px(&flipped, 1) > 1.0);
        assert_eq!(plain.category, vec![3]);
        assert_eq!(plain.attributes, vec![1.0, 0.0]);
        // Same seed, same batch.
        let a = build_batch(&[&s], 16, 2, Some((&AugmentConfig::default(), 9))).unwrap();
        let b = build_batch(&[&s], 16, 2, Some((&AugmentConfig::default(), 9))).unwrap();
        assert_eq!(a.images, b.images);
        assert_eq!(a.lm_target, b.lm_target);
    }
}
