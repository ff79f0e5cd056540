//! A garment: what it is (kind, colour, texture, fabric, neckline, sleeves,
//! length, fit, details), sampled so that the category follows from shape
//! and every attribute is visible; plus its labels (coarse and fine
//! attribute vectors).

use rand::Rng;

use super::labels::{coarse_index, fine_index, Kind, COARSE_ATTRIBUTES, COLOURS, FINE_ATTRIBUTES};

/// Surface pattern.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Texture {
    /// One colour.
    Solid,
    /// Five-petal flowers scattered on a grid.
    Floral,
    /// Horizontal stripes.
    Stripe,
    /// Polka dots.
    Dot,
    /// Crossed translucent bands.
    Plaid,
    /// Zig-zag stripes.
    Chevron,
    /// One emblem on the chest.
    Graphic,
}

/// Material look.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fabric {
    /// Flat.
    Cotton,
    /// Diagonal twill, blue family.
    Denim,
    /// Translucent.
    Chiffon,
    /// Dark and glossy.
    Leather,
    /// Vertical ribs.
    Knit,
    /// Grainy fur.
    FauxFur,
}

/// Neckline shape (upper and full garments).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Neckline {
    /// Shallow round.
    Crew,
    /// Triangle.
    V,
    /// Deep round.
    Scoop,
    /// Rectangle.
    Square,
    /// Lower-body garment.
    NoNeck,
}

/// Sleeves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sleeve {
    /// Lower-body garment (no sleeves at all).
    Absent,
    /// Straps, open armholes.
    Sleeveless,
    /// Short sleeves.
    Short,
    /// Long sleeves.
    Long,
}

/// Hem length of skirts and dresses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Length {
    /// Not a skirt or dress.
    NotApplicable,
    /// Above the knee.
    Mini,
    /// Around the knee.
    Midi,
    /// To the ankle.
    Maxi,
}

/// Fit (width of the silhouette).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fit {
    /// Narrow.
    Tight,
    /// Regular.
    Conventional,
    /// Wide.
    Loose,
}

/// Everything that defines one garment (an item); views of the same item
/// share it.
#[derive(Debug, Clone)]
pub struct GarmentSpec {
    /// What is drawn.
    pub kind: Kind,
    /// Index into [`COLOURS`].
    pub colour: usize,
    /// Second colour used by patterns.
    pub accent: [f32; 3],
    /// Surface pattern.
    pub texture: Texture,
    /// Material look.
    pub fabric: Fabric,
    /// Neckline.
    pub neckline: Neckline,
    /// Sleeves.
    pub sleeve: Sleeve,
    /// Skirt/dress length.
    pub length: Length,
    /// Fit.
    pub fit: Fit,
    /// Flared (a-line) skirt part.
    pub a_line: bool,
    /// Pleat lines on the skirt part.
    pub pleated: bool,
    /// Visible pocket(s).
    pub pocket: bool,
    /// Buttons down the front.
    pub button: bool,
    /// A belt at the waist.
    pub belted: bool,
    /// Pattern scale and phase, geometry jitter (per item).
    pub jitter: [f32; 6],
}

/// Weighted choices.
type Choices<'a, T> = &'a [(T, u32)];

fn pick<T: Copy>(rng: &mut impl Rng, items: &[(T, u32)]) -> T {
    let total: u32 = items.iter().map(|i| i.1).sum();
    let mut r = rng.gen_range(0..total);
    for &(v, w) in items {
        if r < w {
            return v;
        }
        r -= w;
    }
    items[items.len() - 1].0
}

