//! Joining annotation files on the image name, and the file-level helpers
//! the benchmark readers share.

use super::{parse, DataError, ImageRecord};
use crate::contract::{AttributeLabel, CategoryLabel};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

use super::listfile::{Layout, Reader};

/// Records keyed by image name, built from the partition file.
pub(crate) struct Join {
    pub images: Vec<ImageRecord>,
    by_name: HashMap<String, usize>,
    partition: String,
}

impl Join {
    /// An empty join whose partition file is named `partition` in messages.
    pub fn new(partition: &Path) -> Self {
        Self {
            images: Vec::new(),
            by_name: HashMap::new(),
            partition: partition
                .file_name()
                .map(|f| f.to_string_lossy().into_owned())
                .unwrap_or_default(),
        }
    }

    /// Add a record; a second record for the same image is an error.
    pub fn insert(&mut self, rec: ImageRecord) -> Result<(), String> {
        if self.by_name.contains_key(&rec.image) {
            return Err(format!("image `{}` listed twice", rec.image));
        }
        self.by_name.insert(rec.image.clone(), self.images.len());
        self.images.push(rec);
        Ok(())
    }

    /// Index of an image already in the partition.
    pub fn find(&self, image: &str) -> Option<usize> {
        self.by_name.get(image).copied()
    }

    /// Index of an image, or an error when the partition lacks it.
    pub fn get(&self, image: &str) -> Result<usize, String> {
        self.find(image)
            .ok_or_else(|| format!("image `{image}` is not in {}", self.partition))
    }
}

/// Per-file duplicate detection over the join's indices.
pub(crate) struct Seen(Vec<bool>);

impl Seen {
    /// For a join of `n` images.
    pub fn new(n: usize) -> Self {
        Seen(vec![false; n])
    }

    /// Mark index `i` of `image`; fails when already marked in this file.
    pub fn mark(&mut self, i: usize, image: &str) -> Result<(), String> {
        match self.0.get_mut(i) {
            Some(s) if *s => Err(format!("image `{image}` listed twice in this file")),
            Some(s) => {
                *s = true;
                Ok(())
            }
            None => Err(format!("internal: index {i} out of range")),
        }
    }
}

/// Check a split name against the benchmark's split names.
pub(crate) fn check_split(status: &str, allowed: &[&str]) -> Result<(), String> {
    if allowed.contains(&status) {
        Ok(())
    } else {
        Err(format!(
            "evaluation status must be one of {}, found `{status}`",
            allowed.join(", ")
        ))
    }
}

/// The partition file: `Eval/list_eval_partition.txt`, or the same name in
/// one of `fallback_dirs` (newer releases keep it next to the annotations).
pub(crate) fn partition_path(root: &Path, fallback_dirs: &[&Path]) -> Result<PathBuf, DataError> {
    let eval = root.join("Eval").join("list_eval_partition.txt");
    if eval.is_file() {
        return Ok(eval);
    }
    for d in fallback_dirs {
        let p = d.join("list_eval_partition.txt");
        if p.is_file() {
            return Ok(p);
        }
    }
    Err(DataError::Layout(format!(
        "{}: missing Eval/list_eval_partition.txt",
        root.display()
    )))
}

/// A required file: error naming it when absent.
pub(crate) fn required(dir: &Path, name: &str) -> Result<PathBuf, DataError> {
    let p = dir.join(name);
    if p.is_file() {
        Ok(p)
    } else {
        Err(DataError::Layout(format!(
            "missing annotation file {}",
            p.display()
        )))
    }
}

/// An optional file: `None` (with a warning) when absent.
pub(crate) fn optional(dir: &Path, name: &str) -> Option<PathBuf> {
    let p = dir.join(name);
    if p.is_file() {
        Some(p)
    } else {
        tracing::warn!("{} not found: that annotation is left out", p.display());
        None
    }
}

/// `list_category_cloth.txt`: names and garment types 1..3.
pub(crate) fn read_categories(
    r: &mut Reader,
    path: &Path,
) -> Result<Vec<CategoryLabel>, DataError> {
    let mut out = Vec::new();
    r.read(path, Layout::CountHeader, |_, line| {
        let (name, ty) = parse::label_line(line)?;
        if !(1..=3).contains(&ty) {
            return Err(format!("category type must be 1, 2 or 3, found {ty}"));
        }
        out.push(CategoryLabel {
            name,
            garment_type: ty,
        });
        Ok(())
    })?;
    Ok(out)
}

/// `list_attr_cloth.txt`: names (with spaces) and type numbers mapped to
/// `groups[type - 1]`.
pub(crate) fn read_attributes(
    r: &mut Reader,
    path: &Path,
    groups: &[&str],
) -> Result<Vec<AttributeLabel>, DataError> {
    let mut out = Vec::new();
    r.read(path, Layout::CountHeader, |_, line| {
        let (name, ty) = parse::label_line(line)?;
        let group = usize::from(ty)
            .checked_sub(1)
            .and_then(|i| groups.get(i))
            .ok_or_else(|| format!("attribute type must be 1..={}, found {ty}", groups.len()))?;
        out.push(AttributeLabel {
            name,
            group: group.to_string(),
        });
        Ok(())
    })?;
    Ok(out)
}

/// Landmark rows joined into the records (`list_landmarks*.txt`); also sets
/// the clothes type where it is still unknown.
pub(crate) fn read_landmarks(
    r: &mut Reader,
    path: &Path,
    join: &mut Join,
) -> Result<(), DataError> {
    let mut seen = Seen::new(join.images.len());
    r.read(path, Layout::CountHeader, |toks, _| {
        let row = parse::landmark_row(toks)?;
        let i = join.get(&row.image)?;
        seen.mark(i, &row.image)?;
        let rec = &mut join.images[i];
        rec.landmarks = Some(row.landmarks);
        rec.clothes_type.get_or_insert(row.clothes_type);
        Ok(())
    })?;
    Ok(())
}

/// `image x_1 y_1 x_2 y_2` rows joined into the records.
pub(crate) fn read_plain_bbox(
    r: &mut Reader,
    path: &Path,
    join: &mut Join,
) -> Result<(), DataError> {
    let mut seen = Seen::new(join.images.len());
    r.read(path, Layout::CountHeader, |toks, _| {
        let (image, bbox) = parse::image_bbox(toks)?;
        let i = join.get(&image)?;
        seen.mark(i, &image)?;
        join.images[i].bbox = Some(bbox);
        Ok(())
    })?;
    Ok(())
}
