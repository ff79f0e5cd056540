//! The label vocabularies the synthetic dataset writes: the 50 real
//! DeepFashion categories, the coarse attribute list (a few dozen realistic
//! names in the five coarse groups), the 26 fine attributes in their six
//! groups, and the garment kinds that are actually drawn.

/// The 50 DeepFashion categories in their released order (1-based ids) with
/// their garment type (1 upper, 2 lower, 3 full).
pub const CATEGORIES: [(&str, u8); 50] = [
    ("Anorak", 1),
    ("Blazer", 1),
    ("Blouse", 1),
    ("Bomber", 1),
    ("Button-Down", 1),
    ("Cardigan", 1),
    ("Flannel", 1),
    ("Halter", 1),
    ("Henley", 1),
    ("Hoodie", 1),
    ("Jacket", 1),
    ("Jersey", 1),
    ("Parka", 1),
    ("Peacoat", 1),
    ("Poncho", 1),
    ("Sweater", 1),
    ("Tank", 1),
    ("Tee", 1),
    ("Top", 1),
    ("Turtleneck", 1),
    ("Capris", 2),
    ("Chinos", 2),
    ("Culottes", 2),
    ("Cutoffs", 2),
    ("Gauchos", 2),
    ("Jeans", 2),
    ("Jeggings", 2),
    ("Jodhpurs", 2),
    ("Joggers", 2),
    ("Leggings", 2),
    ("Sarong", 2),
    ("Shorts", 2),
    ("Skirt", 2),
    ("Sweatpants", 2),
    ("Sweatshorts", 2),
    ("Trunks", 2),
    ("Caftan", 3),
    ("Cape", 3),
    ("Coat", 3),
    ("Coverup", 3),
    ("Dress", 3),
    ("Jumpsuit", 3),
    ("Kaftan", 3),
    ("Kimono", 3),
    ("Nightdress", 3),
    ("Onesie", 3),
    ("Robe", 3),
    ("Romper", 3),
    ("Shirtdress", 3),
    ("Sundress", 3),
];

/// The garment kinds that are drawn. Each maps to one category whose look
/// follows from shape alone (sleeves, hem length, legs, flare, hood, lapels).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Short sleeves, straight body.
    Tee,
    /// No sleeves, narrow straps.
    Tank,
    /// Long sleeves, ribbed hem and cuffs.
    Sweater,
    /// Long sleeves, hood, kangaroo pocket.
    Hoodie,
    /// Long sleeves, deep V with lapels, buttons.
    Blazer,
    /// Long straight legs, waistband, fly.
    Jeans,
    /// Short wide legs.
    Shorts,
    /// Trapezoid from the waist, no legs.
    Skirt,
    /// Long narrow legs.
    Leggings,
    /// Top joined to a flared skirt.
    Dress,
    /// Top joined to long legs.
    Jumpsuit,
    /// Top joined to short legs.
    Romper,
}

impl Kind {
    /// Every drawn kind, with its relative frequency (the real set is
    /// imbalanced too).
    pub const ALL: [(Kind, u32); 12] = [
        (Kind::Tee, 14),
        (Kind::Tank, 9),
        (Kind::Sweater, 9),
        (Kind::Hoodie, 7),
        (Kind::Blazer, 7),
        (Kind::Jeans, 8),
        (Kind::Shorts, 8),
        (Kind::Skirt, 8),
        (Kind::Leggings, 6),
        (Kind::Dress, 12),
        (Kind::Jumpsuit, 6),
        (Kind::Romper, 6),
    ];

