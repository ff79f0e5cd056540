//! A deterministic synthetic DeepFashion in the released layout and file
//! formats (DESIGN.md sections 5 and 6), so that every reader, trainer and
//! test can run offline.
//!
//! [`generate`] writes, under the output folder, the four released benchmark
//! folders by their released names:
//!
//! ```text
//! Category and Attribute Prediction Benchmark/
//!   Anno_coarse/ list_category_cloth.txt list_category_img.txt list_attr_cloth.txt
//!                list_attr_img.txt list_bbox.txt list_landmarks.txt
//!   Anno_fine/   list_category_cloth.txt list_attr_cloth.txt train.txt val.txt test.txt
//!                {split}_attr.txt {split}_cate.txt {split}_bbox.txt {split}_landmarks.txt
//!   Eval/list_eval_partition.txt
//!   Img/img/<Title_Category>/img_00000001.jpg
//! In-shop Clothes Retrieval Benchmark/
//!   Anno/ list_bbox_inshop.txt list_landmarks_inshop.txt list_item_inshop.txt
//!   Eval/list_eval_partition.txt
//!   Img/img/WOMEN/Dresses/id_00000002/02_1_front.jpg
//! Consumer-to-shop Clothes Retrieval Benchmark/
//!   Anno/ list_bbox_consumer2shop.txt list_landmarks_consumer2shop.txt
//!         list_item_consumer2shop.txt
//!   Eval/list_eval_partition.txt
//!   Img/img/CLOTHING/T_Shirt/id_00000001/comsumer_01.jpg, shop_01.jpg
//! Fashion Landmark Detection Benchmark/
//!   Anno/ list_landmarks.txt list_bbox.txt
//!   Eval/list_eval_partition.txt
//!   Img/img/img_00000001.jpg
//! ```
//!
//! Image names in the files start with `img/` and are relative to the
//! benchmark's `Img/` folder. All images are square JPEGs (quality 90).
//!
//! The quirks of the release are reproduced: a count line then a column-name
//! line (the item lists have no column-name line, the fine split files have
//! neither), columns padded with runs of spaces, zero-padded coordinates,
//! trailing spaces on some rows, attribute names with spaces, coarse
//! attribute values 1 / -1 / 0 (unknown), fine values 0/1, C&A landmark rows
//! without the variation column while the other landmark files have it,
//! landmark rows of 6 (upper), 4 (lower) or 8 (full) `vis x y` triples in
//! the canonical slot order, and the dataset's own spelling `comsumer`.
//!
//! Content: procedurally drawn garments of 12 kinds (Tee, Tank, Sweater,
//! Hoodie, Blazer, Jeans, Shorts, Skirt, Leggings, Dress, Jumpsuit, Romper)
//! whose category follows from shape; attributes visible in the pixels
//! (texture, fabric look, neckline, sleeves, length, fit, colour, pockets,
//! buttons, belt, hood); landmarks at their geometric positions, occluded
//! (1) by objects drawn over them or truncated (2) by the frame; cluttered
//! backgrounds; several views per In-shop item (front, side, back, zoomed
//! out) and degraded consumer photos (blur, noise, colour cast, clutter).
//! All 50 real categories are listed; only the 12 drawn kinds have images.
//!
//! Sizes: `images` is the number of Category & Attribute images (the fine
//! annotations cover the same images); In-shop and consumer-to-shop get
//! about `images / 2` images each and the landmark benchmark `images / 4`.
//!
//! Determinism: everything is decided from the seed; each image has its own
//! random stream, so the output is byte-identical for a seed whatever the
//! thread count.
//!
//! Atomicity: the dataset is generated into a hidden sibling folder
//! (`.<name>.partial`) and renamed into place at the end; an existing
//! non-empty output folder is refused unless [`SynthOptions::overwrite`].

mod draw;
mod garment;
mod labels;
mod plan;
mod scene;
mod shape;
mod writer;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use rayon::prelude::*;

pub use labels::{CATEGORIES, COARSE_ATTRIBUTES, COARSE_GROUPS, FINE_ATTRIBUTES};
pub use plan::BENCHMARKS;

/// Options of [`generate`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SynthOptions {
    /// Seed of everything.
    pub seed: u64,
    /// Number of Category & Attribute images (at least 10); the other
    /// benchmarks are sized in proportion.
    pub images: usize,
    /// Image side in pixels (48..=999).
    pub size: u32,
    /// Replace an existing non-empty output folder.
    pub overwrite: bool,
}

