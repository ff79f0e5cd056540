//! Render one view of a garment: background clutter, the garment placed by
//! a similarity transform (scale, rotation, flip, side-view squash), its
//! texture and fabric painted in garment coordinates (so patterns move with
//! the garment across views), occluders, frame cuts, lighting and consumer
//! degradations. Returns the pixels with the bounding box and the 8
//! landmarks with their visibility.

use rand::Rng;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use super::draw::{hash01, mix, point_in_polygon, scale, Canvas, Pt, Rgb};
use super::garment::{Fabric, GarmentSpec, Texture};
use super::shape::{build, Fill, Mark, Shape};
use crate::contract::FLIP_PERMUTATION;

/// Background style.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backdrop {
    /// Plain light studio backdrop (shop images).
    Studio,
    /// A room: wall, floor and a few objects.
    Indoor,
    /// Many objects and saturated colours (consumer photos).
    Busy,
}

/// How one image of a garment is taken.
#[derive(Debug, Clone)]
pub struct View {
    /// Seen from the back (no neckline, buttons, prints).
    pub back: bool,
    /// Longer side of the garment as a fraction of the image side.
    pub fill: f32,
    /// Rotation in radians.
    pub rotation: f32,
    /// Mirror horizontally.
    pub flip: bool,
    /// Horizontal compression (side views, pose).
    pub squash: f32,
    /// Centre offset as a fraction of the image side.
    pub offset: (f32, f32),
    /// Brightness gain.
    pub light: f32,
    /// Background.
    pub backdrop: Backdrop,
    /// Number of occluders drawn over landmarks.
    pub occluders: u8,
    /// Push the garment partly out of the frame.
    pub cut: bool,
    /// Consumer-photo degradation (blur, noise, colour cast).
    pub consumer: bool,
}

impl View {
    /// The DeepFashion variation type of this view: 1 normal pose, 2 medium
    /// pose, 3 large pose, 4 medium zoom-in, 5 large zoom-in.
    pub fn variation_type(&self) -> u8 {
        if self.fill > 1.15 {
            5
        } else if self.fill > 0.95 || self.cut {
            4
        } else if self.rotation.abs() > 0.3 || self.squash < 0.75 {
            3
        } else if self.rotation.abs() > 0.12 || self.squash < 0.92 {
            2
        } else {
            1
        }
    }
}

/// One landmark as written in the files.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Landmark {
    /// 0 visible, 1 occluded, 2 truncated.
    pub vis: u8,
    /// Pixel x.
    pub x: u32,
    /// Pixel y.
    pub y: u32,
}

/// A rendered image with its annotations.
pub struct Rendered {
    /// Packed RGB8, `size * size * 3`.
    pub rgb: Vec<u8>,
    /// `[x1, y1, x2, y2]` in pixels.
    pub bbox: [u32; 4],
    /// The 8 canonical slots (None where the garment type has none).
    pub landmarks: [Option<Landmark>; 8],
}

/// A 2x3 affine map canonical -> image.
#[derive(Clone, Copy)]
struct Affine {
    m: [f32; 6],
}

impl Affine {
    fn apply(&self, p: Pt) -> Pt {
        let m = self.m;
        (
            m[0] * p.0 + m[1] * p.1 + m[2],
            m[3] * p.0 + m[4] * p.1 + m[5],
        )
    }
    fn inverse(&self) -> Affine {
        let m = self.m;
        let det = m[0] * m[4] - m[1] * m[3];
        let det = if det.abs() < 1e-9 { 1e-9 } else { det };
        let (a, b, d, e) = (m[4] / det, -m[1] / det, -m[3] / det, m[0] / det);
        Affine {
            m: [a, b, -(a * m[2] + b * m[5]), d, e, -(d * m[2] + e * m[5])],
        }
    }
}

const SKIN: [Rgb; 4] = [
    [236.0, 196.0, 170.0],
    [214.0, 165.0, 128.0],
    [170.0, 120.0, 86.0],
    [110.0, 74.0, 52.0],
];