impl GarmentSpec {
    /// Sample a garment of the given kind.
    pub fn sample(rng: &mut impl Rng, kind: Kind) -> Self {
        use Fabric as F;
        use Texture as T;
        let gt = kind.garment_type();
        let any_texture: &[(Texture, u32)] = &[
            (T::Solid, 30),
            (T::Floral, 12),
            (T::Stripe, 14),
            (T::Dot, 12),
            (T::Plaid, 10),
            (T::Chevron, 8),
            (T::Graphic, 10),
        ];
        let no_graphic: &[(Texture, u32)] = &any_texture[..6];
        let (texture_set, fabric_set): (Choices<Texture>, Choices<Fabric>) = match kind {
            Kind::Tee => (
                any_texture,
                &[(F::Cotton, 6), (F::Knit, 2), (F::Chiffon, 1)],
            ),
            Kind::Tank => (no_graphic, &[(F::Cotton, 5), (F::Knit, 2), (F::Chiffon, 3)]),
            Kind::Sweater => (
                &[
                    (T::Solid, 5),
                    (T::Stripe, 3),
                    (T::Plaid, 1),
                    (T::Chevron, 2),
                ],
                &[(F::Knit, 6), (F::Cotton, 1), (F::FauxFur, 2)],
            ),
            Kind::Hoodie => (
                &[
                    (T::Solid, 6),
                    (T::Stripe, 1),
                    (T::Graphic, 3),
                    (T::Plaid, 1),
                ],
                &[(F::Cotton, 5), (F::Knit, 2), (F::FauxFur, 2)],
            ),
            Kind::Blazer => (
                &[(T::Solid, 6), (T::Plaid, 3), (T::Stripe, 1)],
                &[(F::Cotton, 4), (F::Leather, 2), (F::Denim, 1)],
            ),
            Kind::Jeans => (&[(T::Solid, 1)], &[(F::Denim, 5), (F::Cotton, 1)]),
            Kind::Shorts => (
                &[(T::Solid, 4), (T::Stripe, 1), (T::Floral, 1), (T::Plaid, 1)],
                &[(F::Denim, 3), (F::Cotton, 3), (F::Leather, 1)],
            ),
            Kind::Skirt => (
                no_graphic,
                &[
                    (F::Cotton, 3),
                    (F::Chiffon, 2),
                    (F::Leather, 1),
                    (F::Denim, 1),
                    (F::Knit, 1),
                ],
            ),
            Kind::Leggings => (
                &[(T::Solid, 5), (T::Dot, 1), (T::Floral, 1), (T::Stripe, 1)],
                &[(F::Knit, 3), (F::Leather, 1), (F::Cotton, 2)],
            ),
            Kind::Dress => (
                any_texture,
                &[
                    (F::Cotton, 4),
                    (F::Chiffon, 3),
                    (F::Knit, 2),
                    (F::Leather, 1),
                ],
            ),
            Kind::Jumpsuit | Kind::Romper => (
                any_texture,
                &[(F::Cotton, 4), (F::Chiffon, 2), (F::Denim, 1), (F::Knit, 1)],
            ),
        };
        let texture = pick(rng, texture_set);
        let fabric = pick(rng, fabric_set);
        let colour = if fabric == F::Denim {
            pick(rng, &[(4usize, 5), (3, 3), (0, 2), (8, 1)])
        } else if fabric == F::Leather {
            pick(rng, &[(0usize, 6), (9, 2), (2, 1), (3, 1)])
        } else {
            rng.gen_range(0..COLOURS.len())
        };
        let base = COLOURS[colour].1;
        // A contrasting accent: light on dark, dark on light.
        let lum = 0.3 * base[0] + 0.59 * base[1] + 0.11 * base[2];
        let accent = loop {
            let c = COLOURS[rng.gen_range(0..COLOURS.len())].1;
            let l = 0.3 * c[0] + 0.59 * c[1] + 0.11 * c[2];
            if (l - lum).abs() > 60.0 {
                break c;
            }
        };
        let neckline = match kind {
            _ if gt == 2 => Neckline::NoNeck,
            Kind::Blazer => Neckline::V,
            Kind::Hoodie => Neckline::Crew,
            Kind::Tank => pick(
                rng,
                &[
                    (Neckline::Scoop, 5),
                    (Neckline::V, 2),
                    (Neckline::Square, 2),
                ],
            ),
            Kind::Tee | Kind::Sweater => pick(
                rng,
                &[(Neckline::Crew, 6), (Neckline::V, 2), (Neckline::Scoop, 1)],
            ),
            _ => pick(
                rng,
                &[
                    (Neckline::Crew, 3),
                    (Neckline::V, 3),
                    (Neckline::Scoop, 2),
                    (Neckline::Square, 2),
                ],
            ),
        };
        let sleeve = match kind {
            _ if gt == 2 => Sleeve::Absent,
            Kind::Tee => Sleeve::Short,
            Kind::Tank => Sleeve::Sleeveless,
            Kind::Sweater | Kind::Hoodie | Kind::Blazer => Sleeve::Long,
            Kind::Romper => pick(rng, &[(Sleeve::Sleeveless, 3), (Sleeve::Short, 2)]),
            _ => pick(
                rng,
                &[
                    (Sleeve::Sleeveless, 4),
                    (Sleeve::Short, 3),
                    (Sleeve::Long, 2),
                ],
            ),
        };
        let length = match kind {
            Kind::Skirt => pick(
                rng,
                &[(Length::Mini, 5), (Length::Midi, 4), (Length::Maxi, 1)],
            ),
            Kind::Dress => pick(
                rng,
                &[(Length::Mini, 4), (Length::Midi, 4), (Length::Maxi, 3)],
            ),
            _ => Length::NotApplicable,
        };
        let fit = match kind {
            Kind::Leggings => Fit::Tight,
            Kind::Hoodie => pick(rng, &[(Fit::Conventional, 2), (Fit::Loose, 2)]),
            _ => pick(
                rng,
                &[(Fit::Tight, 2), (Fit::Conventional, 5), (Fit::Loose, 2)],
            ),
        };
        let skirted = matches!(kind, Kind::Skirt | Kind::Dress);
        let a_line = skirted && rng.gen_bool(0.55);
        let pleated = skirted && texture == T::Solid && rng.gen_bool(0.35);
        let pocket = match kind {
            Kind::Hoodie => true,
            Kind::Jeans | Kind::Shorts | Kind::Blazer => rng.gen_bool(0.6),
            Kind::Tee | Kind::Jumpsuit => rng.gen_bool(0.2),
            _ => false,
        };
        let button = match kind {
            Kind::Blazer => true,
            Kind::Dress | Kind::Jumpsuit | Kind::Romper => rng.gen_bool(0.2),
            _ => false,
        };
        let belted = match kind {
            Kind::Dress | Kind::Jumpsuit | Kind::Romper => rng.gen_bool(0.3),
            Kind::Jeans | Kind::Shorts => rng.gen_bool(0.25),
            _ => false,
        };
        let mut jitter = [0.0f32; 6];
        for j in &mut jitter {
            *j = rng.gen_range(-1.0..1.0);
        }
        Self {
            kind,
            colour,
            accent,
            texture,
            fabric,
            neckline,
            sleeve,
            length,
            fit,
            a_line,
            pleated,
            pocket,
            button,
            belted,
            jitter,
        }
    }