impl Default for SynthOptions {
    fn default() -> Self {
        Self {
            seed: 0,
            images: 2000,
            size: 160,
            overwrite: false,
        }
    }
}

/// What [`generate`] wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SynthSummary {
    /// The output folder.
    pub out: PathBuf,
    /// Category & Attribute images (also the fine annotations' images).
    pub attr_images: usize,
    /// C&A images per split `[train, val, test]`.
    pub attr_splits: [usize; 3],
    /// In-shop images.
    pub inshop_images: usize,
    /// In-shop items.
    pub inshop_items: usize,
    /// In-shop images per status `[train, query, gallery]`.
    pub inshop_status: [usize; 3],
    /// Consumer-to-shop images (shop and consumer).
    pub c2s_images: usize,
    /// Consumer-to-shop items.
    pub c2s_items: usize,
    /// Consumer-to-shop (consumer, shop) pairs in the partition file.
    pub c2s_pairs: usize,
    /// Landmark-benchmark images.
    pub landmark_images: usize,
    /// All images written.
    pub total_images: usize,
    /// Bytes of JPEG written.
    pub jpeg_bytes: u64,
}

impl std::fmt::Display for SynthSummary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "synthetic DeepFashion in {}", self.out.display())?;
        let [tr, va, te] = self.attr_splits;
        writeln!(
            f,
            "  {}: {} images (train {tr}, val {va}, test {te}), coarse + fine annotations",
            BENCHMARKS[0], self.attr_images
        )?;
        let [tr, q, g] = self.inshop_status;
        writeln!(
            f,
            "  {}: {} images of {} items (train {tr}, query {q}, gallery {g})",
            BENCHMARKS[1], self.inshop_images, self.inshop_items
        )?;
        writeln!(
            f,
            "  {}: {} images of {} items, {} consumer-shop pairs",
            BENCHMARKS[2], self.c2s_images, self.c2s_items, self.c2s_pairs
        )?;
        writeln!(f, "  {}: {} images", BENCHMARKS[3], self.landmark_images)?;
        write!(
            f,
            "  total {} images, {:.1} MiB of JPEG",
            self.total_images,
            self.jpeg_bytes as f64 / (1024.0 * 1024.0)
        )
    }
}

