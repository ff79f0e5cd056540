//! The on-disk layout of a shop table and its writer.
//!
//! All integers are little-endian. Sections start at 64-byte aligned offsets
//! so that a memory-mapped table is used in place (zero-copy).
//!
//! ```text
//! offset  size  field
//! 0       8     magic  b"FNSHOPTB"
//! 8       4     format version (u32, currently 3)
//! 12      4     embedding dimension D (u32)
//! 16      8     item count N (u64)
//! 24      64    model fingerprint (ASCII, zero-padded)
//! 88      8     offset of the codes section     (N * D int8, row-major)
//! 96      8     offset of the params section    (per item, see the encodings)
//! 104     8     offset of the record index      ((N + 1) u32, offsets into the records)
//! 112     8     offset of the records section   (per item: id, name, price, url)
//! 120     8     length of the records section
//! 128     4     encoding (u32): 1 = item-affine, 2 = principal axes
//! 132     4     R, refined axes (u32; 0 for item-affine)
//! 136     56    zero
//! 192     4*D   the gallery mean (D f32)
//! ...     ...   principal axes only: D x D f32 basis (row a = axis a), then
//!               D f32 axis offsets, then D f32 axis steps
//! ...     ...   sections, each 64-byte aligned, zero padding in between
//! end-32  32    SHA-256 of every byte before it
//! ```
//!
//! Two encodings of the items ([`Encoding`]); the writer keeps the one with
//! the smaller expected score error for the gallery at hand (see
//! [`super::encode`]):
//!
//! - **item-affine**: item `i` is stored as its difference from the gallery
//!   mean, quantized over that difference's own range: component `j` reads
//!   `mean[j] + offset_i + step_i * code_ij` with `code_ij` in -128..=127,
//!   within `step_i / 2` of the float embedding (`step_i` = range / 255).
//!   Params: `(offset_i, step_i)` as two f32. `D + 12` bytes per item with
//!   the index entry.
//! - **principal axes**: the difference from the mean in the gallery's
//!   principal axes, `z = basis (x - mean)`; axis `a` reads
//!   `axis_offset[a] + axis_step[a] * (code_ia + refine_ia / 256)`, where the
//!   refinement byte exists for the first `R` axes only (those with the
//!   largest variance; elsewhere it is 0), and the item is
//!   `mean + basis^T z`. Params: `R` refinement bytes per item. `D + R + 4`
//!   bytes per item with the index entry (`R` <= 12).
//!
//! On the trained demo embeddings the int8 top-20 equals float search's for
//! 92% of queries with item-affine and 99.5% with principal axes
//! (BENCHMARKS.md, "Shop table").
//!
//! A record is four fields in the order id, name, price, url; each field is a
//! u16 length followed by that many UTF-8 bytes, the length `0xFFFF` meaning
//! "absent" (allowed for name, price, url only).

use super::encode::{self, Encoded, MAX_REFINED, PCA_MAX_DIM};
use super::{TableError, TableItem, MAX_DIM};
use sha2::{Digest, Sha256};
use std::io::Write;
use std::path::Path;

/// File magic.
pub const MAGIC: [u8; 8] = *b"FNSHOPTB";
/// Current format version.
pub const VERSION: u32 = 3;
/// Header size in bytes.
pub const HEADER_LEN: usize = 192;
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

/// How a table stores its item vectors (see the module documentation).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    /// Per item: 8 bits over the item's own range around the gallery mean.
    ItemAffine,
    /// The gallery's principal axes, 8 bits per axis over the gallery's
    /// range on it, 16 bits for the first `refined` axes.
    Principal {
        /// Axes with a refinement byte (at most 12 and at most D).
        refined: usize,
    },
}

impl Encoding {
    /// The header's code for the encoding and its refined-axes count.
    pub fn to_header(self) -> (u32, u32) {
        match self {
            Encoding::ItemAffine => (1, 0),
            Encoding::Principal { refined } => (2, refined as u32),
        }
    }

    /// The encoding a header names, checked against the dimension.
    pub fn from_header(code: u32, refined: u32, dim: usize) -> Result<Self, String> {
        match (code, refined as usize) {
            (1, 0) => Ok(Encoding::ItemAffine),
            (1, r) => Err(format!(
                "item-affine encoding with {r} refined axes (must be 0)"
            )),
            (2, r) if r > MAX_REFINED.min(dim) => Err(format!(
                "{r} refined axes (at most {} for dimension {dim})",
                MAX_REFINED.min(dim)
            )),
            (2, _) if dim > PCA_MAX_DIM => Err(format!(
                "principal-axes encoding with dimension {dim} (at most {PCA_MAX_DIM})"
            )),
            (2, r) => Ok(Encoding::Principal { refined: r }),
            (c, _) => Err(format!(
                "unknown encoding {c} (1 = item-affine, 2 = principal axes)"
            )),
        }
    }

