//! Annotated frames: the region of interest and the landmarks drawn over a
//! copy of the camera frame, encoded as JPEG.
//!
//! Colours: ROI rectangle yellow; landmark dots green (visible), orange
//! (occluded), red (truncated); the garment outline (collars, sleeves,
//! waistline, hems) white between two visible landmarks and grey otherwise,
//! not drawn to a truncated landmark. The copy and the JPEG buffer are
//! reused from frame to frame.

use image::codecs::jpeg::JpegEncoder;
use image::ExtendedColorType;

use crate::result::{FrameResult, LandmarkOut};

/// Default JPEG quality of annotated frames.
pub const DEFAULT_JPEG_QUALITY: u8 = 80;

const ROI: [u8; 3] = [255, 220, 0];
const VISIBLE: [u8; 3] = [0, 220, 60];
const OCCLUDED: [u8; 3] = [255, 150, 0];
const TRUNCATED: [u8; 3] = [230, 30, 30];
const LINE_VISIBLE: [u8; 3] = [255, 255, 255];
const LINE_OTHER: [u8; 3] = [140, 140, 140];

/// Garment outline as pairs of landmark slots (see `contract::LANDMARK_SLOTS`).
const OUTLINE: [(usize, usize); 9] = [
    (0, 1), // collars
    (0, 2), // left collar - left sleeve
    (1, 3), // right collar - right sleeve
    (0, 4), // left collar - left waistline
    (1, 5), // right collar - right waistline
    (4, 5), // waistline
    (4, 6), // left waistline - left hem
    (5, 7), // right waistline - right hem
    (6, 7), // hem
];

/// Errors of annotation.
#[derive(Debug, thiserror::Error)]
pub enum AnnotateError {
    /// The RGB buffer does not match the frame size.
    #[error("frame buffer has {got} bytes, expected {expected} for {width}x{height} RGB8")]
    BadFrame {
        /// Bytes given.
        got: usize,
        /// `width * height * 3`.
        expected: usize,
        /// Frame width.
        width: u32,
        /// Frame height.
        height: u32,
    },
    /// The JPEG encoder failed.
    #[error("JPEG encoding failed: {0}")]
    Encode(#[from] image::ImageError),
}

/// Draws results over frames and encodes them as JPEG, reusing its buffers.
#[derive(Debug)]
pub struct Annotator {
    quality: u8,
    canvas: Vec<u8>,
    jpeg: Vec<u8>,
}

impl Default for Annotator {
    fn default() -> Self {
        Self::new(DEFAULT_JPEG_QUALITY)
    }
}

impl Annotator {
    /// An annotator encoding at JPEG `quality` (1..=100, clamped).
    pub fn new(quality: u8) -> Self {
        Self {
            quality: quality.clamp(1, 100),
            canvas: Vec::new(),
            jpeg: Vec::new(),
        }
    }

    /// Copy the interleaved RGB8 frame (`width x height`), draw `result`
    /// over it and encode it; returns the JPEG bytes (valid until the next
    /// call).
    pub fn annotate_jpeg(
        &mut self,
        rgb: &[u8],
        width: u32,
        height: u32,
        result: &FrameResult,
    ) -> Result<&[u8], AnnotateError> {
        let expected = width as usize * height as usize * 3;
        if rgb.len() != expected || width == 0 || height == 0 {
            return Err(AnnotateError::BadFrame {
                got: rgb.len(),
                expected,
                width,
                height,
            });
        }
        self.canvas.clear();
        self.canvas.extend_from_slice(rgb);
        draw_result(&mut self.canvas, width, height, result);
        self.jpeg.clear();
        JpegEncoder::new_with_quality(&mut self.jpeg, self.quality).encode(
            &self.canvas,
            width,
            height,
            ExtendedColorType::Rgb8,
        )?;
        Ok(&self.jpeg)
    }

