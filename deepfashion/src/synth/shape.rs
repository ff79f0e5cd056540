//! Garment geometry in a canonical frame (x right, y down; y = 0 at the
//! neck line for upper and full garments, at the waist for lower ones; a
//! tee is about one unit tall). Produces the filled parts in drawing order,
//! the detail strokes, and the 8 canonical landmarks at their geometric
//! positions on the outline.

use super::draw::{Pt, Rgb};
use super::garment::{Fit, GarmentSpec, Length, Neckline, Sleeve, Texture};
use super::labels::Kind;

/// How a part is coloured.
#[derive(Debug, Clone, Copy)]
pub enum Fill {
    /// The garment's paint (colour, texture, fabric) times a shade factor.
    Main(f32),
    /// A fixed colour.
    Solid(Rgb),
    /// Skin (the wearer showing through a neckline).
    Skin,
}

/// A filled polygon.
#[derive(Debug, Clone)]
pub struct Part {
    /// Vertices in canonical units.
    pub poly: Vec<Pt>,
    /// Colouring.
    pub fill: Fill,
    /// Draw a darker outline.
    pub outline: bool,
}

/// A detail stroke or disc drawn after the parts.
#[derive(Debug, Clone, Copy)]
pub enum Mark {
    /// A line `(a, b, width in canonical units, shade of the main colour)`.
    Line(Pt, Pt, f32, f32),
    /// A disc `(centre, radius, colour)`.
    Disc(Pt, f32, Rgb),
}

/// The drawable garment.
#[derive(Debug, Clone)]
pub struct Shape {
    /// Parts in drawing order.
    pub parts: Vec<Part>,
    /// Details in drawing order.
    pub marks: Vec<Mark>,
    /// The 8 canonical landmarks (None where the garment type has none).
    pub landmarks: [Option<Pt>; 8],
}

fn mirror(pts: &[Pt]) -> Vec<Pt> {
    pts.iter().rev().map(|p| (-p.0, p.1)).collect()
}

/// Close a left-side contour (top to bottom, x <= 0) into a symmetric polygon.
fn symmetric(left: &[Pt]) -> Vec<Pt> {
    let mut poly: Vec<Pt> = left.iter().rev().copied().collect();
    poly.extend(mirror(&poly));
    poly
}

fn fit_k(fit: Fit, tight: f32, loose: f32) -> f32 {
    match fit {
        Fit::Tight => tight,
        Fit::Conventional => 1.0,
        Fit::Loose => loose,
    }
}

