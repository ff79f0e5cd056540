//! The on-disk layout of a shop table and its writer.
//!
//! All integers are little-endian. Sections start at 64-byte aligned offsets
//! so that a memory-mapped table is used in place (zero-copy).
//!
//! ```text
//! offset  size  field
//! 0       8     magic  b"FNSHOPTB"
//! 8       4     format version (u32, currently 2)
//! 12      4     embedding dimension D (u32)
//! 16      8     item count N (u64)
//! 24      64    model fingerprint (ASCII, zero-padded)
//! 88      8     offset of the codes section     (N * D int8, row-major)
//! 96      8     offset of the params section    (N x (offset f32, step f32))
//! 104     8     offset of the record index      ((N + 1) u32, offsets into the records)
//! 112     8     offset of the records section   (per item: id, name, price, url)
//! 120     8     length of the records section
//! 128     4*D   the gallery mean (D f32)
//! ...     ...   sections, each 64-byte aligned, zero padding in between
//! end-32  32    SHA-256 of every byte before it
//! ```
//!
//! Item `i` is stored as its difference from the gallery mean, quantized
//! affinely over that difference's own range: component `j` reads
//! `mean[j] + offset_i + step_i * code_ij` with `code_ij` in -128..=127, and
//! is within `step_i / 2` of the float embedding (`step_i` = range / 255).
//! Centring on the gallery mean and using the item's whole min..max range
//! (instead of a symmetric scale per raw vector, format version 1) spend the
//! 256 levels where the items differ: on the trained demo embeddings the
//! int8 top-20 equals float search's for 92% of queries instead of 85%
//! (BENCHMARKS.md, "Shop table").
//!
//! A record is four fields in the order id, name, price, url; each field is a
//! u16 length followed by that many UTF-8 bytes, the length `0xFFFF` meaning
//! "absent" (allowed for name, price, url only). Per item the fixed cost is
//! `D + 12` bytes (codes, offset and step, index entry) plus its strings.

use super::{quantize_item, TableError, TableItem, MAX_DIM};
use sha2::{Digest, Sha256};
use std::io::Write;
use std::path::Path;

/// File magic.
pub const MAGIC: [u8; 8] = *b"FNSHOPTB";
/// Current format version.
pub const VERSION: u32 = 2;
/// Header size in bytes.
pub const HEADER_LEN: usize = 128;
/// Section alignment in bytes.
pub const ALIGN: usize = 64;
/// Checksum (SHA-256) length at the end of the file.
pub const CHECKSUM_LEN: usize = 32;
/// Maximum fingerprint length in bytes.
pub const FINGERPRINT_LEN: usize = 64;
/// Field length marking an absent optional field.
pub const ABSENT: u16 = u16::MAX;

/// Round `n` up to the section alignment (`None` on overflow).
pub fn align_up(n: usize) -> Option<usize> {
    n.checked_next_multiple_of(ALIGN)
}

/// Section offsets of a table with `n` items of dimension `dim` and
/// `records_len` bytes of records, or `None` when they overflow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Layout {
    /// The gallery mean (`dim` f32), right after the header.
    pub mean: usize,
    /// The codes (`n * dim` int8).
    pub codes: usize,
    /// Per item offset and step (`n` x 2 f32).
    pub params: usize,
    /// The record index (`n + 1` u32).
    pub index: usize,
    /// The records.
    pub records: usize,
    /// End of the body (where the checksum starts).
    pub end: usize,
}

impl Layout {
    /// The layout for `n` items of dimension `dim` with `records_len` bytes
    /// of records (`None` when it does not fit in `usize`).
    pub fn new(dim: usize, n: usize, records_len: usize) -> Option<Self> {
        let mean = HEADER_LEN;
        let codes = align_up(mean.checked_add(dim.checked_mul(4)?)?)?;
        let params = align_up(codes.checked_add(n.checked_mul(dim)?)?)?;
        let index = align_up(params.checked_add(n.checked_mul(8)?)?)?;
        let records = align_up(index.checked_add(n.checked_add(1)?.checked_mul(4)?)?)?;
        let end = align_up(records.checked_add(records_len)?)?;
        Some(Self {
            mean,
            codes,
            params,
            index,
            records,
            end,
        })
    }
}

/// Builds a table in memory, one item at a time, then writes it atomically.
#[derive(Debug)]
pub struct TableWriter {
    fingerprint: String,
    dim: usize,
    /// Float embeddings, row-major: quantized in [`Self::to_bytes`], once
    /// the gallery mean is known.
    embeddings: Vec<f32>,
    index: Vec<u32>,
    records: Vec<u8>,
}

impl TableWriter {
    /// A writer for `dim`-dimensional embeddings from the model with
    /// `fingerprint` (at most 64 ASCII bytes).
    pub fn new(fingerprint: &str, dim: usize) -> Result<Self, TableError> {
        if fingerprint.len() > FINGERPRINT_LEN || !fingerprint.is_ascii() {
            return Err(TableError::Invalid(format!(
                "fingerprint `{fingerprint}` must be ASCII, at most {FINGERPRINT_LEN} bytes"
            )));
        }
        if dim == 0 || dim > MAX_DIM {
            return Err(TableError::Invalid(format!(
                "embedding dimension {dim} must be in 1..={MAX_DIM}"
            )));
        }
        Ok(Self {
            fingerprint: fingerprint.to_string(),
            dim,
            embeddings: Vec::new(),
            index: vec![0],
            records: Vec::new(),
        })
    }

    /// Number of items pushed so far.
    pub fn len(&self) -> usize {
        self.index.len() - 1
    }