    /// Move the last JPEG out, leaving `spare` (cleared) in its place: lets a
    /// consumer keep the bytes without copying, and hand back an old buffer
    /// for reuse.
    pub fn swap_jpeg(&mut self, spare: &mut Vec<u8>) {
        std::mem::swap(&mut self.jpeg, spare);
        self.jpeg.clear();
    }
}

/// Draw the ROI rectangle, the garment outline and the landmark dots of
/// `result` into the RGB8 image `rgb` (`width x height`). Everything is
/// clipped to the image; non-finite coordinates are skipped.
pub fn draw_result(rgb: &mut [u8], width: u32, height: u32, result: &FrameResult) {
    let mut canvas = Canvas {
        rgb,
        width: width as i64,
        height: height as i64,
    };
    if canvas.rgb.len() != (canvas.width * canvas.height * 3) as usize {
        return;
    }
    let thick = (width.min(height) as i64 / 240).max(1);
    let roi = &result.roi;
    if roi.side > 0.0 && roi.x0.is_finite() && roi.y0.is_finite() && roi.side.is_finite() {
        let (x0, y0) = (roi.x0 as i64, roi.y0 as i64);
        let (x1, y1) = (
            (roi.x0 + roi.side) as i64 - 1,
            (roi.y0 + roi.side) as i64 - 1,
        );
        for t in 0..thick {
            canvas.rect(x0 + t, y0 + t, x1 - t, y1 - t, ROI);
        }
    }
    let lm = &result.landmarks;
    for &(a, b) in &OUTLINE {
        let (pa, pb) = (&lm[a], &lm[b]);
        if class(pa) == 2 || class(pb) == 2 {
            continue;
        }
        let color = if class(pa) == 0 && class(pb) == 0 {
            LINE_VISIBLE
        } else {
            LINE_OTHER
        };
        if let (Some(p), Some(q)) = (point(pa), point(pb)) {
            canvas.line(p, q, thick, color);
        }
    }
    let radius = (width.min(height) as i64 / 80).max(3);
    for l in lm {
        if let Some(p) = point(l) {
            let color = [VISIBLE, OCCLUDED, TRUNCATED][class(l)];
            canvas.disc(p.0, p.1, radius + 1, [0, 0, 0]);
            canvas.disc(p.0, p.1, radius, color);
        }
    }
}

/// Most probable visibility class (0 visible, 1 occluded, 2 truncated).
fn class(l: &LandmarkOut) -> usize {
    let [v, o, t] = l.visibility;
    if v >= o && v >= t {
        0
    } else if o >= t {
        1
    } else {
        2
    }
}

fn point(l: &LandmarkOut) -> Option<(i64, i64)> {
    // Far outside the frame is as good as absent (and keeps loops short).
    let ok = |v: f32| v.is_finite() && v.abs() < 1.0e6;
    (ok(l.x) && ok(l.y)).then(|| (l.x.round() as i64, l.y.round() as i64))
}

struct Canvas<'a> {
    rgb: &'a mut [u8],
    width: i64,
    height: i64,
}

