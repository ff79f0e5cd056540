//! A tiny software rasterizer: filled polygons (even-odd scanline), thick
//! lines, discs and ellipses, box blur, noise and colour casts on an RGB
//! float canvas. No anti-aliasing; JPEG smooths the edges a little.

use rand::Rng;

/// An RGB colour with channels in 0..=255 (floats, clamped on output).
pub type Rgb = [f32; 3];

/// A point `(x, y)` in pixel coordinates (pixel `i` covers `[i, i+1)`).
pub type Pt = (f32, f32);

/// An RGB float canvas.
pub struct Canvas {
    /// Width in pixels.
    pub w: usize,
    /// Height in pixels.
    pub h: usize,
    /// Row-major pixels.
    pub px: Vec<Rgb>,
}

impl Canvas {
    /// A canvas filled with one colour.
    pub fn new(w: usize, h: usize, fill: Rgb) -> Self {
        Self {
            w,
            h,
            px: vec![fill; w * h],
        }
    }

    /// Fill a polygon (even-odd rule, pixel centres). `shade` gets the pixel
    /// position and its current colour and returns the new colour.
    pub fn fill_polygon(&mut self, pts: &[Pt], mut shade: impl FnMut(usize, usize, Rgb) -> Rgb) {
        if pts.len() < 3 {
            return;
        }
        let (mut ymin, mut ymax) = (f32::MAX, f32::MIN);
        for p in pts {
            ymin = ymin.min(p.1);
            ymax = ymax.max(p.1);
        }
        let y0 = (ymin - 0.5).ceil().max(0.0) as usize;
        let y1 = ((ymax - 0.5).floor()).min(self.h as f32 - 1.0);
        if y1 < 0.0 {
            return;
        }
        let y1 = y1 as usize;
        let mut xs: Vec<f32> = Vec::with_capacity(16);
        for y in y0..=y1 {
            let sy = y as f32 + 0.5;
            xs.clear();
            for i in 0..pts.len() {
                let a = pts[i];
                let b = pts[(i + 1) % pts.len()];
                if (a.1 <= sy && b.1 > sy) || (b.1 <= sy && a.1 > sy) {
                    let t = (sy - a.1) / (b.1 - a.1);
                    xs.push(a.0 + t * (b.0 - a.0));
                }
            }
            xs.sort_by(|a, b| a.total_cmp(b));
            for pair in xs.chunks_exact(2) {
                let x0 = (pair[0] - 0.5).ceil().max(0.0) as usize;
                let x1 = (pair[1] - 0.5).floor().min(self.w as f32 - 1.0);
                if x1 < 0.0 {
                    continue;
                }
                for x in x0..=(x1 as usize) {
                    let i = y * self.w + x;
                    self.px[i] = shade(x, y, self.px[i]);
                }
            }
        }
    }

    /// Fill a polygon with one colour.
    pub fn fill_polygon_solid(&mut self, pts: &[Pt], c: Rgb) {
        self.fill_polygon(pts, |_, _, _| c);
    }

    /// A line of the given width (discs stamped along it).
    pub fn line(&mut self, a: Pt, b: Pt, width: f32, c: Rgb) {
        let len = ((b.0 - a.0).powi(2) + (b.1 - a.1).powi(2)).sqrt();
        let steps = (len * 2.0).ceil().max(1.0) as usize;
        let r = (width * 0.5).max(0.5);
        for s in 0..=steps {
            let t = s as f32 / steps as f32;
            let p = (a.0 + t * (b.0 - a.0), a.1 + t * (b.1 - a.1));
            if r <= 0.75 {
                self.set(p.0, p.1, c);
            } else {
                self.disc(p, r, c);
            }
        }
    }

    /// The outline of a closed polygon.
    pub fn outline(&mut self, pts: &[Pt], width: f32, c: Rgb) {
        for i in 0..pts.len() {
            self.line(pts[i], pts[(i + 1) % pts.len()], width, c);
        }
    }

    /// Set the pixel containing `(x, y)` if inside the canvas.
    pub fn set(&mut self, x: f32, y: f32, c: Rgb) {
        if x >= 0.0 && y >= 0.0 && (x as usize) < self.w && (y as usize) < self.h {
            let i = y as usize * self.w + x as usize;
            self.px[i] = c;
        }
    }

    /// A filled disc.
    pub fn disc(&mut self, c: Pt, r: f32, col: Rgb) {
        self.ellipse(c, r, r, 0.0, |_, _, _| col);
    }

    /// A filled, rotated ellipse with a shading function.
    pub fn ellipse(
        &mut self,
        c: Pt,
        rx: f32,
        ry: f32,
        angle: f32,
        mut shade: impl FnMut(usize, usize, Rgb) -> Rgb,
    ) {
        let r = rx.max(ry);
        let (s, co) = angle.sin_cos();
        let x0 = (c.0 - r).floor().max(0.0) as usize;
        let y0 = (c.1 - r).floor().max(0.0) as usize;
        let x1 = ((c.0 + r).ceil() as isize).min(self.w as isize - 1);
        let y1 = ((c.1 + r).ceil() as isize).min(self.h as isize - 1);
        if x1 < 0 || y1 < 0 {
            return;
        }
        for y in y0..=(y1 as usize) {
            for x in x0..=(x1 as usize) {
                let dx = x as f32 + 0.5 - c.0;
                let dy = y as f32 + 0.5 - c.1;
                let u = dx * co + dy * s;
                let v = -dx * s + dy * co;
                if (u / rx.max(0.1)).powi(2) + (v / ry.max(0.1)).powi(2) <= 1.0 {
                    let i = y * self.w + x;
                    self.px[i] = shade(x, y, self.px[i]);
                }
            }
        }
    }

