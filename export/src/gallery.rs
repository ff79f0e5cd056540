//! Building the shop table: embed every catalogue image through the
//! exported graph in tract and write a [`ShopTable`] stamped with the
//! model's fingerprint.
//!
//! [`ShopTable`]: deepfashion::shop_table::ShopTable

use crate::images::{self, ImageRef};
use crate::infer::TractModel;
use crate::{ExportError, Result};
use deepfashion::shop_table::{ShopTable, TableItem, TableWriter};
use std::collections::HashMap;
use std::path::Path;

/// Optional catalogue metadata per item id.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ItemInfo {
    /// Display name.
    pub name: Option<String>,
    /// Price text.
    pub price: Option<String>,
    /// Product URL.
    pub url: Option<String>,
}

/// Read `items.csv`: a header line naming the columns (`id` required;
/// `name`, `price`, `url` optional, any order), then one row per item.
/// Fields may be double-quoted (with `""` for a quote). Errors name the line.
pub fn read_items_csv(path: &Path) -> Result<HashMap<String, ItemInfo>> {
    let text = std::fs::read_to_string(path).map_err(|e| ExportError::Io {
        path: path.display().to_string(),
        source: e,
    })?;
    let bad =
        |line: usize, msg: String| ExportError::Other(format!("{}:{line}: {msg}", path.display()));
    let mut lines = text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty());
    let (_, header) = lines.next().ok_or_else(|| bad(1, "empty file".into()))?;
    let cols: Vec<String> = split_csv(header).map_err(|e| bad(1, e))?;
    let col = |n: &str| cols.iter().position(|c| c.trim() == n);
    let id_col = col("id").ok_or_else(|| bad(1, "header has no `id` column".into()))?;
    let (nc, pc, uc) = (col("name"), col("price"), col("url"));
    let mut out = HashMap::new();
    for (i, line) in lines {
        let f = split_csv(line).map_err(|e| bad(i + 1, e))?;
        if f.len() != cols.len() {
            return Err(bad(
                i + 1,
                format!("{} fields, header has {}", f.len(), cols.len()),
            ));
        }
        let get = |c: Option<usize>| c.map(|c| f[c].clone()).filter(|s| !s.is_empty());
        let id = f[id_col].clone();
        if id.is_empty() {
            return Err(bad(i + 1, "empty id".into()));
        }
        out.insert(
            id,
            ItemInfo {
                name: get(nc),
                price: get(pc),
                url: get(uc),
            },
        );
    }
    Ok(out)
}

fn split_csv(line: &str) -> std::result::Result<Vec<String>, String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut chars = line.chars().peekable();
    let mut quoted = false;
    while let Some(c) = chars.next() {
        match (quoted, c) {
            (true, '"') if chars.peek() == Some(&'"') => {
                cur.push('"');
                chars.next();
            }
            (true, '"') => quoted = false,
            (false, '"') if cur.is_empty() => quoted = true,
            (false, ',') => out.push(std::mem::take(&mut cur)),
            (_, c) => cur.push(c),
        }
    }
    if quoted {
        return Err("unterminated quoted field".into());
    }
    out.push(cur);
    Ok(out)
}

/// The table id of an image: its item id, else its name without extension.
pub fn item_id(img: &ImageRef) -> String {
    img.item_id.clone().unwrap_or_else(|| {
        Path::new(&img.name)
            .with_extension("")
            .to_string_lossy()
            .into_owned()
    })
}

/// Embed `imgs` with `model` and write the table to `out` (atomically).
/// Returns the number of items. Unreadable images are refused by name and
/// nothing is written.
pub fn build_table(
    model: &TractModel,
    imgs: &[ImageRef],
    items: &HashMap<String, ItemInfo>,
    out: &Path,
    show_progress: bool,
) -> Result<usize> {
    if imgs.is_empty() {
        return Err(ExportError::Other("no catalogue images to embed".into()));
    }
    let cfg = &model.info.config;
    let s = cfg.input_size;
    let mut buf = vec![0f32; 3 * s * s];
    let mut w = TableWriter::new(&model.info.fingerprint, cfg.embedding_dim)?;
    let pb = images::progress(imgs.len(), "embedding");
    if !show_progress {
        pb.set_draw_target(indicatif::ProgressDrawTarget::hidden());
    }
    for img in imgs {
        images::preprocess(img, s, model.info.preprocess.crop_margin, &mut buf)?;
        let p = model.predict(&buf)?;
        let id = item_id(img);
        let meta = items.get(&id).cloned().unwrap_or_default();
        w.push(&TableItem {
            id,
            name: meta.name,
            price: meta.price,
            url: meta.url,
            embedding: p.embedding,
        })?;
        pb.inc(1);
    }
    pb.finish_and_clear();
    w.write(out)?;
    Ok(w.len())
}

/// Refuse a table that was not built with the model `model_fingerprint`
/// (or has another embedding size): the check the runtime runs at start-up.
pub fn check_table(table: &ShopTable, model_fingerprint: &str, dim: usize) -> Result<()> {
    table.check_model(model_fingerprint, dim)?;
    Ok(())
}

/// Write a table of `n` random unit vectors (ids `item_000000`, ...) for a
/// model's fingerprint and dimension (benchmarks, tests).
pub fn write_random_table(
    fingerprint: &str,
    dim: usize,
    n: usize,
    seed: u64,
    out: &Path,
) -> Result<usize> {
    use rand::{Rng, SeedableRng};
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let mut w = TableWriter::new(fingerprint, dim)?;
    for i in 0..n {
        let v: Vec<f32> = (0..dim).map(|_| rng.gen_range(-1.0f32..1.0)).collect();
        let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt().max(1e-12);
        w.push(&TableItem {
            id: format!("item_{i:06}"),
            name: Some(format!("Random item {i}")),
            price: None,
            url: None,
            embedding: v.into_iter().map(|x| x / norm).collect(),
        })?;
    }
    w.write(out)?;
    Ok(w.len())
}
