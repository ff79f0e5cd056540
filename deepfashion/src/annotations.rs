//! Readers for the released DeepFashion benchmark folders (DESIGN.md
//! section 5): Category & Attribute (coarse `Anno/` or `Anno_coarse/`, and
//! `Anno_fine/`), In-shop, Consumer-to-shop and Fashion Landmark Detection.
//!
//! [`load`] reads a benchmark folder into a [`Dataset`]: one typed
//! [`ImageRecord`] per image of the evaluation partition, every annotation
//! file joined by image name (the fine split files are row-aligned by
//! definition), landmarks mapped onto the canonical 8 slots of
//! [`crate::contract::LANDMARK_SLOTS`]. Files are streamed with a
//! hand-written tokenizer (split on ASCII whitespace). A malformed row is an
//! error naming file and line; with [`LoadOptions::lenient`] it is skipped
//! and counted in [`Dataset::skipped_rows`] instead.

mod category_attribute;
mod join;
mod landmark_benchmark;
mod listfile;
pub mod parse;
mod retrieval;
mod summary;

pub use summary::summarize;

use crate::contract::{AttributeLabel, CategoryLabel, Labels, NUM_LANDMARKS};
use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

/// The five readable benchmarks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Benchmark {
    /// Category & Attribute Prediction, coarse annotations (`Anno/` or
    /// `Anno_coarse/`): 50 categories, 1000 attributes.
    CategoryAttribute,
    /// Category & Attribute Prediction, fine annotations (`Anno_fine/`):
    /// 50 categories, 26 attributes, row-aligned split files.
    Fine,
    /// In-shop Clothes Retrieval.
    InShop,
    /// Consumer-to-shop Clothes Retrieval.
    Consumer2Shop,
    /// Fashion Landmark Detection.
    Landmarks,
}

impl Benchmark {
    /// All benchmarks, in CLI order.
    pub const ALL: [Benchmark; 5] = [
        Benchmark::CategoryAttribute,
        Benchmark::Fine,
        Benchmark::InShop,
        Benchmark::Consumer2Shop,
        Benchmark::Landmarks,
    ];

    /// The CLI name (`category-attribute`, `fine`, `inshop`,
    /// `consumer2shop`, `landmarks`).
    pub fn cli_name(self) -> &'static str {
        match self {
            Benchmark::CategoryAttribute => "category-attribute",
            Benchmark::Fine => "fine",
            Benchmark::InShop => "inshop",
            Benchmark::Consumer2Shop => "consumer2shop",
            Benchmark::Landmarks => "landmarks",
        }
    }

    /// The released folder name of the benchmark (the fine annotations live
    /// in the Category & Attribute folder).
    pub fn folder_name(self) -> &'static str {
        match self {
            Benchmark::CategoryAttribute | Benchmark::Fine => {
                "Category and Attribute Prediction Benchmark"
            }
            Benchmark::InShop => "In-shop Clothes Retrieval Benchmark",
            Benchmark::Consumer2Shop => "Consumer-to-shop Clothes Retrieval Benchmark",
            Benchmark::Landmarks => "Fashion Landmark Detection Benchmark",
        }
    }

    /// The split names this benchmark's partition uses.
    pub fn splits(self) -> &'static [&'static str] {
        match self {
            Benchmark::InShop => &["train", "query", "gallery"],
            _ => &["train", "val", "test"],
        }
    }
}

impl FromStr for Benchmark {
    type Err = DataError;
    fn from_str(s: &str) -> Result<Self, DataError> {
        Benchmark::ALL
            .into_iter()
            .find(|b| b.cli_name() == s)
            .ok_or_else(|| DataError::UnknownBenchmark(s.to_string()))
    }
}

impl fmt::Display for Benchmark {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.cli_name())
    }
}

/// State of one canonical landmark slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LandmarkState {
    /// The garment type has no such landmark (e.g. no collar on trousers).
    Absent,
    /// Annotated visibility 0.
    Visible,
    /// Annotated visibility 1.
    Occluded,
    /// Annotated visibility 2 (cut by the frame).
    Truncated,
}

/// One landmark slot: state and position in original image pixels.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Landmark {
    /// Annotation state.
    pub state: LandmarkState,
    /// x in original image pixels (0 when absent).
    pub x: f32,
    /// y in original image pixels (0 when absent).
    pub y: f32,
}

