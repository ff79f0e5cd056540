//! Crop, resize and normalize: the one preprocessing function that the
//! trainer, the exporter's evaluation and the runtime all call, so that the
//! three see the same pixels.
//!
//! A crop is a square in source-image pixel coordinates (it may extend past
//! the image; pixels outside are filled with the ImageNet mean, i.e. zero
//! after normalization). Training and evaluation crop around the annotated
//! bounding box ([`CropBox::around_bbox`]); the runtime crops its region of
//! interest ([`CropBox::centre_square`] by default). Landmarks are expressed
//! in [0,1] of the crop ([`CropBox::to_unit`], [`CropBox::to_pixels`]).

use crate::contract::{IMAGENET_MEAN, IMAGENET_STD};

/// A square crop in source pixel coordinates (continuous: the pixel with
/// index `i` covers `[i, i+1)`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CropBox {
    /// Left edge.
    pub x0: f32,
    /// Top edge.
    pub y0: f32,
    /// Side length (> 0).
    pub side: f32,
}

impl CropBox {
    /// The square crop centred on bbox `(x1, y1, x2, y2)`, with side
    /// `max(w, h) * (1 + 2 * margin)`.
    pub fn around_bbox(bbox: [f32; 4], margin: f32) -> Self {
        let w = (bbox[2] - bbox[0]).max(1.0);
        let h = (bbox[3] - bbox[1]).max(1.0);
        let side = w.max(h) * (1.0 + 2.0 * margin);
        let cx = (bbox[0] + bbox[2]) * 0.5;
        let cy = (bbox[1] + bbox[3]) * 0.5;
        Self {
            x0: cx - side * 0.5,
            y0: cy - side * 0.5,
            side,
        }
    }

    /// The largest centred square of a `width x height` frame.
    pub fn centre_square(width: u32, height: u32) -> Self {
        let side = width.min(height) as f32;
        Self {
            x0: (width as f32 - side) * 0.5,
            y0: (height as f32 - side) * 0.5,
            side,
        }
    }

    /// Source pixel coordinates -> [0,1] of the crop.
    pub fn to_unit(&self, x: f32, y: f32) -> (f32, f32) {
        ((x - self.x0) / self.side, (y - self.y0) / self.side)
    }

    /// [0,1] of the crop -> source pixel coordinates.
    pub fn to_pixels(&self, u: f32, v: f32) -> (f32, f32) {
        (self.x0 + u * self.side, self.y0 + v * self.side)
    }

    /// The crop snapped to whole pixels (origin and side rounded, side at
    /// least 1): what a pixel copy of the crop, like a clip frame, covers.
    pub fn rounded(&self) -> Self {
        Self {
            x0: self.x0.round(),
            y0: self.y0.round(),
            side: self.side.round().max(1.0),
        }
    }

    /// The same crop mirrored horizontally in a frame of width `width`.
    pub fn flipped(&self, width: u32) -> Self {
        Self {
            x0: width as f32 - self.x0 - self.side,
            ..*self
        }
    }
}