/// Build the garment as seen from the front (`back = false`) or the back.
pub fn build(g: &GarmentSpec, back: bool) -> Shape {
    let j = g.jitter;
    let gt = g.kind.garment_type();
    let mut parts = Vec::new();
    let mut marks = Vec::new();
    let mut lm: [Option<Pt>; 8] = [None; 8];

    // Upper part (upper and full garments).
    let nw = 0.085 + 0.01 * j[0];
    let sw = 0.29 * fit_k(g.fit, 0.9, 1.12) * (1.0 + 0.04 * j[1]);
    let waist_y = if gt == 3 { 0.42 } else { 0.0 };
    let mut left: Vec<Pt> = Vec::new();
    if gt != 2 {
        let s = (-sw, 0.07);
        let a = (-sw * 0.95, 0.33);
        left.push((-nw, 0.0));
        if g.sleeve == Sleeve::Sleeveless {
            let mid_hole = (-sw * 0.78, 0.12);
            left.push((-nw - 0.07, 0.0));
            left.push(mid_hole);
            left.push(a);
            lm[2] = Some(((mid_hole.0 + a.0) * 0.5, (mid_hole.1 + a.1) * 0.5));
        } else {
            left.push(s);
            left.push(a);
            let (ang, len, w_end): (f32, f32, f32) = if g.sleeve == Sleeve::Long {
                (0.42 + 0.08 * j[3], 0.74, 0.11)
            } else {
                (0.95 + 0.08 * j[3], 0.24, 0.15)
            };
            let d = (-ang.sin(), ang.cos());
            let n_in = (ang.cos(), ang.sin());
            let outer = (s.0 + d.0 * len, s.1 + d.1 * len);
            let inner = (outer.0 + n_in.0 * w_end, outer.1 + n_in.1 * w_end);
            let sleeve = vec![s, outer, inner, a];
            lm[2] = Some(((outer.0 + inner.0) * 0.5, (outer.1 + inner.1) * 0.5));
            if matches!(g.kind, Kind::Sweater | Kind::Hoodie) {
                // Ribbed cuff.
                let k = 0.1;
                let o2 = (outer.0 - d.0 * k, outer.1 - d.1 * k);
                let i2 = (inner.0 - d.0 * k, inner.1 - d.1 * k);
                marks.push(Mark::Line(o2, i2, 0.035, 0.7));
            }
            parts.push(Part {
                poly: mirror(&sleeve),
                fill: Fill::Main(0.93),
                outline: true,
            });
            parts.push(Part {
                poly: sleeve,
                fill: Fill::Main(0.93),
                outline: true,
            });
        }
        lm[0] = Some((-nw, 0.0));
    }
    if let Some(p) = lm[2] {
        lm[3] = Some((-p.0, p.1));
    }
    if let Some(p) = lm[0] {
        lm[1] = Some((-p.0, p.1));
    }

    // Hood behind the neck (front view).
    if g.kind == Kind::Hoodie && !back {
        let hood: Vec<Pt> = (0..=10)
            .map(|i| {
                let t = std::f32::consts::PI * (1.0 + i as f32 / 10.0);
                (0.2 * t.cos(), 0.03 + 0.21 * t.sin())
            })
            .collect();
        parts.push(Part {
            poly: hood,
            fill: Fill::Main(0.72),
            outline: true,
        });
    }

    // Body below the shoulders / from the waist.
    let ww = if gt == 3 {
        sw * fit_k(g.fit, 0.72, 0.9).max(0.72) * 0.95
    } else {
        0.2 * fit_k(g.fit, 0.92, 1.1) * (1.0 + 0.04 * j[1])
    };
    let legs = matches!(
        g.kind,
        Kind::Jeans | Kind::Shorts | Kind::Leggings | Kind::Jumpsuit | Kind::Romper
    );
    let skirt = matches!(g.kind, Kind::Skirt | Kind::Dress);
    let bottom_y;
    if gt == 1 {
        let l = 0.92 * (1.0 + 0.05 * j[2]) + if g.kind == Kind::Blazer { 0.08 } else { 0.0 };
        let hw = sw * fit_k(g.fit, 0.9, 1.08);
        left.push((-hw, l));
        lm[6] = Some((-hw, l));
        bottom_y = l;
        parts.push(Part {
            poly: symmetric(&left),
            fill: Fill::Main(1.0),
            outline: true,
        });
        if matches!(g.kind, Kind::Sweater | Kind::Hoodie) {
            parts.push(Part {
                poly: vec![(-hw, l - 0.07), (hw, l - 0.07), (hw, l), (-hw, l)],
                fill: Fill::Main(0.78),
                outline: true,
            });
        }
    } else {
        if gt == 3 {
            left.push((-ww, waist_y));
        } else {
            left.push((-ww, 0.0));
        }
        lm[4] = Some((-ww, waist_y));
        if skirt {
            let len = match (g.length, gt) {
                (Length::Mini, 2) => 0.42,
                (Length::Midi, 2) => 0.65,
                (Length::Maxi, 2) => 0.95,
                (Length::Mini, _) => 0.5,
                (Length::Midi, _) => 0.78,
                _ => 1.12,
            } * (1.0 + 0.04 * j[2]);
            let flare = if g.a_line { 0.32 } else { 0.08 } * len;
            let hem = (-(ww + flare), waist_y + len);
            left.push(hem);
            lm[6] = Some(hem);
            bottom_y = waist_y + len;
            let poly = symmetric(&left);
            parts.push(Part {
                poly,
                fill: Fill::Main(1.0),
                outline: true,
            });
            if g.pleated {
                for i in 1..6 {
                    let t = -1.0 + 2.0 * i as f32 / 6.0;
                    marks.push(Mark::Line(
                        (t * ww, waist_y + 0.04),
                        (t * (ww + flare), waist_y + len),
                        0.012,
                        0.62,
                    ));
                }
            }
        } else {
            let (lg, lw, gap) = match g.kind {
                Kind::Shorts | Kind::Romper => (0.4, 0.1 * fit_k(g.fit, 0.85, 1.15), 0.0),
                Kind::Leggings => (0.98, 0.05, 0.035),
                _ => (1.0, 0.075 * fit_k(g.fit, 0.8, 1.3), 0.03),
            };
            let lg = lg * (1.0 + 0.03 * j[2]);
            let hip = (-ww * 1.07, waist_y + 0.18);
            left.push(hip);
            let outer = (-(gap + 2.0 * lw).max(ww * 0.9), waist_y + lg);
            let lw = (-outer.0 - gap) * 0.5;
            let inner = (-gap, waist_y + lg);
            let crotch = (0.0, waist_y + 0.28);
            // Top of the left side -> left leg -> crotch -> right leg -> up the right side.
            let mut poly: Vec<Pt> = left.clone();
            poly.push(outer);
            poly.push(inner);
            poly.push(crotch);
            poly.push((gap, waist_y + lg));
            poly.push((-outer.0, outer.1));
            poly.extend(mirror(&left));
            parts.push(Part {
                poly,
                fill: Fill::Main(1.0),
                outline: true,
            });
            lm[6] = Some((-(gap + lw), waist_y + lg));
            bottom_y = waist_y + lg;
            marks.push(Mark::Line(
                (0.0, waist_y + 0.05),
                (0.0, crotch.1 - 0.02),
                0.012,
                0.6,
            ));
        }
        if gt == 2 {
            // Waistband.
            parts.push(Part {
                poly: vec![
                    (-ww, 0.0),
                    (ww, 0.0),
                    (ww * 1.01, 0.055),
                    (-ww * 1.01, 0.055),
                ],
                fill: Fill::Main(0.82),
                outline: true,
            });
        }
        if g.pocket && legs && !back {
            for s in [-1.0f32, 1.0] {
                marks.push(Mark::Line(
                    (s * ww * 0.55, waist_y + 0.01),
                    (s * ww * 0.98, waist_y + 0.15),
                    0.014,
                    0.6,
                ));
            }
        }
        if g.belted {
            let y = waist_y;
            parts.push(Part {
                poly: vec![
                    (-ww * 1.03, y - 0.03),
                    (ww * 1.03, y - 0.03),
                    (ww * 1.03, y + 0.03),
                    (-ww * 1.03, y + 0.03),
                ],
                fill: Fill::Solid([38.0, 28.0, 22.0]),
                outline: false,
            });
            marks.push(Mark::Disc((0.0, y), 0.04, [200.0, 170.0, 60.0]));
        }
    }
    if let Some(p) = lm[4] {
        lm[5] = Some((-p.0, p.1));
    }
    if let Some(p) = lm[6] {
        lm[7] = Some((-p.0, p.1));
    }
    let _ = bottom_y;

    // Upper-body details.
    if gt != 2 {
        neck_details(g, back, nw, &mut parts, &mut marks);
        if g.kind == Kind::Hoodie && !back {
            parts.push(Part {
                poly: vec![(-0.15, 0.52), (0.15, 0.52), (0.2, 0.76), (-0.2, 0.76)],
                fill: Fill::Main(0.86),
                outline: true,
            });
        }
        if g.kind == Kind::Hoodie && back {
            parts.push(Part {
                poly: (0..=10)
                    .map(|i| {
                        let t = std::f32::consts::PI * i as f32 / 10.0;
                        (0.17 * t.cos(), 0.02 + 0.26 * t.sin())
                    })
                    .collect(),
                fill: Fill::Main(0.8),
                outline: true,
            });
        }
        if g.pocket && g.kind == Kind::Tee && !back {
            parts.push(Part {
                poly: vec![(0.08, 0.2), (0.17, 0.2), (0.17, 0.3), (0.08, 0.3)],
                fill: Fill::Main(0.9),
                outline: true,
            });
        }
        if g.kind == Kind::Blazer && g.pocket && !back {
            for s in [-1.0f32, 1.0] {
                marks.push(Mark::Line((s * 0.08, 0.72), (s * 0.22, 0.72), 0.02, 0.6));
            }
        }
        if g.button && !back {
            let (y0, y1) = if g.kind == Kind::Blazer {
                (0.5, 0.72)
            } else {
                (0.2, waist_y.max(0.3))
            };
            let n = if g.kind == Kind::Blazer { 2 } else { 3 };
            for i in 0..n {
                let y = y0 + (y1 - y0) * i as f32 / (n - 1).max(1) as f32;
                marks.push(Mark::Disc((0.0, y), 0.022, [40.0, 36.0, 34.0]));
            }
        }
        if g.texture == Texture::Graphic && !back {
            let c = (0.0, if gt == 3 { 0.25 } else { 0.36 });
            let star: Vec<Pt> = (0..10)
                .map(|i| {
                    let a = std::f32::consts::PI * (i as f32 / 5.0) - std::f32::consts::FRAC_PI_2;
                    let r = if i % 2 == 0 { 0.11 } else { 0.05 };
                    (c.0 + r * a.cos(), c.1 + r * a.sin())
                })
                .collect();
            parts.push(Part {
                poly: star,
                fill: Fill::Solid(g.accent),
                outline: false,
            });
        }
    }
    Shape {
        parts,
        marks,
        landmarks: lm,
    }
}