impl Landmark {
    /// An absent slot at (0, 0).
    pub const ABSENT: Landmark = Landmark {
        state: LandmarkState::Absent,
        x: 0.0,
        y: 0.0,
    };
}

/// Where a consumer-to-shop image comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Source {
    /// A shop (catalogue) photo; the retrieval gallery.
    Shop,
    /// A consumer photo; the retrieval queries.
    Consumer,
}

/// Everything the annotation files say about one image.
#[derive(Debug, Clone, PartialEq)]
pub struct ImageRecord {
    /// Image name as written in the annotation files (`img/.../x.jpg`).
    pub image: String,
    /// `train`, `val`, `test`, `query` or `gallery`.
    pub split: String,
    /// Bounding box `x_1 y_1 x_2 y_2` in original image pixels.
    pub bbox: Option<[f32; 4]>,
    /// 1 upper, 2 lower, 3 full body.
    pub clothes_type: Option<u8>,
    /// 0-based index into [`Dataset::categories`].
    pub category: Option<usize>,
    /// Raw values per attribute: 1 positive, -1 negative, 0 unknown (fine:
    /// 1 / 0).
    pub attributes: Option<Vec<i8>>,
    /// The canonical 8 landmark slots.
    pub landmarks: Option<[Landmark; NUM_LANDMARKS]>,
    /// Item id (In-shop, consumer-to-shop).
    pub item_id: Option<String>,
    /// Shop or consumer photo (consumer-to-shop only).
    pub source: Option<Source>,
}

impl ImageRecord {
    /// A record with only name and split.
    pub fn new(image: impl Into<String>, split: impl Into<String>) -> Self {
        Self {
            image: image.into(),
            split: split.into(),
            bbox: None,
            clothes_type: None,
            category: None,
            attributes: None,
            landmarks: None,
            item_id: None,
            source: None,
        }
    }

    /// The category folder in a retrieval image path (the folder that
    /// holds the `id_*` folder, e.g. `Blouses_Shirts` in
    /// `img/WOMEN/Blouses_Shirts/id_00000001/02_1_front.jpg`). A hint only:
    /// In-shop and consumer-to-shop carry no category labels.
    pub fn category_hint(&self) -> Option<&str> {
        let parts: Vec<&str> = self.image.split('/').collect();
        let pos = parts.iter().position(|p| p.starts_with("id_"))?;
        pos.checked_sub(1).map(|i| parts[i])
    }
}

/// Errors raised while reading a benchmark folder.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    /// A file could not be opened or read.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A row does not have the expected form.
    #[error("{}:{line}: {msg}", path.display())]
    Malformed {
        /// The file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        msg: String,
    },
    /// A whole file is inconsistent (row counts, missing header...).
    #[error("{}: {msg}", path.display())]
    File {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        msg: String,
    },
    /// The folder does not have the released layout.
    #[error("{0}")]
    Layout(String),
    /// Unknown benchmark name.
    #[error(
        "unknown benchmark `{0}` (known: category-attribute, fine, inshop, consumer2shop, landmarks)"
    )]
    UnknownBenchmark(String),
}

/// Options of [`load`].
#[derive(Debug, Clone, Default)]
pub struct LoadOptions {
    /// Skip malformed rows (counted in [`Dataset::skipped_rows`] and logged)
    /// instead of failing on the first one.
    pub lenient: bool,
}

/// A loaded benchmark.
#[derive(Debug, Clone)]
pub struct Dataset {
    /// The benchmark folder (images resolve under it).
    pub root: PathBuf,
    /// Which benchmark.
    pub benchmark: Benchmark,
    /// One record per image of the evaluation partition, in partition order.
    pub images: Vec<ImageRecord>,
    /// Category labels (empty where the benchmark has none).
    pub categories: Vec<CategoryLabel>,
    /// Attribute labels with group names (empty where none).
    pub attributes: Vec<AttributeLabel>,
    /// Rows skipped in lenient mode.
    pub skipped_rows: usize,
    /// Item ids of `list_item_*.txt` (In-shop, consumer-to-shop).
    pub items: Vec<String>,
}

/// Group names of the coarse attribute types 1..5.
pub const COARSE_ATTRIBUTE_GROUPS: [&str; 5] = ["texture", "fabric", "shape", "part", "style"];