/// Crop `crop` out of an interleaved RGB8 image (`width x height`, row
/// stride `width * 3`), resize bilinearly to `size x size`, normalize with the
/// ImageNet mean/std and write planar CHW f32 into `out` (`3 * size * size`
/// values). Allocates nothing. With `flip`, the output is mirrored
/// horizontally (for augmentation).
///
/// # Panics
/// If `rgb.len() != width * height * 3` or `out.len() != 3 * size * size`.
pub fn crop_resize_normalize(
    rgb: &[u8],
    width: u32,
    height: u32,
    crop: CropBox,
    size: usize,
    flip: bool,
    out: &mut [f32],
) {
    let (w, h) = (width as usize, height as usize);
    assert_eq!(rgb.len(), w * h * 3, "rgb buffer does not match its size");
    assert_eq!(out.len(), 3 * size * size, "output buffer size");
    let scale = crop.side / size as f32;
    let plane = size * size;
    let inv_std = [
        1.0 / (255.0 * IMAGENET_STD[0]),
        1.0 / (255.0 * IMAGENET_STD[1]),
        1.0 / (255.0 * IMAGENET_STD[2]),
    ];
    let mean255 = [
        IMAGENET_MEAN[0] * 255.0,
        IMAGENET_MEAN[1] * 255.0,
        IMAGENET_MEAN[2] * 255.0,
    ];
    for oy in 0..size {
        let sy = crop.y0 + (oy as f32 + 0.5) * scale - 0.5;
        let y0f = sy.floor();
        let fy = sy - y0f;
        let y0 = y0f as isize;
        for ox in 0..size {
            let sx = crop.x0 + (ox as f32 + 0.5) * scale - 0.5;
            let x0f = sx.floor();
            let fx = sx - x0f;
            let x0 = x0f as isize;
            let mut acc = [0.0f32; 3];
            for (dy, wy) in [(0isize, 1.0 - fy), (1, fy)] {
                let yy = y0 + dy;
                for (dx, wx) in [(0isize, 1.0 - fx), (1, fx)] {
                    let xx = x0 + dx;
                    let wgt = wy * wx;
                    if yy >= 0 && (yy as usize) < h && xx >= 0 && (xx as usize) < w {
                        let i = (yy as usize * w + xx as usize) * 3;
                        acc[0] += wgt * rgb[i] as f32;
                        acc[1] += wgt * rgb[i + 1] as f32;
                        acc[2] += wgt * rgb[i + 2] as f32;
                    } else {
                        acc[0] += wgt * mean255[0];
                        acc[1] += wgt * mean255[1];
                        acc[2] += wgt * mean255[2];
                    }
                }
            }
            let tx = if flip { size - 1 - ox } else { ox };
            let o = oy * size + tx;
            for c in 0..3 {
                out[c * plane + o] = (acc[c] - mean255[c]) * inv_std[c];
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identity_crop_keeps_pixels() {
        // 4x4 image, crop the whole image to 4x4: output equals normalized input.
        let mut rgb = vec![0u8; 4 * 4 * 3];
        for (i, v) in rgb.iter_mut().enumerate() {
            *v = (i * 5 % 256) as u8;
        }
        let mut out = vec![0.0; 3 * 16];
        crop_resize_normalize(&rgb, 4, 4, CropBox::centre_square(4, 4), 4, false, &mut out);
        for y in 0..4 {
            for x in 0..4 {
                for c in 0..3 {
                    let v = rgb[(y * 4 + x) * 3 + c] as f32 / 255.0;
                    let e = (v - IMAGENET_MEAN[c]) / IMAGENET_STD[c];
                    assert!((out[c * 16 + y * 4 + x] - e).abs() < 1e-5);
                }
            }
        }
    }

    #[test]
    fn outside_is_zero_and_flip_mirrors() {
        let rgb = vec![200u8; 2 * 2 * 3];
        let crop = CropBox {
            x0: -10.0,
            y0: -10.0,
            side: 4.0,
        };
        let mut out = vec![1.0; 3 * 4];
        crop_resize_normalize(&rgb, 2, 2, crop, 2, false, &mut out);
        assert!(out.iter().all(|v| v.abs() < 1e-5));

        let mut rgb = vec![0u8; 2 * 3];
        rgb[0] = 255;
        let mut a = vec![0.0; 3 * 4];
        let mut b = vec![0.0; 3 * 4];
        let crop = CropBox {
            x0: 0.0,
            y0: -0.5,
            side: 2.0,
        };
        crop_resize_normalize(&rgb, 2, 1, crop, 2, false, &mut a);
        crop_resize_normalize(&rgb, 2, 1, crop, 2, true, &mut b);
        assert_eq!(a[0], b[1]);
        assert_eq!(a[1], b[0]);
    }

    #[test]
    fn unit_roundtrip() {
        let c = CropBox::around_bbox([10.0, 20.0, 50.0, 100.0], 0.1);
        assert!((c.side - 96.0).abs() < 1e-4);
        let (u, v) = c.to_unit(30.0, 60.0);
        assert!((u - 0.5).abs() < 1e-6 && (v - 0.5).abs() < 1e-6);
        let (x, y) = c.to_pixels(u, v);
        assert!((x - 30.0).abs() < 1e-4 && (y - 60.0).abs() < 1e-4);
    }
}