    /// Whether no item was pushed yet.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Append one item (quantized when the table is written). Refuses a wrong dimension, a non-finite
    /// value, an empty id or a field longer than 65534 bytes.
    pub fn push(&mut self, item: &TableItem) -> Result<(), TableError> {
        let n = self.len();
        if item.embedding.len() != self.dim {
            return Err(TableError::DimMismatch {
                expected: self.dim,
                found: item.embedding.len(),
                context: format!("item {n} (`{}`)", item.id),
            });
        }
        if let Some(j) = item.embedding.iter().position(|v| !v.is_finite()) {
            return Err(TableError::Invalid(format!(
                "item {n} (`{}`): embedding value {j} is not finite",
                item.id
            )));
        }
        if item.id.is_empty() {
            return Err(TableError::Invalid(format!("item {n}: empty id")));
        }
        let start = self.records.len();
        let fields = [
            Some(item.id.as_str()),
            item.name.as_deref(),
            item.price.as_deref(),
            item.url.as_deref(),
        ];
        for (f, value) in ["id", "name", "price", "url"].iter().zip(fields) {
            match value {
                Some(s) => {
                    if s.len() >= ABSENT as usize {
                        self.records.truncate(start);
                        return Err(TableError::Invalid(format!(
                            "item {n} (`{}`): {f} is {} bytes, at most {} allowed",
                            item.id,
                            s.len(),
                            ABSENT - 1
                        )));
                    }
                    self.records
                        .extend_from_slice(&(s.len() as u16).to_le_bytes());
                    self.records.extend_from_slice(s.as_bytes());
                }
                None => self.records.extend_from_slice(&ABSENT.to_le_bytes()),
            }
        }
        let end = u32::try_from(self.records.len()).map_err(|_| {
            self.records.truncate(start);
            TableError::Invalid("item strings exceed 4 GiB".into())
        })?;
        self.embeddings.extend_from_slice(&item.embedding);
        self.index.push(end);
        Ok(())
    }

    /// The gallery mean of the items pushed so far (zeros when empty).
    pub fn mean(&self) -> Vec<f32> {
        let mut sum = vec![0f64; self.dim];
        for row in self.embeddings.chunks_exact(self.dim) {
            for (s, v) in sum.iter_mut().zip(row) {
                *s += f64::from(*v);
            }
        }
        let n = self.len().max(1) as f64;
        sum.into_iter().map(|s| (s / n) as f32).collect()
    }

    /// The complete table file as bytes: items quantized around the gallery
    /// mean (see the module documentation).
    pub fn to_bytes(&self) -> Vec<u8> {
        let n = self.len();
        let l = Layout::new(self.dim, n, self.records.len())
            .expect("a table held in memory has a layout that fits in memory");
        let mut out = vec![0u8; l.end];
        out[0..8].copy_from_slice(&MAGIC);
        out[8..12].copy_from_slice(&VERSION.to_le_bytes());
        out[12..16].copy_from_slice(&(self.dim as u32).to_le_bytes());
        out[16..24].copy_from_slice(&(n as u64).to_le_bytes());
        out[24..24 + self.fingerprint.len()].copy_from_slice(self.fingerprint.as_bytes());
        for (k, v) in [l.codes, l.params, l.index, l.records, self.records.len()]
            .iter()
            .enumerate()
        {
            out[88 + 8 * k..96 + 8 * k].copy_from_slice(&(*v as u64).to_le_bytes());
        }
        let mean = self.mean();
        for (j, m) in mean.iter().enumerate() {
            out[l.mean + 4 * j..l.mean + 4 * j + 4].copy_from_slice(&m.to_le_bytes());
        }
        let mut codes = vec![0i8; self.dim];
        for (i, row) in self.embeddings.chunks_exact(self.dim).enumerate() {
            let (offset, step) = quantize_item(row, &mean, &mut codes);
            let c = l.codes + i * self.dim;
            for (o, v) in out[c..c + self.dim].iter_mut().zip(&codes) {
                *o = *v as u8;
            }
            let p = l.params + 8 * i;
            out[p..p + 4].copy_from_slice(&offset.to_le_bytes());
            out[p + 4..p + 8].copy_from_slice(&step.to_le_bytes());
        }
        for (i, s) in self.index.iter().enumerate() {
            out[l.index + 4 * i..l.index + 4 * i + 4].copy_from_slice(&s.to_le_bytes());
        }
        out[l.records..l.records + self.records.len()].copy_from_slice(&self.records);
        let digest = Sha256::digest(&out);
        out.extend_from_slice(&digest);
        out
    }

    /// Write the table to `path` atomically (temporary file in the same
    /// folder, fsync, rename).
    pub fn write(&self, path: &Path) -> Result<(), TableError> {
        write_atomic(path, &self.to_bytes())
    }
}

/// Write `bytes` to `path` atomically: a temporary file next to it, fsync,
/// rename over `path`, fsync of the folder.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), TableError> {
    let io = |e: std::io::Error| TableError::Io {
        path: path.display().to_string(),
        source: e,
    };
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => std::path::PathBuf::from("."),
    };
    let name = path
        .file_name()
        .ok_or_else(|| TableError::Invalid(format!("`{}` has no file name", path.display())))?;
    let tmp = dir.join(format!(
        ".{}.tmp-{}",
        name.to_string_lossy(),
        std::process::id()
    ));
    let result = (|| -> std::io::Result<()> {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        drop(f);
        std::fs::rename(&tmp, path)?;
        if let Ok(d) = std::fs::File::open(&dir) {
            let _ = d.sync_all();
        }
        Ok(())
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result.map_err(io)
}