    /// The main colour.
    pub fn base_colour(&self) -> [f32; 3] {
        COLOURS[self.colour].1
    }

    /// Names of the positive coarse attributes (3-7 per garment).
    pub fn coarse_positive_names(&self) -> Vec<&'static str> {
        let mut v = vec![COLOURS[self.colour].0];
        v.push(match self.texture {
            Texture::Solid => "",
            Texture::Floral => "floral",
            Texture::Stripe => "stripe",
            Texture::Dot => "dot",
            Texture::Plaid => "plaid",
            Texture::Chevron => "abstract chevron print",
            Texture::Graphic => "graphic",
        });
        v.push(match self.fabric {
            Fabric::Cotton => "cotton",
            Fabric::Denim => "denim",
            Fabric::Chiffon => "chiffon",
            Fabric::Leather => "leather",
            Fabric::Knit => "knit",
            Fabric::FauxFur => "faux fur",
        });
        v.push(match (self.fit, self.kind.garment_type()) {
            (Fit::Tight, 2) if self.kind != Kind::Skirt => "skinny",
            (Fit::Tight, _) => "fitted",
            (Fit::Loose, _) => "loose",
            _ => "",
        });
        v.push(match self.length {
            Length::Mini => "mini",
            Length::Midi => "midi",
            Length::Maxi => "maxi",
            Length::NotApplicable => "",
        });
        v.push(match self.neckline {
            Neckline::Crew if self.kind != Kind::Hoodie => "crew neck",
            Neckline::V => "v-neck",
            Neckline::Scoop => "scoop neck",
            Neckline::Square => "square neck",
            _ => "",
        });
        v.push(match self.sleeve {
            Sleeve::Sleeveless => "sleeveless",
            Sleeve::Short => "short sleeve",
            Sleeve::Long => "long sleeve",
            Sleeve::Absent => "",
        });
        for (flag, name) in [
            (self.a_line, "a-line"),
            (self.pleated, "pleated"),
            (self.pocket, "pocket"),
            (self.button, "button"),
            (self.belted, "belted"),
            (self.kind == Kind::Hoodie, "hooded"),
        ] {
            if flag {
                v.push(name);
            }
        }
        v.retain(|n| !n.is_empty());
        v
    }

    /// Coarse attribute vector: true where positive, in
    /// [`COARSE_ATTRIBUTES`] order.
    pub fn coarse_positives(&self) -> Vec<bool> {
        let mut out = vec![false; COARSE_ATTRIBUTES.len()];
        for n in self.coarse_positive_names() {
            if let Some(i) = coarse_index(n) {
                out[i] = true;
            }
        }
        out
    }

    /// Fine attribute vector (0/1, one positive per applicable group), in
    /// [`FINE_ATTRIBUTES`] order.
    pub fn fine_attributes(&self) -> Vec<u8> {
        let mut names = vec![match self.texture {
            Texture::Floral => "floral",
            Texture::Graphic => "graphic",
            Texture::Stripe | Texture::Chevron => "striped",
            Texture::Dot => "embroidered",
            Texture::Plaid => "lattice",
            Texture::Solid if self.pleated => "pleated",
            Texture::Solid => "solid",
        }];
        names.push(match self.sleeve {
            Sleeve::Long => "long_sleeve",
            Sleeve::Short => "short_sleeve",
            Sleeve::Sleeveless => "sleeveless",
            Sleeve::Absent => "",
        });
        names.push(match self.length {
            Length::Maxi => "maxi_length",
            Length::Mini | Length::Midi if self.kind == Kind::Dress => "mini_length",
            _ => "no_dress",
        });
        names.push(match self.neckline {
            Neckline::Crew | Neckline::Scoop => "crew_neckline",
            Neckline::V => "v_neckline",
            Neckline::Square => "square_neckline",
            Neckline::NoNeck => "no_neckline",
        });
        names.push(match self.fabric {
            Fabric::Denim => "denim",
            Fabric::Chiffon => "chiffon",
            Fabric::Cotton => "cotton",
            Fabric::Leather => "leather",
            Fabric::FauxFur => "faux",
            Fabric::Knit => "knit",
        });
        names.push(match self.fit {
            Fit::Tight => "tight",
            Fit::Loose => "loose",
            Fit::Conventional => "conventional",
        });
        let mut out = vec![0u8; FINE_ATTRIBUTES.len()];
        for n in names {
            if let Some(i) = fine_index(n) {
                out[i] = 1;
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn attributes_are_sparse_and_named() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(3);
        let mut total = 0usize;
        let n = 600;
        for i in 0..n {
            let kind = Kind::ALL[i % Kind::ALL.len()].0;
            let g = GarmentSpec::sample(&mut rng, kind);
            for name in g.coarse_positive_names() {
                assert!(coarse_index(name).is_some(), "unknown attribute {name}");
            }
            let pos = g.coarse_positives().iter().filter(|p| **p).count();
            assert!((2..=9).contains(&pos), "{pos} positives for {g:?}");
            total += pos;
            let fine = g.fine_attributes();
            assert!(fine.iter().all(|v| *v <= 1));
            assert!(fine.iter().filter(|v| **v == 1).count() >= 5);
        }
        let mean = total as f32 / n as f32;
        assert!((3.0..=6.0).contains(&mean), "mean positives {mean}");
    }
}
