//! Reading images of a benchmark split (or a folder) and preprocessing them
//! with the shared [`deepfashion::preprocess`] function, so the exporter sees
//! the pixels the trainer and the runtime see.

use crate::{ExportError, Result};
use deepfashion::annotations::{self, Benchmark, Dataset, LoadOptions};
use deepfashion::preprocess::{crop_resize_normalize, CropBox};
use std::path::{Path, PathBuf};

/// One image to run: where it is, its name in the annotations and the box
/// to crop around (centre square when `None`).
#[derive(Debug, Clone)]
pub struct ImageRef {
    /// Image file.
    pub path: PathBuf,
    /// Name as in the annotation files (or the file name).
    pub name: String,
    /// Bounding box `x1 y1 x2 y2` in pixels.
    pub bbox: Option<[f32; 4]>,
    /// Item id (retrieval benchmarks).
    pub item_id: Option<String>,
}

/// Load benchmark `benchmark` (CLI name) under `root`.
pub fn load_dataset(root: &Path, benchmark: &str) -> Result<Dataset> {
    let b: Benchmark = benchmark
        .parse()
        .map_err(|e: annotations::DataError| ExportError::Other(e.to_string()))?;
    annotations::load(root, b, &LoadOptions::default())
        .map_err(|e| ExportError::Other(format!("{}: {e}", root.display())))
}

/// The [`ImageRef`] of one annotation record of `ds`.
pub fn image_ref(ds: &Dataset, r: &annotations::ImageRecord) -> ImageRef {
    ImageRef {
        path: ds.image_path(r),
        name: r.image.clone(),
        bbox: r.bbox,
        item_id: r.item_id.clone(),
    }
}

/// The images of `split` in `ds`, in partition order.
pub fn split_images(ds: &Dataset, split: &str) -> Vec<ImageRef> {
    ds.split(split).map(|r| image_ref(ds, r)).collect()
}

/// Every `.jpg`/`.jpeg`/`.png` file under `dir` (recursive, sorted).
pub fn folder_images(dir: &Path) -> Result<Vec<ImageRef>> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let rd = std::fs::read_dir(&d).map_err(|e| ExportError::Io {
            path: d.display().to_string(),
            source: e,
        })?;
        for entry in rd.flatten() {
            let p = entry.path();
            if p.is_dir() {
                stack.push(p);
            } else if p
                .extension()
                .and_then(|e| e.to_str())
                .is_some_and(|e| matches!(e.to_ascii_lowercase().as_str(), "jpg" | "jpeg" | "png"))
            {
                let name = p
                    .strip_prefix(dir)
                    .unwrap_or(&p)
                    .to_string_lossy()
                    .into_owned();
                out.push(ImageRef {
                    path: p,
                    name,
                    bbox: None,
                    item_id: None,
                });
            }
        }
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

/// Decode `img.path`, crop (around the box with `margin`, else the centre
/// square), resize to `size` and normalize into `out` (`3*size*size`).
/// Returns the crop and the image size.
pub fn preprocess(img: &ImageRef, size: usize, margin: f32, out: &mut [f32]) -> Result<CropBox> {
    let rgb = image::open(&img.path)
        .map_err(|e| ExportError::Image {
            path: img.path.display().to_string(),
            reason: e.to_string(),
        })?
        .to_rgb8();
    let (w, h) = rgb.dimensions();
    if w == 0 || h == 0 {
        return Err(ExportError::Image {
            path: img.path.display().to_string(),
            reason: "empty image".into(),
        });
    }
    let crop = match img.bbox {
        Some(b) => CropBox::around_bbox(b, margin),
        None => CropBox::centre_square(w, h),
    };
    crop_resize_normalize(rgb.as_raw(), w, h, crop, size, false, out);
    Ok(crop)
}

/// A progress bar on stderr for `n` steps (hidden when stderr is not a
/// terminal).
pub fn progress(n: usize, what: &str) -> indicatif::ProgressBar {
    let pb = indicatif::ProgressBar::new(n as u64);
    pb.set_style(
        indicatif::ProgressStyle::with_template(
            "{msg:>12} [{bar:40}] {pos}/{len} ({elapsed}, eta {eta})",
        )
        .expect("template is valid")
        .progress_chars("=> "),
    );
    pb.set_message(what.to_string());
    pb
}
