//! `deepfashion clip`: an MJPEG clip (concatenated JPEG frames, the format
//! `fashion-runtime tag --source mjpeg:FILE` reads) from the images of a
//! benchmark split, each cropped around its bounding box the way the trainer
//! crops (square, `--margin` on each side), so that the runtime's default
//! region of interest (the frame's centre square) sees what the model was
//! trained on. The demo clip is made with it.

use crate::dataset_args::DatasetArgs;
use anyhow::{bail, Context};
use deepfashion::preprocess::CropBox;
use image::{imageops, Rgb, RgbImage};
use std::io::Write;
use std::path::PathBuf;

/// Arguments of `deepfashion clip`.
#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub dataset: DatasetArgs,
    /// Split whose images make the clip.
    #[arg(long, default_value = "test")]
    pub split: String,
    /// Number of images (the first N of the split, in partition order).
    #[arg(long, default_value_t = 40)]
    pub images: usize,
    /// Frames per image (a still held for a moment, like a shopper posing).
    #[arg(long, default_value_t = 4)]
    pub repeat: usize,
    /// Frame side in pixels (square frames).
    #[arg(long, default_value_t = 160)]
    pub size: u32,
    /// Crop margin on each side, relative to the box's longer side.
    #[arg(long, default_value_t = deepfashion::contract::DEFAULT_CROP_MARGIN)]
    pub margin: f32,
    /// JPEG quality (1-100).
    #[arg(long, default_value_t = 80)]
    pub quality: u8,
    /// Output file (written atomically).
    #[arg(long)]
    pub out: PathBuf,
}

/// The square `crop` of `img` (snapped to whole pixels,
/// [`CropBox::rounded`]), resized to `size` (outside the image: grey).
fn crop_square(img: &RgbImage, crop: CropBox, size: u32) -> RgbImage {
    let crop = crop.rounded();
    let side = crop.side as u32;
    let mut canvas = RgbImage::from_pixel(side, side, Rgb([128, 128, 128]));
    let (x0, y0) = (crop.x0 as i64, crop.y0 as i64);
    imageops::overlay(&mut canvas, img, -x0, -y0);
    imageops::resize(&canvas, size, size, imageops::FilterType::Triangle)
}

/// Write the clip.
pub fn run(a: Args) -> anyhow::Result<()> {
    if a.repeat == 0 || a.images == 0 || !(16..=2048).contains(&a.size) {
        bail!("--images and --repeat must be positive and --size within 16..=2048");
    }
    let ds = a.dataset.load()?;
    let recs: Vec<_> = ds.split(&a.split).take(a.images).collect();
    if recs.is_empty() {
        bail!("split `{}` of {} has no images", a.split, ds.benchmark);
    }
    let mut out = Vec::new();
    for r in &recs {
        let path = ds.image_path(r);
        let img = image::open(&path)
            .with_context(|| format!("reading {}", path.display()))?
            .to_rgb8();
        let crop = match r.bbox {
            Some(b) => CropBox::around_bbox(b, a.margin),
            None => CropBox::centre_square(img.width(), img.height()),
        };
        let frame = crop_square(&img, crop, a.size);
        let mut jpeg = Vec::new();
        image::codecs::jpeg::JpegEncoder::new_with_quality(&mut jpeg, a.quality.clamp(1, 100))
            .encode_image(&frame)
            .with_context(|| format!("encoding a frame of {}", path.display()))?;
        for _ in 0..a.repeat {
            out.extend_from_slice(&jpeg);
        }
    }
    let tmp = a.out.with_extension("mjpeg.partial");
    {
        let mut f =
            std::fs::File::create(&tmp).with_context(|| format!("creating {}", tmp.display()))?;
        f.write_all(&out)?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, &a.out).with_context(|| format!("writing {}", a.out.display()))?;
    println!(
        "{}: {} frames ({} images x {}), {}x{} px, {:.2} MiB",
        a.out.display(),
        recs.len() * a.repeat,
        recs.len(),
        a.repeat,
        a.size,
        a.size,
        out.len() as f64 / (1024.0 * 1024.0)
    );
    Ok(())
}
