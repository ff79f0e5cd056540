//! The on-disk layout of a shop table and its writer.
//!
//! All integers are little-endian. Sections start at 64-byte aligned offsets
//! so that a memory-mapped table is used in place (zero-copy).
//!
//! ```text
//! offset  size  field
//! 0       8     magic  b"FNSHOPTB"
//! 8       4     format version (u32, currently 1)
//! 12      4     embedding dimension D (u32)
//! 16      8     item count N (u64)
//! 24      64    model fingerprint (ASCII, zero-padded)
//! 88      8     offset of the vectors section   (N * D int8, row-major)
//! 96      8     offset of the scales section    (N f32)
//! 104     8     offset of the record index      ((N + 1) u32, offsets into the records)
//! 112     8     offset of the records section   (per item: id, name, price, url)
//! 120     8     length of the records section
//! 128     ...   sections, each 64-byte aligned, zero padding in between
//! end-32  32    SHA-256 of every byte before it
//! ```
//!
//! A record is four fields in the order id, name, price, url; each field is a
//! u16 length followed by that many UTF-8 bytes, the length `0xFFFF` meaning
//! "absent" (allowed for name, price, url only). Per item the fixed cost is
//! `D + 8` bytes (vector, scale, index entry) plus its strings.

use super::{quantize_into, TableError, TableItem, MAX_DIM};
use sha2::{Digest, Sha256};
use std::io::Write;
use std::path::Path;

/// File magic.
pub const MAGIC: [u8; 8] = *b"FNSHOPTB";
/// Current format version.
pub const VERSION: u32 = 1;
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

/// Round `n` up to the section alignment.
pub fn align_up(n: usize) -> usize {
    n.div_ceil(ALIGN) * ALIGN
}

/// Builds a table in memory, one item at a time, then writes it atomically.
#[derive(Debug)]
pub struct TableWriter {
    fingerprint: String,
    dim: usize,
    vectors: Vec<i8>,
    scales: Vec<f32>,
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
            vectors: Vec::new(),
            scales: Vec::new(),
            index: vec![0],
            records: Vec::new(),
        })
    }

    /// Number of items pushed so far.
    pub fn len(&self) -> usize {
        self.scales.len()
    }

    /// Whether no item was pushed yet.
    pub fn is_empty(&self) -> bool {
        self.scales.is_empty()
    }

    /// Quantize and append one item. Refuses a wrong dimension, a non-finite
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
        let base = self.vectors.len();
        self.vectors.resize(base + self.dim, 0);
        let scale = quantize_into(&item.embedding, &mut self.vectors[base..]);
        self.scales.push(scale);
        self.index.push(end);
        Ok(())
    }

    /// The complete table file as bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        let n = self.len();
        let vectors_off = HEADER_LEN;
        let scales_off = align_up(vectors_off + n * self.dim);
        let index_off = align_up(scales_off + 4 * n);
        let records_off = align_up(index_off + 4 * (n + 1));
        let body_end = align_up(records_off + self.records.len());
        let mut out = vec![0u8; body_end];
        out[0..8].copy_from_slice(&MAGIC);
        out[8..12].copy_from_slice(&VERSION.to_le_bytes());
        out[12..16].copy_from_slice(&(self.dim as u32).to_le_bytes());
        out[16..24].copy_from_slice(&(n as u64).to_le_bytes());
        out[24..24 + self.fingerprint.len()].copy_from_slice(self.fingerprint.as_bytes());
        for (k, v) in [
            vectors_off,
            scales_off,
            index_off,
            records_off,
            self.records.len(),
        ]
        .iter()
        .enumerate()
        {
            out[88 + 8 * k..96 + 8 * k].copy_from_slice(&(*v as u64).to_le_bytes());
        }
        for (o, v) in out[vectors_off..vectors_off + n * self.dim]
            .iter_mut()
            .zip(&self.vectors)
        {
            *o = *v as u8;
        }
        for (i, s) in self.scales.iter().enumerate() {
            out[scales_off + 4 * i..scales_off + 4 * i + 4].copy_from_slice(&s.to_le_bytes());
        }
        for (i, s) in self.index.iter().enumerate() {
            out[index_off + 4 * i..index_off + 4 * i + 4].copy_from_slice(&s.to_le_bytes());
        }
        out[records_off..records_off + self.records.len()].copy_from_slice(&self.records);
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