/// Render `garment` as seen by `view` on a `size x size` canvas.
pub fn render(garment: &GarmentSpec, view: &View, size: u32, seed: u64) -> Rendered {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let n = size as usize;
    let sz = size as f32;
    let mut cv = background(&mut rng, n, view.backdrop);
    let shape = build(garment, view.back);
    let tf = placement(&shape, view, sz, &mut rng);
    let inv = tf.inverse();
    let skin = SKIN[rng.gen_range(0..SKIN.len())];
    let base = garment.base_colour();
    let unit = (tf.m[0].powi(2) + tf.m[3].powi(2)).sqrt().max(1.0);
    let outline_w = (0.012 * unit).max(1.0);

    for part in &shape.parts {
        let poly: Vec<Pt> = part.poly.iter().map(|p| tf.apply(*p)).collect();
        match part.fill {
            Fill::Main(k) => cv.fill_polygon(&poly, |x, y, under| {
                let (u, v) = inv.apply((x as f32 + 0.5, y as f32 + 0.5));
                let c = scale(paint(garment, u, v), k);
                if garment.fabric == Fabric::Chiffon {
                    mix(under, c, 0.62)
                } else {
                    c
                }
            }),
            Fill::Solid(c) => cv.fill_polygon_solid(&poly, c),
            Fill::Skin => cv.fill_polygon_solid(&poly, skin),
        }
        if part.outline {
            cv.outline(&poly, outline_w, scale(base, 0.55));
        }
    }
    for mark in &shape.marks {
        match *mark {
            Mark::Line(a, b, w, k) => cv.line(
                tf.apply(a),
                tf.apply(b),
                (w * unit).max(1.0),
                scale(base, k),
            ),
            Mark::Disc(c, r, col) => cv.disc(tf.apply(c), (r * unit).max(1.0), col),
        }
    }

    // Landmarks (left stays image-left under a flip) and bbox.
    let mut pts: [Option<Pt>; 8] = [None; 8];
    for (slot, p) in shape.landmarks.iter().enumerate() {
        pts[slot] = p.map(|p| tf.apply(p));
    }
    if view.flip {
        let orig = pts;
        for (p, &from) in pts.iter_mut().zip(FLIP_PERMUTATION.iter()) {
            *p = orig[from];
        }
    }
    let mut vis: [u8; 8] = [0; 8];
    for (v, p) in vis.iter_mut().zip(&pts) {
        if let Some(p) = p {
            if p.0 < 0.5 || p.1 < 0.5 || p.0 > sz - 0.5 || p.1 > sz - 0.5 {
                *v = 2;
            }
        }
    }
    let bbox = bounding_box(&shape, &tf, sz);

    // Occluders over visible landmarks.
    for _ in 0..view.occluders {
        let visible: Vec<usize> = (0..8)
            .filter(|&s| pts[s].is_some() && vis[s] == 0)
            .collect();
        if visible.is_empty() {
            break;
        }
        let target = pts[visible[rng.gen_range(0..visible.len())]].unwrap_or((0.0, 0.0));
        let poly = occluder(&mut rng, target, sz, skin);
        cv.fill_polygon_solid(&poly.0, poly.1);
        cv.outline(&poly.0, 1.0, scale(poly.1, 0.6));
        for s in visible {
            if let Some(p) = pts[s] {
                if point_in_polygon(&poly.0, p) {
                    vis[s] = 1;
                }
            }
        }
    }

    // Lighting: gain plus a soft horizontal gradient.
    let grad = rng.gen_range(-0.15f32..0.15);
    for y in 0..n {
        for x in 0..n {
            let g = view.light * (1.0 + grad * (x as f32 / sz - 0.5));
            let p = &mut cv.px[y * n + x];
            *p = scale(*p, g);
        }
    }
    if view.consumer {
        cv.box_blur(rng.gen_range(1..=2));
        let cast = [
            rng.gen_range(0.82f32..1.18),
            rng.gen_range(0.85f32..1.15),
            rng.gen_range(0.82f32..1.18),
        ];
        cv.colour_cast(cast, rng.gen_range(-12.0f32..12.0));
        let amp = rng.gen_range(6.0f32..14.0);
        cv.noise(&mut rng, amp);
    } else {
        cv.noise(&mut rng, 3.0);
    }

    let mut landmarks = [None; 8];
    for ((out, p), &v) in landmarks.iter_mut().zip(&pts).zip(&vis) {
        *out = p.map(|p| Landmark {
            vis: v,
            x: p.0.floor().clamp(0.0, sz - 1.0) as u32,
            y: p.1.floor().clamp(0.0, sz - 1.0) as u32,
        });
    }
    Rendered {
        rgb: cv.to_rgb8(),
        bbox,
        landmarks,
    }
}

