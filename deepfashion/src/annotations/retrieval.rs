//! In-shop and Consumer-to-shop Clothes Retrieval.

use super::join::{check_split, optional, partition_path, read_landmarks, Join, Seen};
use super::listfile::{Layout, Reader};
use super::{parse, DataError, Dataset, ImageRecord, Source};
use std::collections::HashSet;
use std::path::Path;

fn read_items(r: &mut Reader, path: &Path) -> Result<Vec<String>, DataError> {
    let mut items = Vec::new();
    r.read(path, Layout::CountOnly, |toks, _| {
        items.push(parse::item_line(toks)?);
        Ok(())
    })?;
    Ok(items)
}

fn warn_unlisted(ds: &Dataset) {
    if ds.items.is_empty() {
        return;
    }
    let listed: HashSet<&str> = ds.items.iter().map(String::as_str).collect();
    let missing: HashSet<&str> = ds
        .images
        .iter()
        .filter_map(|r| r.item_id.as_deref())
        .filter(|i| !listed.contains(i))
        .collect();
    if !missing.is_empty() {
        tracing::warn!(
            "{} item ids of the partition are not in the item list",
            missing.len()
        );
    }
}

/// Typed bbox rows (`image clothes_type extra x_1 y_1 x_2 y_2`); `check`
/// validates `extra` against the record.
fn read_typed_bbox(
    r: &mut Reader,
    path: &Path,
    join: &mut Join,
    check: impl Fn(&ImageRecord, u8) -> Result<(), String>,
) -> Result<(), DataError> {
    let mut seen = Seen::new(join.images.len());
    r.read(path, Layout::CountHeader, |toks, _| {
        let (image, ct, extra, bbox) = parse::image_typed_bbox(toks)?;
        let i = join.get(&image)?;
        seen.mark(i, &image)?;
        check(&join.images[i], extra)?;
        let rec = &mut join.images[i];
        rec.bbox = Some(bbox);
        rec.clothes_type = Some(ct);
        Ok(())
    })?;
    Ok(())
}

/// Read the In-shop benchmark into `ds`.
pub(crate) fn load_inshop(r: &mut Reader, ds: &mut Dataset) -> Result<(), DataError> {
    let anno = ds.root.join("Anno");
    let part = partition_path(&ds.root, &[&anno])?;
    let mut join = Join::new(&part);
    r.read(&part, Layout::CountHeader, |toks, _| {
        let (image, item, status) = parse::inshop_partition(toks)?;
        check_split(&status, &["train", "query", "gallery"])?;
        let mut rec = ImageRecord::new(image, status);
        rec.item_id = Some(item);
        join.insert(rec)
    })?;
    if let Some(p) = optional(&anno, "list_item_inshop.txt") {
        ds.items = read_items(r, &p)?;
    }
    if let Some(p) = optional(&anno, "list_bbox_inshop.txt") {
        // The pose type is kept unchecked: nothing downstream reads it.
        read_typed_bbox(r, &p, &mut join, |_, _| Ok(()))?;
    }
    if let Some(p) = optional(&anno, "list_landmarks_inshop.txt") {
        read_landmarks(r, &p, &mut join)?;
    }
    ds.images = join.images;
    warn_unlisted(ds);
    Ok(())
}

/// Read the Consumer-to-shop benchmark into `ds`.
pub(crate) fn load_consumer2shop(r: &mut Reader, ds: &mut Dataset) -> Result<(), DataError> {
    let anno = ds.root.join("Anno");
    let part = partition_path(&ds.root, &[&anno])?;
    let mut join = Join::new(&part);
    r.read(&part, Layout::CountHeader, |toks, _| {
        let [consumer, shop, item, status] = parse::consumer2shop_partition(toks)?;
        check_split(&status, &["train", "val", "test"])?;
        // Check both images before inserting either, so a skipped row
        // leaves nothing behind.
        let mut fresh = Vec::new();
        for (image, source) in [(consumer, Source::Consumer), (shop, Source::Shop)] {
            match join.find(&image) {
                Some(i) => {
                    let rec = &join.images[i];
                    if rec.source != Some(source) {
                        return Err(format!(
                            "image `{image}` appears both as consumer and as shop image"
                        ));
                    }
                    if rec.item_id.as_deref() != Some(item.as_str()) {
                        return Err(format!(
                            "image `{image}` has item `{item}` here but `{}` on an earlier row",
                            rec.item_id.as_deref().unwrap_or("")
                        ));
                    }
                    if rec.split != status {
                        return Err(format!(
                            "image `{image}` is in split `{status}` here but `{}` on an earlier row",
                            rec.split
                        ));
                    }
                }
                None => {
                    if fresh.iter().any(|r: &ImageRecord| r.image == image) {
                        return Err(format!("image `{image}` is both images of the pair"));
                    }
                    let mut rec = ImageRecord::new(image, status.clone());
                    rec.item_id = Some(item.clone());
                    rec.source = Some(source);
                    fresh.push(rec);
                }
            }
        }
        for rec in fresh {
            join.insert(rec)?;
        }
        Ok(())
    })?;
    if let Some(p) = optional(&anno, "list_item_consumer2shop.txt") {
        ds.items = read_items(r, &p)?;
    }
    if let Some(p) = optional(&anno, "list_bbox_consumer2shop.txt") {
        read_typed_bbox(r, &p, &mut join, |rec, src| {
            let expect = match rec.source {
                Some(Source::Shop) => 1,
                _ => 2,
            };
            if src == expect {
                Ok(())
            } else {
                Err(format!(
                    "source_type {src} but the partition lists `{}` as a {} image (1 shop, 2 consumer)",
                    rec.image,
                    if expect == 1 { "shop" } else { "consumer" }
                ))
            }
        })?;
    }
    if let Some(p) = optional(&anno, "list_landmarks_consumer2shop.txt") {
        read_landmarks(r, &p, &mut join)?;
    }
    ds.images = join.images;
    warn_unlisted(ds);
    Ok(())
}