    /// The category name.
    pub fn category_name(self) -> &'static str {
        match self {
            Kind::Tee => "Tee",
            Kind::Tank => "Tank",
            Kind::Sweater => "Sweater",
            Kind::Hoodie => "Hoodie",
            Kind::Blazer => "Blazer",
            Kind::Jeans => "Jeans",
            Kind::Shorts => "Shorts",
            Kind::Skirt => "Skirt",
            Kind::Leggings => "Leggings",
            Kind::Dress => "Dress",
            Kind::Jumpsuit => "Jumpsuit",
            Kind::Romper => "Romper",
        }
    }

    /// 1-based category id in [`CATEGORIES`].
    pub fn category_id(self) -> usize {
        let name = self.category_name();
        CATEGORIES
            .iter()
            .position(|(n, _)| *n == name)
            .map(|i| i + 1)
            .unwrap_or(1)
    }

    /// Garment type: 1 upper, 2 lower, 3 full.
    pub fn garment_type(self) -> u8 {
        match self {
            Kind::Tee | Kind::Tank | Kind::Sweater | Kind::Hoodie | Kind::Blazer => 1,
            Kind::Jeans | Kind::Shorts | Kind::Skirt | Kind::Leggings => 2,
            Kind::Dress | Kind::Jumpsuit | Kind::Romper => 3,
        }
    }

    /// Product-title words used for Category & Attribute folder names
    /// (`img/<Title>_<Category>/img_XXXXXXXX.jpg`).
    pub fn titles(self) -> &'static [&'static str] {
        match self.garment_type() {
            1 => &[
                "Classic",
                "Relaxed",
                "Sheer_Pleated-Front",
                "Everyday",
                "Cropped",
                "Soft_Woven",
            ],
            2 => &[
                "Mineral_Wash",
                "High-Waisted",
                "Classic",
                "Drawstring",
                "Everyday",
                "Side-Zip",
            ],
            _ => &[
                "Classic",
                "Cutout",
                "Tie-Front",
                "Lightweight",
                "Everyday",
                "Surplice",
            ],
        }
    }

    /// In-shop folder `(gender, folder)` choices.
    pub fn inshop_folders(self) -> &'static [(&'static str, &'static str)] {
        match self {
            Kind::Tee | Kind::Tank => &[("WOMEN", "Tees_Tanks"), ("MEN", "Tees_Tanks")],
            Kind::Sweater => &[("WOMEN", "Sweaters"), ("MEN", "Sweaters")],
            Kind::Hoodie => &[
                ("MEN", "Sweatshirts_Hoodies"),
                ("WOMEN", "Sweatshirts_Hoodies"),
            ],
            Kind::Blazer => &[("WOMEN", "Jackets_Coats"), ("MEN", "Jackets_Vests")],
            Kind::Jeans => &[("WOMEN", "Denim"), ("MEN", "Denim")],
            Kind::Shorts => &[("WOMEN", "Shorts"), ("MEN", "Shorts")],
            Kind::Skirt => &[("WOMEN", "Skirts")],
            Kind::Leggings => &[("WOMEN", "Leggings")],
            Kind::Dress => &[("WOMEN", "Dresses")],
            Kind::Jumpsuit | Kind::Romper => &[("WOMEN", "Rompers_Jumpsuits")],
        }
    }

    /// Consumer-to-shop folder `(group, folder)`.
    pub fn consumer2shop_folder(self) -> (&'static str, &'static str) {
        match self {
            Kind::Tee => ("CLOTHING", "T_Shirt"),
            Kind::Tank => ("CLOTHING", "Vest"),
            Kind::Sweater => ("CLOTHING", "Knitwear"),
            Kind::Hoodie => ("CLOTHING", "Hoodie"),
            Kind::Blazer => ("CLOTHING", "Suit"),
            Kind::Jeans => ("TROUSERS", "Pants"),
            Kind::Shorts => ("TROUSERS", "Shorts"),
            Kind::Skirt => ("DRESSES", "Skirt"),
            Kind::Leggings => ("TROUSERS", "Leggings"),
            Kind::Dress => ("DRESSES", "Dress"),
            Kind::Jumpsuit => ("TROUSERS", "Jumpsuit"),
            Kind::Romper => ("DRESSES", "Romper"),
        }
    }
}

/// Coarse attribute group names (types 1..5 in `list_attr_cloth.txt`).
pub const COARSE_GROUPS: [&str; 5] = ["texture", "fabric", "shape", "part", "style"];