fn shape_extent(shape: &Shape, tf: Option<&Affine>) -> (f32, f32, f32, f32) {
    let (mut x0, mut y0, mut x1, mut y1) = (f32::MAX, f32::MAX, f32::MIN, f32::MIN);
    for part in &shape.parts {
        for p in &part.poly {
            let q = tf.map_or(*p, |t| t.apply(*p));
            x0 = x0.min(q.0);
            y0 = y0.min(q.1);
            x1 = x1.max(q.0);
            y1 = y1.max(q.1);
        }
    }
    (x0, y0, x1, y1)
}

fn placement(shape: &Shape, view: &View, sz: f32, rng: &mut impl Rng) -> Affine {
    let (x0, y0, x1, y1) = shape_extent(shape, None);
    let (cx, cy) = ((x0 + x1) * 0.5, (y0 + y1) * 0.5);
    let k = view.fill * sz / ((x1 - x0) * view.squash).max(y1 - y0).max(1e-3);
    let sx = view.squash * if view.flip { -1.0 } else { 1.0 };
    let (s, c) = view.rotation.sin_cos();
    let (tx, ty) = (sz * (0.5 + view.offset.0), sz * (0.5 + view.offset.1));
    // p' = R * diag(k*sx, k) * (p - c) + t
    let (a, b, d, e) = (c * k * sx, -s * k, s * k * sx, c * k);
    let mut tf = Affine {
        m: [a, b, tx - (a * cx + b * cy), d, e, ty - (d * cx + e * cy)],
    };
    if view.cut {
        let (bx0, by0, bx1, by1) = shape_extent(shape, Some(&tf));
        let frac = rng.gen_range(0.1f32..0.3);
        match rng.gen_range(0..4) {
            0 => tf.m[2] += -bx0 - frac * (bx1 - bx0),
            1 => tf.m[2] += sz - bx1 + frac * (bx1 - bx0),
            2 => tf.m[5] += -by0 - frac * (by1 - by0),
            _ => tf.m[5] += sz - by1 + frac * (by1 - by0),
        }
    }
    tf
}

fn bounding_box(shape: &Shape, tf: &Affine, sz: f32) -> [u32; 4] {
    let (x0, y0, x1, y1) = shape_extent(shape, Some(tf));
    let clamp = |v: f32| v.round().clamp(0.0, sz - 1.0) as u32;
    let (a, b, mut c, mut d) = (clamp(x0), clamp(y0), clamp(x1), clamp(y1));
    if c <= a {
        c = (a + 1).min(sz as u32 - 1);
    }
    if d <= b {
        d = (b + 1).min(sz as u32 - 1);
    }
    [a, b, c, d]
}

/// The garment's colour at canonical position `(u, v)`.
fn paint(g: &GarmentSpec, u: f32, v: f32) -> Rgb {
    let base = g.base_colour();
    let acc = g.accent;
    let sc = 1.0 + 0.15 * g.jitter[4];
    let ph = g.jitter[5];
    let fr = |x: f32| x - x.floor();
    let mut c = match g.texture {
        Texture::Solid | Texture::Graphic => base,
        Texture::Stripe => {
            if fr((v + ph) / (0.09 * sc)) < 0.42 {
                acc
            } else {
                base
            }
        }
        Texture::Dot => {
            let cell = 0.1 * sc;
            let row = ((v + ph) / cell).floor();
            let fu = fr((u + ph) / cell + 0.5 * row);
            let fv = fr((v + ph) / cell);
            if (fu - 0.5).powi(2) + (fv - 0.5).powi(2) < 0.28f32.powi(2) {
                acc
            } else {
                base
            }
        }
        Texture::Plaid => {
            let a = (fr((u + ph) / (0.16 * sc)) < 0.3) as u8 as f32;
            let b = (fr((v + ph) / (0.16 * sc)) < 0.3) as u8 as f32;
            mix(base, acc, 0.42 * (a + b))
        }
        Texture::Chevron => {
            let w = 0.12 * sc;
            let zig = (fr(u / w) - 0.5).abs() * w;
            if fr((v + ph + zig) / (0.1 * sc)) < 0.45 {
                acc
            } else {
                base
            }
        }
        Texture::Floral => {
            let cell = 0.15 * sc;
            let (gu, gv) = ((u + ph) / cell, (v + ph) / cell);
            let (iu, iv) = (gu.floor() as i32, gv.floor() as i32);
            let cu = 0.3 + 0.4 * hash01(iu, iv, 1);
            let cv = 0.3 + 0.4 * hash01(iu, iv, 2);
            let (du, dv) = ((gu - iu as f32 - cu) * cell, (gv - iv as f32 - cv) * cell);
            let r = (du * du + dv * dv).sqrt();
            let phi = dv.atan2(du) + 6.0 * hash01(iu, iv, 3);
            if r < 0.012 * sc {
                [230.0, 200.0, 60.0]
            } else if r < 0.042 * sc * (0.55 + 0.45 * (5.0 * phi).cos()) {
                acc
            } else {
                base
            }
        }
    };
    match g.fabric {
        Fabric::Denim => c = scale(c, 1.0 + 0.1 * ((u + v) * 180.0).sin()),
        Fabric::Knit => c = scale(c, 1.0 + 0.11 * (u * 125.0).sin()),
        Fabric::Leather => {
            let h = (-(u * 0.7 - v * 0.4 - 0.05).powi(2) / 0.004).exp();
            c = scale(c, 0.85);
            c = [c[0] + 70.0 * h, c[1] + 70.0 * h, c[2] + 70.0 * h];
        }
        Fabric::FauxFur => {
            let q = hash01((u * 90.0).floor() as i32, (v * 90.0).floor() as i32, 7);
            c = scale(c, 0.8 + 0.4 * q);
        }
        Fabric::Cotton | Fabric::Chiffon => {}
    }
    c
}