/// Errors of [`generate`].
#[derive(Debug, thiserror::Error)]
pub enum SynthError {
    /// An option is out of range.
    #[error("invalid synth option `{field}`: {reason}")]
    InvalidOption {
        /// The option.
        field: &'static str,
        /// Why.
        reason: String,
    },
    /// The output folder exists and is not empty.
    #[error("output folder {0} exists and is not empty (pass --force to replace it)")]
    Exists(PathBuf),
    /// A file-system operation failed.
    #[error("{path}: {source}")]
    Io {
        /// The path involved.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// JPEG encoding failed.
    #[error("encoding {path}: {message}")]
    Encode {
        /// The image path.
        path: PathBuf,
        /// The encoder's message.
        message: String,
    },
}

pub(crate) fn io_err(path: &Path, source: std::io::Error) -> SynthError {
    SynthError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// JPEG quality of the written images.
pub const JPEG_QUALITY: u8 = 90;

/// Generate the synthetic dataset into `out` (see the module docs for the
/// layout). `progress`, if given, is called with `(done, total)` images from
/// the rendering threads.
pub fn generate(
    out: &Path,
    opts: &SynthOptions,
    progress: Option<&(dyn Fn(usize, usize) + Sync)>,
) -> Result<SynthSummary, SynthError> {
    if opts.images < 10 {
        return Err(SynthError::InvalidOption {
            field: "images",
            reason: format!(
                "{} is too few; at least 10 so that every split is non-empty",
                opts.images
            ),
        });
    }
    if !(48..=999).contains(&opts.size) {
        return Err(SynthError::InvalidOption {
            field: "size",
            reason: format!("{} px is outside 48..=999", opts.size),
        });
    }
    let exists = match std::fs::read_dir(out) {
        Ok(mut entries) => entries.next().is_some(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => false,
        Err(e) => return Err(io_err(out, e)),
    };
    if exists && !opts.overwrite {
        return Err(SynthError::Exists(out.to_path_buf()));
    }
    let file_name = out
        .file_name()
        .ok_or_else(|| SynthError::InvalidOption {
            field: "out",
            reason: format!("{} has no folder name", out.display()),
        })?
        .to_string_lossy()
        .into_owned();
    let parent = out
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(parent).map_err(|e| io_err(parent, e))?;
    let partial = parent.join(format!(".{file_name}.partial"));
    if partial.exists() {
        std::fs::remove_dir_all(&partial).map_err(|e| io_err(&partial, e))?;
    }

    let plan = plan::plan(opts.seed, opts.images);
    tracing::debug!(images = plan.jobs.len(), "planned synthetic dataset");
    let img_path = |job: usize| -> PathBuf {
        partial
            .join(BENCHMARKS[plan.bench_of_job[job]])
            .join("Img")
            .join(&plan.jobs[job].name)
    };
    let mut dirs: Vec<PathBuf> = (0..plan.jobs.len())
        .filter_map(|j| img_path(j).parent().map(Path::to_path_buf))
        .collect();
    dirs.sort();
    dirs.dedup();
    for d in &dirs {
        std::fs::create_dir_all(d).map_err(|e| io_err(d, e))?;
    }

    let total = plan.jobs.len();
    let done = AtomicUsize::new(0);
    let results: Vec<(writer::JobOutput, u64)> = (0..total)
        .into_par_iter()
        .map(|j| {
            let job = &plan.jobs[j];
            let r = scene::render(&plan.garments[job.garment], &job.view, opts.size, job.seed);
            let path = img_path(j);
            let mut bytes = Vec::with_capacity(opts.size as usize * opts.size as usize / 2);
            image::codecs::jpeg::JpegEncoder::new_with_quality(&mut bytes, JPEG_QUALITY)
                .encode(&r.rgb, opts.size, opts.size, image::ExtendedColorType::Rgb8)
                .map_err(|e| SynthError::Encode {
                    path: path.clone(),
                    message: e.to_string(),
                })?;
            std::fs::write(&path, &bytes).map_err(|e| io_err(&path, e))?;
            let n = done.fetch_add(1, Ordering::Relaxed) + 1;
            if let Some(cb) = progress {
                cb(n, total);
            }
            Ok((
                writer::JobOutput {
                    bbox: r.bbox,
                    landmarks: r.landmarks,
                },
                bytes.len() as u64,
            ))
        })
        .collect::<Result<_, SynthError>>()?;
    let jpeg_bytes = results.iter().map(|r| r.1).sum();
    let outputs: Vec<writer::JobOutput> = results.into_iter().map(|r| r.0).collect();
    writer::write_all(&partial, &plan, &outputs)?;

    if exists {
        let old = parent.join(format!(".{file_name}.old"));
        if old.exists() {
            std::fs::remove_dir_all(&old).map_err(|e| io_err(&old, e))?;
        }
        std::fs::rename(out, &old).map_err(|e| io_err(out, e))?;
        std::fs::rename(&partial, out).map_err(|e| io_err(out, e))?;
        std::fs::remove_dir_all(&old).map_err(|e| io_err(&old, e))?;
    } else {
        if out.exists() {
            // An empty folder: replace it.
            std::fs::remove_dir(out).map_err(|e| io_err(out, e))?;
        }
        std::fs::rename(&partial, out).map_err(|e| io_err(out, e))?;
    }

    let count = |v: &[&str], s: &str| v.iter().filter(|x| **x == s).count();
    let attr_splits: Vec<&str> = plan.attr.iter().map(|e| e.split).collect();
    let inshop_status: Vec<&str> = plan.inshop.iter().map(|e| e.status).collect();
    let c2s_images = plan
        .c2s
        .iter()
        .map(|i| i.shop.len() + i.consumer.len())
        .sum();
    Ok(SynthSummary {
        out: out.to_path_buf(),
        attr_images: plan.attr.len(),
        attr_splits: [
            count(&attr_splits, "train"),
            count(&attr_splits, "val"),
            count(&attr_splits, "test"),
        ],
        inshop_images: plan.inshop.len(),
        inshop_items: plan.inshop_items.len(),
        inshop_status: [
            count(&inshop_status, "train"),
            count(&inshop_status, "query"),
            count(&inshop_status, "gallery"),
        ],
        c2s_images,
        c2s_items: plan.c2s.len(),
        c2s_pairs: plan
            .c2s
            .iter()
            .map(|i| i.shop.len() * i.consumer.len())
            .sum(),
        landmark_images: plan.landmark.len(),
        total_images: total,
        jpeg_bytes,
    })
}