/// Group names of the fine attribute types 1..6 (as the fine
/// `list_attr_cloth.txt` groups them: floral/graphic/striped/... texture;
/// long/short/sleeveless sleeve; maxi/mini length; crew/v/square
/// neckline; denim/chiffon/... fabric; tight/loose/conventional fit).
pub const FINE_ATTRIBUTE_GROUPS: [&str; 6] =
    ["texture", "sleeve", "length", "neckline", "fabric", "fit"];

/// Read a benchmark. `root` is either the DeepFashion top folder (holding
/// the released benchmark folders by their released names) or the
/// benchmark folder itself.
pub fn load(root: &Path, benchmark: Benchmark, opts: &LoadOptions) -> Result<Dataset, DataError> {
    let folder = resolve_root(root, benchmark)?;
    let mut reader = listfile::Reader {
        lenient: opts.lenient,
        skipped: 0,
    };
    let mut ds = Dataset {
        root: folder.clone(),
        benchmark,
        images: Vec::new(),
        categories: Vec::new(),
        attributes: Vec::new(),
        skipped_rows: 0,
        items: Vec::new(),
    };
    match benchmark {
        Benchmark::CategoryAttribute => category_attribute::load_coarse(&mut reader, &mut ds)?,
        Benchmark::Fine => category_attribute::load_fine(&mut reader, &mut ds)?,
        Benchmark::InShop => retrieval::load_inshop(&mut reader, &mut ds)?,
        Benchmark::Consumer2Shop => retrieval::load_consumer2shop(&mut reader, &mut ds)?,
        Benchmark::Landmarks => landmark_benchmark::load(&mut reader, &mut ds)?,
    }
    ds.skipped_rows = reader.skipped;
    if ds.skipped_rows > 0 {
        tracing::warn!(
            "{}: skipped {} malformed rows (lenient)",
            folder.display(),
            ds.skipped_rows
        );
    }
    Ok(ds)
}

/// Find the benchmark folder: `root/<released name>` or `root` itself when
/// it holds `Anno/`, `Anno_coarse/`, `Anno_fine/` or `Eval/`.
pub fn resolve_root(root: &Path, benchmark: Benchmark) -> Result<PathBuf, DataError> {
    let named = root.join(benchmark.folder_name());
    if named.is_dir() {
        return Ok(named);
    }
    let marks: &[&str] = match benchmark {
        Benchmark::Fine => &["Anno_fine"],
        Benchmark::CategoryAttribute => &["Anno", "Anno_coarse"],
        _ => &["Anno", "Eval"],
    };
    if marks.iter().any(|m| root.join(m).is_dir()) {
        return Ok(root.to_path_buf());
    }
    Err(DataError::Layout(format!(
        "{}: not a DeepFashion {} folder: neither `{}/` nor {} found there",
        root.display(),
        benchmark,
        benchmark.folder_name(),
        marks
            .iter()
            .map(|m| format!("`{m}/`"))
            .collect::<Vec<_>>()
            .join(" / ")
    )))
}

impl Dataset {
    /// The records of one split, in partition order.
    pub fn split<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a ImageRecord> {
        self.images.iter().filter(move |r| r.split == name)
    }

    /// Image file of a record: `<root>/Img/<image>`, or `<root>/<image>`
    /// when only that exists.
    pub fn image_path(&self, rec: &ImageRecord) -> PathBuf {
        let in_img = self.root.join("Img").join(&rec.image);
        if in_img.exists() {
            return in_img;
        }
        let direct = self.root.join(&rec.image);
        if direct.exists() {
            direct
        } else {
            in_img
        }
    }

    /// The label sets (categories and attributes in output order).
    pub fn labels(&self) -> Labels {
        Labels {
            categories: self.categories.clone(),
            attributes: self.attributes.clone(),
        }
    }

    /// Group names in first-appearance order of [`Dataset::attributes`].
    pub fn attribute_groups(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for a in &self.attributes {
            if !out.contains(&a.group) {
                out.push(a.group.clone());
            }
        }
        out
    }

    /// Map from image name to index in [`Dataset::images`].
    pub fn index(&self) -> HashMap<&str, usize> {
        self.images
            .iter()
            .enumerate()
            .map(|(i, r)| (r.image.as_str(), i))
            .collect()
    }
}