fn muted(rng: &mut impl Rng) -> Rgb {
    let g = rng.gen_range(70.0f32..210.0);
    [
        g + rng.gen_range(-35.0..35.0),
        g + rng.gen_range(-35.0..35.0),
        g + rng.gen_range(-35.0..35.0),
    ]
}

fn background(rng: &mut impl Rng, n: usize, backdrop: Backdrop) -> Canvas {
    let sz = n as f32;
    if backdrop == Backdrop::Studio {
        let g = rng.gen_range(215.0f32..245.0);
        let tint = [
            rng.gen_range(-8.0f32..8.0),
            rng.gen_range(-8.0f32..8.0),
            0.0,
        ];
        let mut cv = Canvas::new(n, n, [g + tint[0], g + tint[1], g]);
        for y in 0..n {
            let k = 1.0 - 0.08 * y as f32 / sz;
            for x in 0..n {
                let p = &mut cv.px[y * n + x];
                *p = scale(*p, k);
            }
        }
        return cv;
    }
    let wall = muted(rng);
    let floor = muted(rng);
    let horizon = rng.gen_range(0.55f32..0.9) * sz;
    let mut cv = Canvas::new(n, n, wall);
    cv.fill_polygon_solid(&[(0.0, horizon), (sz, horizon), (sz, sz), (0.0, sz)], floor);
    let count = match backdrop {
        Backdrop::Busy => rng.gen_range(10..20),
        _ => rng.gen_range(3..9),
    };
    for _ in 0..count {
        let col = if backdrop == Backdrop::Busy && rng.gen_bool(0.5) {
            [
                rng.gen_range(20.0f32..255.0),
                rng.gen_range(20.0f32..255.0),
                rng.gen_range(20.0f32..255.0),
            ]
        } else {
            muted(rng)
        };
        let c = (rng.gen_range(0.0..sz), rng.gen_range(0.0..sz));
        let r = rng.gen_range(0.04f32..0.22) * sz;
        match rng.gen_range(0..4) {
            0 => cv.disc(c, r * 0.6, col),
            1 => cv.line(
                c,
                (
                    c.0 + rng.gen_range(-r..r) * 2.0,
                    c.1 + rng.gen_range(-r..r) * 2.0,
                ),
                rng.gen_range(1.0f32..4.0),
                col,
            ),
            _ => {
                let a = rng.gen_range(0.0f32..std::f32::consts::PI);
                let (s, co) = a.sin_cos();
                let (hw, hh) = (r, r * rng.gen_range(0.3f32..1.0));
                let pts: Vec<Pt> = [(-hw, -hh), (hw, -hh), (hw, hh), (-hw, hh)]
                    .iter()
                    .map(|p| (c.0 + p.0 * co - p.1 * s, c.1 + p.0 * s + p.1 * co))
                    .collect();
                let striped = rng.gen_bool(0.3);
                let col2 = scale(col, 0.7);
                cv.fill_polygon(&pts, |x, _, _| {
                    if striped && (x / 3) & 1 == 0 {
                        col2
                    } else {
                        col
                    }
                });
            }
        }
    }
    cv
}