impl Canvas<'_> {
    fn put(&mut self, x: i64, y: i64, c: [u8; 3]) {
        if x >= 0 && y >= 0 && x < self.width && y < self.height {
            let i = ((y * self.width + x) * 3) as usize;
            self.rgb[i..i + 3].copy_from_slice(&c);
        }
    }

    fn hline(&mut self, x0: i64, x1: i64, y: i64, c: [u8; 3]) {
        if y < 0 || y >= self.height {
            return;
        }
        for x in x0.max(0)..=x1.min(self.width - 1) {
            self.put(x, y, c);
        }
    }

    fn vline(&mut self, x: i64, y0: i64, y1: i64, c: [u8; 3]) {
        if x < 0 || x >= self.width {
            return;
        }
        for y in y0.max(0)..=y1.min(self.height - 1) {
            self.put(x, y, c);
        }
    }

    fn rect(&mut self, x0: i64, y0: i64, x1: i64, y1: i64, c: [u8; 3]) {
        if x1 < x0 || y1 < y0 {
            return;
        }
        self.hline(x0, x1, y0, c);
        self.hline(x0, x1, y1, c);
        self.vline(x0, y0, y1, c);
        self.vline(x1, y0, y1, c);
    }

    fn disc(&mut self, cx: i64, cy: i64, r: i64, c: [u8; 3]) {
        for dy in -r..=r {
            let half = ((r * r - dy * dy) as f64).sqrt() as i64;
            self.hline(cx - half, cx + half, cy + dy, c);
        }
    }

    /// Bresenham line, `thick` pixels wide (square brush), clipped.
    fn line(&mut self, p: (i64, i64), q: (i64, i64), thick: i64, c: [u8; 3]) {
        // Clip coarsely: skip lines entirely off one side of the image.
        let (w, h) = (self.width, self.height);
        if (p.0 < 0 && q.0 < 0)
            || (p.1 < 0 && q.1 < 0)
            || (p.0 >= w && q.0 >= w)
            || (p.1 >= h && q.1 >= h)
        {
            return;
        }
        let (mut x, mut y) = p;
        let dx = (q.0 - p.0).abs();
        let dy = -(q.1 - p.1).abs();
        let sx = if p.0 < q.0 { 1 } else { -1 };
        let sy = if p.1 < q.1 { 1 } else { -1 };
        let mut err = dx + dy;
        let half = thick / 2;
        loop {
            for oy in -half..thick - half {
                for ox in -half..thick - half {
                    self.put(x + ox, y + oy, c);
                }
            }
            if (x, y) == q {
                break;
            }
            let e2 = 2 * err;
            if e2 >= dy {
                err += dy;
                x += sx;
            }
            if e2 <= dx {
                err += dx;
                y += sy;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn px(rgb: &[u8], w: u32, x: u32, y: u32) -> [u8; 3] {
        let i = ((y * w + x) * 3) as usize;
        [rgb[i], rgb[i + 1], rgb[i + 2]]
    }

    #[test]
    fn draws_roi_and_dots_by_visibility() {
        let (w, h) = (160u32, 120u32);
        let mut rgb = vec![0u8; (w * h * 3) as usize];
        let mut r = FrameResult {
            width: w,
            height: h,
            ..Default::default()
        };
        r.roi = deepfashion::preprocess::CropBox {
            x0: 20.0,
            y0: 0.0,
            side: 120.0,
        };
        r.landmarks[0] = LandmarkOut {
            x: 50.0,
            y: 30.0,
            visibility: [0.9, 0.05, 0.05],
        };
        r.landmarks[1] = LandmarkOut {
            x: 110.0,
            y: 30.0,
            visibility: [0.1, 0.8, 0.1],
        };
        for l in &mut r.landmarks[2..] {
            *l = LandmarkOut {
                x: 80.0,
                y: 100.0,
                visibility: [0.0, 0.0, 1.0],
            };
        }
        draw_result(&mut rgb, w, h, &r);
        assert_eq!(px(&rgb, w, 20, 60), ROI);
        assert_eq!(px(&rgb, w, 139, 60), ROI);
        assert_eq!(px(&rgb, w, 50, 30), VISIBLE);
        assert_eq!(px(&rgb, w, 110, 30), OCCLUDED);
        assert_eq!(px(&rgb, w, 80, 100), TRUNCATED);
        // Collar line between a visible and an occluded landmark: grey.
        assert_eq!(px(&rgb, w, 80, 30), LINE_OTHER);
        // Nothing drawn far from the annotations.
        assert_eq!(px(&rgb, w, 5, 5), [0, 0, 0]);
    }

    #[test]
    fn wild_coordinates_do_not_panic() {
        let (w, h) = (8u32, 6u32);
        let mut rgb = vec![0u8; (w * h * 3) as usize];
        let mut r = FrameResult::default();
        r.roi.side = f32::INFINITY;
        r.landmarks[0].x = f32::NAN;
        r.landmarks[1].x = -1.0e9;
        r.landmarks[2].x = 1.0e5;
        r.landmarks[2].y = -3.0;
        r.landmarks[3].x = 7.0;
        r.landmarks[3].y = 5.0;
        draw_result(&mut rgb, w, h, &r);
        let mut a = Annotator::default();
        assert!(a.annotate_jpeg(&rgb[1..], w, h, &r).is_err());
        let jpeg = a.annotate_jpeg(&rgb, w, h, &r).unwrap();
        assert_eq!(&jpeg[..2], &[0xFF, 0xD8]);
    }
}