    /// A separable box blur of radius 1, `passes` times.
    pub fn box_blur(&mut self, passes: usize) {
        let (w, h) = (self.w, self.h);
        let mut tmp = self.px.clone();
        for _ in 0..passes {
            for y in 0..h {
                for x in 0..w {
                    let l = self.px[y * w + x.saturating_sub(1)];
                    let m = self.px[y * w + x];
                    let r = self.px[y * w + (x + 1).min(w - 1)];
                    tmp[y * w + x] = avg3(l, m, r);
                }
            }
            for y in 0..h {
                for x in 0..w {
                    let u = tmp[y.saturating_sub(1) * w + x];
                    let m = tmp[y * w + x];
                    let d = tmp[(y + 1).min(h - 1) * w + x];
                    self.px[y * w + x] = avg3(u, m, d);
                }
            }
        }
    }

    /// Add uniform noise of amplitude `amp` (per channel, independent).
    pub fn noise(&mut self, rng: &mut impl Rng, amp: f32) {
        for p in &mut self.px {
            for c in p.iter_mut() {
                *c += rng.gen_range(-amp..=amp);
            }
        }
    }

    /// Multiply every pixel by a per-channel gain and add an offset.
    pub fn colour_cast(&mut self, gain: Rgb, offset: f32) {
        for p in &mut self.px {
            for (c, g) in p.iter_mut().zip(gain) {
                *c = *c * g + offset;
            }
        }
    }

    /// The canvas as packed RGB8.
    pub fn to_rgb8(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.w * self.h * 3);
        for p in &self.px {
            for c in p {
                out.push(c.round().clamp(0.0, 255.0) as u8);
            }
        }
        out
    }
}

fn avg3(a: Rgb, b: Rgb, c: Rgb) -> Rgb {
    [
        (a[0] + b[0] + c[0]) / 3.0,
        (a[1] + b[1] + c[1]) / 3.0,
        (a[2] + b[2] + c[2]) / 3.0,
    ]
}

/// Whether `p` lies inside the polygon (even-odd rule).
pub fn point_in_polygon(pts: &[Pt], p: Pt) -> bool {
    let mut inside = false;
    let n = pts.len();
    for i in 0..n {
        let a = pts[i];
        let b = pts[(i + 1) % n];
        if (a.1 > p.1) != (b.1 > p.1) {
            let x = a.0 + (p.1 - a.1) / (b.1 - a.1) * (b.0 - a.0);
            if p.0 < x {
                inside = !inside;
            }
        }
    }
    inside
}

/// Scale a colour's brightness.
pub fn scale(c: Rgb, k: f32) -> Rgb {
    [c[0] * k, c[1] * k, c[2] * k]
}

/// Linear blend `a * (1 - t) + b * t`.
pub fn mix(a: Rgb, b: Rgb, t: f32) -> Rgb {
    [
        a[0] + (b[0] - a[0]) * t,
        a[1] + (b[1] - a[1]) * t,
        a[2] + (b[2] - a[2]) * t,
    ]
}

/// A deterministic hash of two integers and a salt to `[0, 1)`.
pub fn hash01(a: i32, b: i32, salt: u32) -> f32 {
    let mut h = (a as u32).wrapping_mul(0x9E37_79B1)
        ^ (b as u32).wrapping_mul(0x85EB_CA77)
        ^ salt.wrapping_mul(0xC2B2_AE3D);
    h ^= h >> 15;
    h = h.wrapping_mul(0x2C1B_3C6D);
    h ^= h >> 12;
    h = h.wrapping_mul(0x297A_2D39);
    h ^= h >> 15;
    (h >> 8) as f32 / (1u32 << 24) as f32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn polygon_fill_covers_expected_area() {
        let mut c = Canvas::new(20, 20, [0.0; 3]);
        c.fill_polygon_solid(
            &[(2.0, 2.0), (12.0, 2.0), (12.0, 7.0), (2.0, 7.0)],
            [255.0; 3],
        );
        let filled = c.px.iter().filter(|p| p[0] > 0.0).count();
        assert_eq!(filled, 50);
        assert!(point_in_polygon(
            &[(0.0, 0.0), (4.0, 0.0), (0.0, 4.0)],
            (1.0, 1.0)
        ));
        assert!(!point_in_polygon(
            &[(0.0, 0.0), (4.0, 0.0), (0.0, 4.0)],
            (3.0, 3.0)
        ));
    }

    #[test]
    fn off_canvas_shapes_are_clipped() {
        let mut c = Canvas::new(8, 8, [0.0; 3]);
        c.fill_polygon_solid(&[(-5.0, -5.0), (30.0, -5.0), (30.0, 3.0)], [1.0; 3]);
        c.disc((-3.0, 50.0), 4.0, [1.0; 3]);
        c.line((-10.0, 4.0), (20.0, 4.0), 3.0, [2.0; 3]);
        assert_eq!(c.px.len(), 64);
        c.box_blur(1);
        assert!(c.px.iter().all(|p| p[0].is_finite()));
    }
}