/// An occluding object near `target`: a polygon and its colour.
fn occluder(rng: &mut impl Rng, target: Pt, sz: f32, skin: Rgb) -> (Vec<Pt>, Rgb) {
    let r = rng.gen_range(0.06f32..0.1) * sz;
    let c = (
        target.0 + rng.gen_range(-0.4f32..0.4) * r,
        target.1 + rng.gen_range(-0.4f32..0.4) * r,
    );
    let ang = rng.gen_range(0.0f32..std::f32::consts::PI);
    let (s, co) = ang.sin_cos();
    let rot = |p: Pt| (c.0 + p.0 * co - p.1 * s, c.1 + p.0 * s + p.1 * co);
    match rng.gen_range(0..4) {
        // A hand / forearm.
        0 => (
            (0..16)
                .map(|i| {
                    let t = std::f32::consts::TAU * i as f32 / 16.0;
                    rot((1.7 * r * t.cos(), 0.65 * r * t.sin()))
                })
                .collect(),
            skin,
        ),
        // A bag.
        1 => (
            [
                (-r, -0.8 * r),
                (r, -0.8 * r),
                (1.1 * r, 0.8 * r),
                (-1.1 * r, 0.8 * r),
            ]
            .iter()
            .map(|p| rot(*p))
            .collect(),
            [
                rng.gen_range(30.0f32..200.0),
                rng.gen_range(20.0f32..120.0),
                rng.gen_range(20.0f32..120.0),
            ],
        ),
        // A leafy blob.
        2 => (
            (0..14)
                .map(|i| {
                    let t = std::f32::consts::TAU * i as f32 / 14.0;
                    let rr = r * (0.75 + 0.5 * rng.gen::<f32>());
                    (c.0 + rr * t.cos(), c.1 + rr * t.sin())
                })
                .collect(),
            [
                rng.gen_range(30.0f32..70.0),
                rng.gen_range(100.0f32..160.0),
                50.0,
            ],
        ),
        // A phone / box.
        _ => (
            [(-0.6 * r, -r), (0.6 * r, -r), (0.6 * r, r), (-0.6 * r, r)]
                .iter()
                .map(|p| rot(*p))
                .collect(),
            muted(rng),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::synth::labels::Kind;

    fn view() -> View {
        View {
            back: false,
            fill: 0.7,
            rotation: 0.1,
            flip: false,
            squash: 1.0,
            offset: (0.0, 0.0),
            light: 1.0,
            backdrop: Backdrop::Indoor,
            occluders: 0,
            cut: false,
            consumer: false,
        }
    }

    #[test]
    fn render_is_deterministic_and_landmarks_sit_inside_the_bbox() {
        let mut rng = ChaCha8Rng::seed_from_u64(5);
        for (kind, _) in Kind::ALL {
            let g = GarmentSpec::sample(&mut rng, kind);
            let a = render(&g, &view(), 96, 11);
            let b = render(&g, &view(), 96, 11);
            assert_eq!(a.rgb, b.rgb);
            assert_eq!(a.rgb.len(), 96 * 96 * 3);
            let [x1, y1, x2, y2] = a.bbox;
            assert!(x1 < x2 && y1 < y2);
            for l in a.landmarks.iter().flatten() {
                assert_eq!(l.vis, 0);
                assert!(l.x + 2 >= x1 && l.x <= x2 + 2 && l.y + 2 >= y1 && l.y <= y2 + 2);
            }
        }
    }

    #[test]
    fn flip_keeps_left_slots_on_the_left_and_cuts_truncate() {
        let mut rng = ChaCha8Rng::seed_from_u64(9);
        let g = GarmentSpec::sample(&mut rng, Kind::Dress);
        let mut v = view();
        v.flip = true;
        let r = render(&g, &v, 128, 1);
        for (l, rr) in [(0, 1), (2, 3), (4, 5), (6, 7)] {
            let (a, b) = (r.landmarks[l].unwrap(), r.landmarks[rr].unwrap());
            assert!(a.x <= b.x, "slot {l} right of slot {rr}");
        }
        let mut truncated = 0;
        let mut occluded = 0;
        for seed in 0..40 {
            let mut v = view();
            v.cut = true;
            v.occluders = 1;
            let r = render(&g, &v, 96, seed);
            truncated += r.landmarks.iter().flatten().filter(|l| l.vis == 2).count();
            occluded += r.landmarks.iter().flatten().filter(|l| l.vis == 1).count();
        }
        assert!(truncated >= 20, "{truncated}");
        assert!(occluded >= 20, "{occluded}");
    }
}