/// Coarse attributes `(name, type)`, sorted by name as in the released file.
/// Every name is visible in the pixels of the drawn garment.
pub const COARSE_ATTRIBUTES: [(&str, u8); 41] = [
    ("a-line", 3),
    ("abstract chevron print", 1),
    ("beige", 5),
    ("belted", 4),
    ("black", 5),
    ("blue", 5),
    ("button", 4),
    ("chiffon", 2),
    ("cotton", 2),
    ("crew neck", 4),
    ("denim", 2),
    ("dot", 1),
    ("faux fur", 2),
    ("fitted", 3),
    ("floral", 1),
    ("graphic", 1),
    ("green", 5),
    ("grey", 5),
    ("hooded", 4),
    ("knit", 2),
    ("leather", 2),
    ("long sleeve", 4),
    ("loose", 3),
    ("maxi", 3),
    ("midi", 3),
    ("mini", 3),
    ("mustard", 5),
    ("navy", 5),
    ("pink", 5),
    ("plaid", 1),
    ("pleated", 3),
    ("pocket", 4),
    ("red", 5),
    ("scoop neck", 4),
    ("short sleeve", 4),
    ("skinny", 3),
    ("sleeveless", 4),
    ("square neck", 4),
    ("stripe", 1),
    ("v-neck", 4),
    ("white", 5),
];

/// Index of a coarse attribute by name.
pub fn coarse_index(name: &str) -> Option<usize> {
    COARSE_ATTRIBUTES.iter().position(|(n, _)| *n == name)
}

/// The 26 fine attributes `(name, type)` in the released order; types are
/// 1 texture, 2 sleeve, 3 length, 4 neckline, 5 fabric, 6 fit.
pub const FINE_ATTRIBUTES: [(&str, u8); 26] = [
    ("floral", 1),
    ("graphic", 1),
    ("striped", 1),
    ("embroidered", 1),
    ("pleated", 1),
    ("solid", 1),
    ("lattice", 1),
    ("long_sleeve", 2),
    ("short_sleeve", 2),
    ("sleeveless", 2),
    ("maxi_length", 3),
    ("mini_length", 3),
    ("no_dress", 3),
    ("crew_neckline", 4),
    ("v_neckline", 4),
    ("square_neckline", 4),
    ("no_neckline", 4),
    ("denim", 5),
    ("chiffon", 5),
    ("cotton", 5),
    ("leather", 5),
    ("faux", 5),
    ("knit", 5),
    ("tight", 6),
    ("loose", 6),
    ("conventional", 6),
];

/// Index of a fine attribute by name.
pub fn fine_index(name: &str) -> Option<usize> {
    FINE_ATTRIBUTES.iter().position(|(n, _)| *n == name)
}

/// Named colours `(name, rgb)`; the name is the coarse "style" attribute.
pub const COLOURS: [(&str, [f32; 3]); 10] = [
    ("black", [34.0, 34.0, 38.0]),
    ("white", [236.0, 234.0, 228.0]),
    ("red", [190.0, 36.0, 44.0]),
    ("navy", [32.0, 44.0, 96.0]),
    ("blue", [70.0, 110.0, 175.0]),
    ("pink", [232.0, 150.0, 172.0]),
    ("green", [46.0, 128.0, 70.0]),
    ("mustard", [214.0, 170.0, 40.0]),
    ("grey", [128.0, 128.0, 130.0]),
    ("beige", [212.0, 190.0, 156.0]),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vocabularies_are_consistent() {
        assert_eq!(CATEGORIES.iter().filter(|c| c.1 == 1).count(), 20);
        assert_eq!(CATEGORIES.iter().filter(|c| c.1 == 2).count(), 16);
        assert_eq!(CATEGORIES.iter().filter(|c| c.1 == 3).count(), 14);
        for (k, _) in Kind::ALL {
            let id = k.category_id();
            assert_eq!(CATEGORIES[id - 1].0, k.category_name());
            assert_eq!(CATEGORIES[id - 1].1, k.garment_type());
        }
        let mut sorted = COARSE_ATTRIBUTES.to_vec();
        sorted.sort_by(|a, b| a.0.cmp(b.0));
        assert_eq!(sorted, COARSE_ATTRIBUTES.to_vec());
        for (name, _) in COLOURS {
            assert_eq!(COARSE_ATTRIBUTES[coarse_index(name).unwrap()].1, 5);
        }
        assert_eq!(fine_index("conventional"), Some(25));
    }
}