fn neck_details(
    g: &GarmentSpec,
    back: bool,
    nw: f32,
    parts: &mut Vec<Part>,
    marks: &mut Vec<Mark>,
) {
    let curve = |depth: f32, width: f32| -> Vec<Pt> {
        (0..=8)
            .map(|i| {
                let t = std::f32::consts::PI * i as f32 / 8.0;
                (-width * t.cos(), depth * t.sin())
            })
            .collect()
    };
    if back {
        parts.push(Part {
            poly: curve(0.035, nw),
            fill: Fill::Main(0.55),
            outline: false,
        });
        return;
    }
    if g.kind == Kind::Blazer {
        parts.push(Part {
            poly: vec![(-nw, 0.0), (nw, 0.0), (0.0, 0.44)],
            fill: Fill::Solid([238.0, 238.0, 236.0]),
            outline: false,
        });
        for s in [-1.0f32, 1.0] {
            parts.push(Part {
                poly: vec![(s * nw, 0.0), (s * (nw + 0.08), 0.1), (s * 0.012, 0.44)],
                fill: Fill::Main(0.75),
                outline: true,
            });
        }
        return;
    }
    let poly = match g.neckline {
        Neckline::Crew | Neckline::NoNeck => curve(0.075, nw),
        Neckline::V => vec![(-nw, 0.0), (0.0, 0.25), (nw, 0.0)],
        Neckline::Scoop => curve(0.18, nw),
        Neckline::Square => vec![(-nw, 0.0), (-nw, 0.13), (nw, 0.13), (nw, 0.0)],
    };
    for w in poly.windows(2) {
        marks.push(Mark::Line(w[0], w[1], 0.022, 0.7));
    }
    parts.push(Part {
        poly,
        fill: Fill::Skin,
        outline: false,
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::synth::draw::point_in_polygon;
    use crate::synth::labels::Kind;
    use rand::SeedableRng;

    #[test]
    fn landmarks_match_garment_type_and_lie_on_the_garment() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
        for (kind, _) in Kind::ALL {
            for _ in 0..20 {
                let g = GarmentSpec::sample(&mut rng, kind);
                let s = build(&g, false);
                let present: Vec<usize> = (0..8).filter(|&i| s.landmarks[i].is_some()).collect();
                let want: Vec<usize> = match kind.garment_type() {
                    1 => vec![0, 1, 2, 3, 6, 7],
                    2 => vec![4, 5, 6, 7],
                    _ => (0..8).collect(),
                };
                assert_eq!(present, want, "{kind:?}");
                // Left slots are left of their right partners.
                for (l, r) in [(0, 1), (2, 3), (4, 5), (6, 7)] {
                    if let (Some(a), Some(b)) = (s.landmarks[l], s.landmarks[r]) {
                        assert!(a.0 < b.0, "{kind:?} slot {l}");
                    }
                }
                // Every landmark is on or next to a garment part.
                for p in s.landmarks.iter().flatten() {
                    let near = s.parts.iter().any(|part| {
                        [
                            (0.0, 0.0),
                            (0.02, -0.02),
                            (-0.02, -0.02),
                            (0.02, 0.02),
                            (-0.02, 0.02),
                        ]
                        .iter()
                        .any(|d| point_in_polygon(&part.poly, (p.0 + d.0, p.1 + d.1)))
                    });
                    assert!(near, "{kind:?} landmark {p:?} off the garment");
                }
            }
        }
    }
}
