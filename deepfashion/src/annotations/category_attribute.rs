//! Category & Attribute Prediction: coarse (`Anno/` or `Anno_coarse/`)
//! and fine (`Anno_fine/`) annotations.

use super::join::{
    check_split, optional, partition_path, read_attributes, read_categories, read_landmarks,
    read_plain_bbox, required, Join, Seen,
};
use super::listfile::{Layout, Reader};
use super::{
    parse, DataError, Dataset, ImageRecord, Landmark, COARSE_ATTRIBUTE_GROUPS,
    FINE_ATTRIBUTE_GROUPS,
};
use crate::contract::NUM_LANDMARKS;
use std::path::{Path, PathBuf};

const SPLITS: [&str; 3] = ["train", "val", "test"];

/// The coarse annotation folder: `Anno/`, else `Anno_coarse/`.
fn coarse_dir(root: &Path) -> Result<PathBuf, DataError> {
    for name in ["Anno", "Anno_coarse"] {
        let d = root.join(name);
        if d.join("list_category_img.txt").is_file() || d.join("list_category_cloth.txt").is_file()
        {
            return Ok(d);
        }
    }
    Err(DataError::Layout(format!(
        "{}: no Anno/ or Anno_coarse/ folder with list_category_cloth.txt",
        root.display()
    )))
}

/// Read the coarse Category & Attribute annotations into `ds`.
pub(crate) fn load_coarse(r: &mut Reader, ds: &mut Dataset) -> Result<(), DataError> {
    let anno = coarse_dir(&ds.root)?;
    ds.categories = read_categories(r, &required(&anno, "list_category_cloth.txt")?)?;
    let part = partition_path(&ds.root, &[&anno])?;
    let mut join = Join::new(&part);
    r.read(&part, Layout::CountHeader, |toks, _| {
        let (image, status) = parse::image_status(toks)?;
        check_split(&status, &SPLITS)?;
        join.insert(ImageRecord::new(image, status))
    })?;

    let ncat = ds.categories.len();
    let garment: Vec<u8> = ds.categories.iter().map(|c| c.garment_type).collect();
    let path = required(&anno, "list_category_img.txt")?;
    let mut seen = Seen::new(join.images.len());
    r.read(&path, Layout::CountHeader, |toks, _| {
        let (image, label) = parse::image_label(toks)?;
        if label == 0 || label > ncat as u64 {
            return Err(format!(
                "category_label must be 1..={ncat} (1-based), found {label}"
            ));
        }
        let i = join.get(&image)?;
        seen.mark(i, &image)?;
        let c = (label - 1) as usize;
        join.images[i].category = Some(c);
        join.images[i].clothes_type = Some(garment[c]);
        Ok(())
    })?;

    let attr_cloth = optional(&anno, "list_attr_cloth.txt");
    let attr_img = optional(&anno, "list_attr_img.txt");
    if let (Some(cloth), Some(img)) = (attr_cloth, attr_img) {
        ds.attributes = read_attributes(r, &cloth, &COARSE_ATTRIBUTE_GROUPS)?;
        let n = ds.attributes.len();
        let mut seen = Seen::new(join.images.len());
        r.read(&img, Layout::CountHeader, |toks, _| {
            let (image, vals) = parse::image_attributes(toks, n)?;
            let i = join.get(&image)?;
            seen.mark(i, &image)?;
            join.images[i].attributes = Some(vals);
            Ok(())
        })?;
    }
    if let Some(p) = optional(&anno, "list_bbox.txt") {
        read_plain_bbox(r, &p, &mut join)?;
    }
    if let Some(p) = optional(&anno, "list_landmarks.txt") {
        read_landmarks(r, &p, &mut join)?;
    }
    ds.images = join.images;
    Ok(())
}

/// Read one row-aligned fine file into per-row values (`None` where a row
/// was skipped in lenient mode).
fn aligned<T>(
    r: &mut Reader,
    path: &Path,
    mut parse_row: impl FnMut(&[&str]) -> Result<T, String>,
) -> Result<Vec<Option<T>>, DataError> {
    let mut out = Vec::new();
    r.read(path, Layout::Plain, |toks, _| match parse_row(toks) {
        Ok(v) => {
            out.push(Some(v));
            Ok(())
        }
        Err(m) => {
            out.push(None);
            Err(m)
        }
    })?;
    Ok(out)
}