    /// The encoding's name in machine-readable output (`table-info --json`).
    pub fn name(self) -> &'static str {
        match self {
            Encoding::ItemAffine => "item-affine",
            Encoding::Principal { .. } => "principal-axes",
        }
    }

    /// A one-line description for summaries (`table-info`, `gallery`).
    pub fn describe(self) -> String {
        match self {
            Encoding::ItemAffine => "item-affine (8 bits over each item's range)".into(),
            Encoding::Principal { refined } => {
                format!("principal axes (8 bits per axis, 16 bits on the first {refined})")
            }
        }
    }
}

/// Section offsets of a table with `n` items of dimension `dim` and
/// `records_len` bytes of records, or `None` when they overflow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Layout {
    /// The gallery mean (`dim` f32), right after the header.
    pub mean: usize,
    /// Principal axes only: the basis (`dim x dim` f32), axis offsets and
    /// axis steps (`dim` f32 each); empty for item-affine.
    pub axes: usize,
    /// The codes (`n * dim` int8).
    pub codes: usize,
    /// Per item offset and step (`n` x 2 f32), or the refinement bytes
    /// (`n * R` int8).
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
    pub fn new(dim: usize, n: usize, records_len: usize, encoding: Encoding) -> Option<Self> {
        let (axes_len, params_len) = match encoding {
            Encoding::ItemAffine => (0, n.checked_mul(8)?),
            Encoding::Principal { refined } => (
                dim.checked_add(2)?.checked_mul(dim)?.checked_mul(4)?,
                n.checked_mul(refined)?,
            ),
        };
        let mean = HEADER_LEN;
        let axes = align_up(mean.checked_add(dim.checked_mul(4)?)?)?;
        let codes = align_up(axes.checked_add(axes_len)?)?;
        let params = align_up(codes.checked_add(n.checked_mul(dim)?)?)?;
        let index = align_up(params.checked_add(params_len)?)?;
        let records = align_up(index.checked_add(n.checked_add(1)?.checked_mul(4)?)?)?;
        let end = align_up(records.checked_add(records_len)?)?;
        Some(Self {
            mean,
            axes,
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
    /// The encoding to use; `None`: the writer chooses.
    force: Option<Encoding>,
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
            force: None,
        })
    }

    /// Use `encoding` instead of choosing one (for comparisons and tests).
    /// Refuses a principal-axes encoding the header could not describe (more
    /// than 12 or than D refined axes, or D above 512).
    pub fn force_encoding(&mut self, encoding: Encoding) -> Result<(), TableError> {
        let (code, refined) = encoding.to_header();
        Encoding::from_header(code, refined, self.dim).map_err(TableError::Invalid)?;
        self.force = Some(encoding);
        Ok(())
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

    /// The complete table file as bytes, in the encoding forced with
    /// [`Self::force_encoding`] or else the one with the smaller expected
    /// score error (see the module documentation).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mean = self.mean();
        encode::encode(&self.embeddings, self.dim, &mean, self.force, |enc| {
            self.lay_out(enc, &mean)
        })
    }

    /// The table file for the items encoded as `enc` around `mean`.
    fn lay_out(&self, enc: &Encoded, mean: &[f32]) -> Vec<u8> {
        let n = self.len();
        let encoding = enc.encoding();
        let l = Layout::new(self.dim, n, self.records.len(), encoding)
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
        let (code, refined) = encoding.to_header();
        out[128..132].copy_from_slice(&code.to_le_bytes());
        out[132..136].copy_from_slice(&refined.to_le_bytes());
        let put_f32s = |out: &mut [u8], at: usize, values: &[f32]| {
            for (k, v) in values.iter().enumerate() {
                out[at + 4 * k..at + 4 * k + 4].copy_from_slice(&v.to_le_bytes());
            }
        };
        put_f32s(&mut out, l.mean, mean);
        let put_i8s = |out: &mut [u8], at: usize, values: &[i8]| {
            for (o, v) in out[at..at + values.len()].iter_mut().zip(values) {
                *o = *v as u8;
            }
        };
        match &enc {
            Encoded::ItemAffine { codes, params } => {
                put_i8s(&mut out, l.codes, codes);
                for (i, (offset, step)) in params.iter().enumerate() {
                    put_f32s(&mut out, l.params + 8 * i, &[*offset, *step]);
                }
            }
            Encoded::Principal(p) => {
                let d = self.dim;
                put_f32s(&mut out, l.axes, &p.basis);
                put_f32s(&mut out, l.axes + 4 * d * d, &p.offset);
                put_f32s(&mut out, l.axes + 4 * d * (d + 1), &p.step);
                put_i8s(&mut out, l.codes, &p.codes);
                put_i8s(&mut out, l.params, &p.refine);
            }
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