fn check_rows<T>(path: &Path, rows: &[T], names: usize) -> Result<(), DataError> {
    if rows.len() == names {
        Ok(())
    } else {
        Err(DataError::File {
            path: path.to_path_buf(),
            msg: format!(
                "has {} rows but its split list has {names} images (the fine files are row-aligned)",
                rows.len()
            ),
        })
    }
}

/// Read the fine annotations (`Anno_fine/`) into `ds`.
pub(crate) fn load_fine(r: &mut Reader, ds: &mut Dataset) -> Result<(), DataError> {
    let anno = ds.root.join("Anno_fine");
    ds.categories = read_categories(r, &required(&anno, "list_category_cloth.txt")?)?;
    ds.attributes = read_attributes(
        r,
        &required(&anno, "list_attr_cloth.txt")?,
        &FINE_ATTRIBUTE_GROUPS,
    )?;
    let ncat = ds.categories.len();
    let nattr = ds.attributes.len();
    let mut join = Join::new(&anno.join("train.txt"));
    let mut any = false;
    for split in SPLITS {
        let Some(list) = optional(&anno, &format!("{split}.txt")) else {
            continue;
        };
        any = true;
        let names = aligned(r, &list, parse::image_line)?;
        let n = names.len();
        let file = |kind: &str| optional(&anno, &format!("{split}_{kind}.txt"));
        let mut attrs = None;
        if let Some(p) = file("attr") {
            let v = aligned(r, &p, |t| parse::fine_attributes(t, nattr))?;
            check_rows(&p, &v, n)?;
            attrs = Some(v);
        }
        let mut cates = None;
        if let Some(p) = file("cate") {
            let v = aligned(r, &p, |t| {
                let c = parse::fine_category(t)?;
                if c == 0 || c > ncat as u64 {
                    return Err(format!("category must be 1..={ncat} (1-based), found {c}"));
                }
                Ok((c - 1) as usize)
            })?;
            check_rows(&p, &v, n)?;
            cates = Some(v);
        }
        let mut boxes = None;
        if let Some(p) = file("bbox") {
            let v = aligned(r, &p, parse::fine_bbox)?;
            check_rows(&p, &v, n)?;
            boxes = Some(v);
        }
        let mut lms: Option<Vec<Option<[Landmark; NUM_LANDMARKS]>>> = None;
        if let Some(p) = file("landmarks") {
            let v = aligned(r, &p, parse::fine_landmarks)?;
            check_rows(&p, &v, n)?;
            lms = Some(v);
        }
        for (i, name) in names.into_iter().enumerate() {
            // A row skipped (lenient) in any aligned file drops the image.
            let Some(name) = name else { continue };
            let mut rec = ImageRecord::new(name, split);
            if let Some(a) = &attrs {
                let Some(v) = &a[i] else { continue };
                rec.attributes = Some(v.clone());
            }
            if let Some(c) = &cates {
                let Some(v) = c[i] else { continue };
                rec.category = Some(v);
                rec.clothes_type = Some(ds.categories[v].garment_type);
            }
            if let Some(b) = &boxes {
                let Some(v) = b[i] else { continue };
                rec.bbox = Some(v);
            }
            if let Some(l) = &lms {
                let Some(v) = l[i] else { continue };
                rec.landmarks = Some(v);
            }
            if let Err(m) = join.insert(rec) {
                let path = anno.join(format!("{split}.txt"));
                if r.lenient {
                    r.skipped += 1;
                    tracing::warn!("{}: row {}: skipped: {m}", path.display(), i + 1);
                } else {
                    return Err(DataError::File {
                        path,
                        msg: format!("row {}: {m} (also in another split)", i + 1),
                    });
                }
            }
        }
    }
    if !any {
        return Err(DataError::Layout(format!(
            "{}: none of train.txt, val.txt, test.txt found",
            anno.display()
        )));
    }
    ds.images = join.images;
    Ok(())
}
