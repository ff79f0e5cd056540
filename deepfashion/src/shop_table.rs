//! The shop embedding table: a compact, checksummed, memory-mappable file of
//! int8 item embeddings (centred on the gallery mean, in one of two
//! encodings chosen per gallery: see [`format`] and [`encode`]), item ids
//! and optional metadata
//! (name, price, URL), tied to the model that produced it by its
//! fingerprint (DESIGN.md section 8). Written by `export gallery`, searched
//! by the runtime on the board.
//!
//! The layout is described in [`format`]. Loading ([`ShopTable::open`])
//! maps the file, checks magic, version, section bounds and the SHA-256
//! checksum once; afterwards every access is in place. Search
//! ([`ShopTable::search_into`]) is exact top-k over int8 dot products with
//! the query quantized per call into a stack buffer: it allocates nothing.
//!
//! This module uses neither tract nor tch.

pub mod encode;
pub mod format;

pub use encode::PCA_MAX_DIM;
pub use format::{write_atomic, Encoding, TableWriter};

use sha2::{Digest, Sha256};
use std::path::Path;

/// Largest embedding dimension a table may have (the query is quantized into
/// a stack buffer of this size).
pub const MAX_DIM: usize = 4096;

/// Size of the int8 shortlist that [`ShopTable::search_into`] rescores with
/// the float query.
pub const MAX_CANDIDATES: usize = 256;

/// Errors raised when reading, writing or checking a table.
#[derive(Debug, thiserror::Error)]
pub enum TableError {
    /// Reading or writing the file failed.
    #[error("shop table `{path}`: {source}")]
    Io {
        /// The file.
        path: String,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The file is shorter than its header says.
    #[error("shop table is truncated: {found} bytes, the header needs {expected}")]
    Truncated {
        /// Bytes the header implies.
        expected: usize,
        /// Bytes present.
        found: usize,
    },
    /// The file does not start with the table magic.
    #[error("not a shop table: magic is {found:?}, expected {expected:?}")]
    BadMagic {
        /// Magic found.
        found: [u8; 8],
        /// Magic expected.
        expected: [u8; 8],
    },
    /// The format version is not one this build reads.
    #[error("shop table format version {found} is not supported (this build reads {supported})")]
    UnsupportedVersion {
        /// Version found.
        found: u32,
        /// Version supported.
        supported: u32,
    },
    /// The stored checksum does not match the content (bit flip, partial write).
    #[error("shop table checksum mismatch: stored {stored}, computed {computed} (file corrupted)")]
    Checksum {
        /// Stored checksum (hex).
        stored: String,
        /// Computed checksum (hex).
        computed: String,
    },
    /// An embedding dimension does not match.
    #[error("embedding dimension mismatch in {context}: expected {expected}, found {found}")]
    DimMismatch {
        /// Expected dimension.
        expected: usize,
        /// Dimension found.
        found: usize,
        /// Where.
        context: String,
    },
    /// The table was built with another model.
    #[error(
        "shop table was built with model {table}, but the model in use is {model}; \
         rebuild it with `export gallery`"
    )]
    FingerprintMismatch {
        /// Fingerprint stored in the table.
        table: String,
        /// Fingerprint of the model.
        model: String,
    },
    /// Any other structural problem.
    #[error("invalid shop table: {0}")]
    Invalid(String),
}

/// One catalogue item to put into a table.
#[derive(Debug, Clone, PartialEq)]
pub struct TableItem {
    /// Item id (non-empty).
    pub id: String,
    /// Display name.
    pub name: Option<String>,
    /// Price as text (currency included).
    pub price: Option<String>,
    /// Product page URL.
    pub url: Option<String>,
    /// Float embedding (L2-normalized by the model), `dim` values.
    pub embedding: Vec<f32>,
}

/// A borrowed view of one item's strings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ItemRef<'a> {
    /// Item id.
    pub id: &'a str,
    /// Display name.
    pub name: Option<&'a str>,
    /// Price as text.
    pub price: Option<&'a str>,
    /// Product page URL.
    pub url: Option<&'a str>,
}

/// A search hit: item index and similarity (approximate dot product).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Match {
    /// Index of the item in the table.
    pub index: u32,
    /// Similarity score (higher is closer).
    pub score: f32,
}

enum Backing {
    Mapped(memmap2::Mmap),
    Owned(Vec<u8>),
}

impl Backing {
    fn bytes(&self) -> &[u8] {
        match self {
            Backing::Mapped(m) => &m[..],
            Backing::Owned(v) => v.as_slice(),
        }
    }
}

/// A loaded (memory-mapped or owned) shop table.
pub struct ShopTable {
    data: Backing,
    dim: usize,
    len: usize,
    fingerprint: String,
    encoding: Encoding,
    mean_off: usize,
    axes_off: usize,
    codes_off: usize,
    params_off: usize,
    index_off: usize,
    records_off: usize,
}

impl std::fmt::Debug for ShopTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ShopTable")
            .field("dim", &self.dim)
            .field("len", &self.len)
            .field("fingerprint", &self.fingerprint)
            .field("encoding", &self.encoding)
            .finish()
    }
}

fn u32_at(b: &[u8], off: usize) -> u32 {
    u32::from_le_bytes([b[off], b[off + 1], b[off + 2], b[off + 3]])
}

fn f32_at(b: &[u8], off: usize) -> f32 {
    f32::from_bits(u32_at(b, off))
}

fn u64_at(b: &[u8], off: usize) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[off..off + 8]);
    u64::from_le_bytes(a)
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

impl ShopTable {
    /// Memory-map and check the table at `path` (magic, version, bounds,
    /// checksum, records).
    pub fn open(path: &Path) -> Result<Self, TableError> {
        let io = |e| TableError::Io {
            path: path.display().to_string(),
            source: e,
        };
        let file = std::fs::File::open(path).map_err(io)?;
        // SAFETY: the map is read-only and tables are replaced by rename,
        // never rewritten in place, so the mapped bytes do not change.
        let map = unsafe { memmap2::Mmap::map(&file) }.map_err(io)?;
        Self::from_backing(Backing::Mapped(map))
    }

    /// Check and use a table held in memory.
    pub fn from_bytes(bytes: Vec<u8>) -> Result<Self, TableError> {
        Self::from_backing(Backing::Owned(bytes))
    }

    fn from_backing(data: Backing) -> Result<Self, TableError> {
        use format::*;
        let b = data.bytes();
        let min = HEADER_LEN + CHECKSUM_LEN;
        if b.len() >= 8 && b[0..8] != MAGIC {
            let mut found = [0u8; 8];
            found.copy_from_slice(&b[0..8]);
            return Err(TableError::BadMagic {
                found,
                expected: MAGIC,
            });
        }
        if b.len() < min {
            return Err(TableError::Truncated {
                expected: min,
                found: b.len(),
            });
        }
        let version = u32_at(b, 8);
        if version != VERSION {
            return Err(TableError::UnsupportedVersion {
                found: version,
                supported: VERSION,
            });
        }
        let dim = u32_at(b, 12) as usize;
        if dim == 0 || dim > MAX_DIM {
            return Err(TableError::DimMismatch {
                expected: MAX_DIM,
                found: dim,
                context: format!("table header (dimension must be in 1..={MAX_DIM})"),
            });
        }
        let len = usize::try_from(u64_at(b, 16))
            .map_err(|_| TableError::Invalid("item count overflows".into()))?;
        let offs: Vec<usize> = (0..5)
            .map(|k| usize::try_from(u64_at(b, 88 + 8 * k)).unwrap_or(usize::MAX))
            .collect();
        let (codes_off, params_off, index_off, records_off, records_len) =
            (offs[0], offs[1], offs[2], offs[3], offs[4]);
        let encoding = Encoding::from_header(u32_at(b, 128), u32_at(b, 132), dim)
            .map_err(|e| TableError::Invalid(format!("header: {e}")))?;
        // Recompute the layout from (dim, len, records_len, encoding) and
        // require the header to agree: a mismatch means a corrupt header.
        let Some(layout) = Layout::new(dim, len, records_len, encoding) else {
            return Err(TableError::Invalid(format!(
                "header claims {len} items of dimension {dim} and {records_len} bytes of records"
            )));
        };
        if layout.records > b.len() {
            return Err(TableError::Truncated {
                expected: layout.records.saturating_add(CHECKSUM_LEN),
                found: b.len(),
            });
        }
        if codes_off != layout.codes
            || params_off != layout.params
            || index_off != layout.index
            || records_off != layout.records
            || records_len > u32::MAX as usize
        {
            return Err(TableError::Invalid(
                "section offsets in the header do not match its dimension and item count".into(),
            ));
        }
        let expected = layout.end + CHECKSUM_LEN;
        if b.len() < expected {
            return Err(TableError::Truncated {
                expected,
                found: b.len(),
            });
        }
        if b.len() > expected {
            return Err(TableError::Invalid(format!(
                "{} unexpected trailing bytes after the checksum",
                b.len() - expected
            )));
        }
        let body = &b[..expected - CHECKSUM_LEN];
        let computed = Sha256::digest(body);
        let stored = &b[expected - CHECKSUM_LEN..];
        if computed.as_slice() != stored {
            return Err(TableError::Checksum {
                stored: hex(stored),
                computed: hex(&computed),
            });
        }
        let fp_raw = &b[24..24 + FINGERPRINT_LEN];
        let fp_len = fp_raw
            .iter()
            .position(|&c| c == 0)
            .unwrap_or(FINGERPRINT_LEN);
        let fingerprint = std::str::from_utf8(&fp_raw[..fp_len])
            .map_err(|_| TableError::Invalid("fingerprint is not UTF-8".into()))?
            .to_string();
        let table = Self {
            dim,
            len,
            fingerprint,
            encoding,
            mean_off: layout.mean,
            axes_off: layout.axes,
            codes_off,
            params_off,
            index_off,
            records_off,
            data,
        };
        table.check_contents(records_len)?;
        Ok(table)
    }

    fn check_contents(&self, records_len: usize) -> Result<(), TableError> {
        let b = self.data.bytes();
        for j in 0..self.dim {
            let m = f32_at(b, self.mean_off + 4 * j);
            if !m.is_finite() {
                return Err(TableError::Invalid(format!(
                    "gallery mean component {j} is {m}"
                )));
            }
        }
        match self.encoding {
            Encoding::ItemAffine => {
                for i in 0..self.len {
                    let (offset, step) = self.params(i);
                    if !offset.is_finite() || !step.is_finite() || step < 0.0 {
                        return Err(TableError::Invalid(format!(
                            "item {i}: bad quantization offset {offset} / step {step}"
                        )));
                    }
                }
            }
            Encoding::Principal { .. } => {
                let d = self.dim;
                for k in 0..d * d {
                    let v = f32_at(b, self.axes_off + 4 * k);
                    if !v.is_finite() {
                        return Err(TableError::Invalid(format!(
                            "principal axis {} component {} is {v}",
                            k / d,
                            k % d
                        )));
                    }
                }
                for a in 0..d {
                    let (offset, step) = self.axis(a);
                    if !offset.is_finite() || !step.is_finite() || step < 0.0 {
                        return Err(TableError::Invalid(format!(
                            "axis {a}: bad quantization offset {offset} / step {step}"
                        )));
                    }
                }
            }
        }
        let mut prev = 0usize;
        for i in 0..=self.len {
            let o = u32_at(b, self.index_off + 4 * i) as usize;
            if o < prev || o > records_len || (i == 0 && o != 0) {
                return Err(TableError::Invalid(format!(
                    "record index entry {i} ({o}) out of order or past the records ({records_len} bytes)"
                )));
            }
            prev = o;
        }
        if prev != records_len {
            return Err(TableError::Invalid(
                "records section has unused bytes".into(),
            ));
        }
        for i in 0..self.len {
            parse_record(self.record_bytes(i))
                .map_err(|e| TableError::Invalid(format!("item {i}: {e}")))?;
        }
        Ok(())
    }

    /// Offset and step of item `i` (`i < len`, item-affine tables).
    fn params(&self, i: usize) -> (f32, f32) {
        let b = self.data.bytes();
        let o = self.params_off + 8 * i;
        (f32_at(b, o), f32_at(b, o + 4))
    }

    /// Offset and step of principal axis `a` (`a < dim`).
    fn axis(&self, a: usize) -> (f32, f32) {
        let b = self.data.bytes();
        let d = self.dim;
        (
            f32_at(b, self.axes_off + 4 * (d * d + a)),
            f32_at(b, self.axes_off + 4 * (d * (d + 1) + a)),
        )
    }

    /// `query` in the principal axes (`out[a] = axis_a . query`).
    fn rotate_into(&self, query: &[f32], out: &mut [f32]) {
        let b = self.data.bytes();
        let d = self.dim;
        let basis = &b[self.axes_off..self.axes_off + 4 * d * d];
        for (o, row) in out.iter_mut().zip(basis.chunks_exact(4 * d)) {
            *o = row
                .chunks_exact(4)
                .zip(query)
                .map(|(c, x)| f32::from_le_bytes([c[0], c[1], c[2], c[3]]) * x)
                .sum();
        }
    }

    /// Refinement bytes of item `i` (principal-axes tables; empty otherwise).
    fn refine(&self, i: usize) -> &[u8] {
        match self.encoding {
            Encoding::Principal { refined } => {
                let o = self.params_off + i * refined;
                &self.data.bytes()[o..o + refined]
            }
            Encoding::ItemAffine => &[],
        }
    }

    fn record_bytes(&self, i: usize) -> &[u8] {
        let b = self.data.bytes();
        let s = u32_at(b, self.index_off + 4 * i) as usize;
        let e = u32_at(b, self.index_off + 4 * (i + 1)) as usize;
        &b[self.records_off + s..self.records_off + e]
    }

    /// Fingerprint of the model that produced the embeddings.
    pub fn fingerprint(&self) -> &str {
        &self.fingerprint
    }

    /// Embedding dimension.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// Number of items.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the table has no items.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// How the items are stored (chosen by the writer per gallery).
    pub fn encoding(&self) -> Encoding {
        self.encoding
    }

    /// The table's bytes, taken back from a table held in memory (the
    /// writer's candidates; a mapped table is copied).
    fn into_bytes(self) -> Vec<u8> {
        match self.data {
            Backing::Owned(v) => v,
            Backing::Mapped(m) => m.to_vec(),
        }
    }

    /// Size of the table in bytes.
    pub fn byte_len(&self) -> usize {
        self.data.bytes().len()
    }

    /// Refuse a table built by another model or with another embedding size:
    /// call once at start-up with the model's fingerprint and dimension.
    pub fn check_model(&self, fingerprint: &str, dim: usize) -> Result<(), TableError> {
        if self.fingerprint != fingerprint {
            return Err(TableError::FingerprintMismatch {
                table: self.fingerprint.clone(),
                model: fingerprint.to_string(),
            });
        }
        if self.dim != dim {
            return Err(TableError::DimMismatch {
                expected: dim,
                found: self.dim,
                context: "shop table vs model embedding".into(),
            });
        }
        Ok(())
    }

    /// The strings of item `i`.
    ///
    /// # Panics
    /// If `i >= self.len()` (like slice indexing); see [`Self::get`].
    pub fn item(&self, i: usize) -> ItemRef<'_> {
        self.get(i).expect("item index out of range")
    }

    /// The strings of item `i`, or `None` past the end.
    pub fn get(&self, i: usize) -> Option<ItemRef<'_>> {
        if i >= self.len {
            return None;
        }
        // Records were validated at load time.
        parse_record(self.record_bytes(i)).ok()
    }

    /// The gallery mean the items are stored around (`dim` values).
    pub fn mean(&self) -> Vec<f32> {
        let b = self.data.bytes();
        (0..self.dim)
            .map(|j| f32_at(b, self.mean_off + 4 * j))
            .collect()
    }

    /// The int8 codes of item `i` (`None` past the end).
    fn codes(&self, i: usize) -> Option<&[u8]> {
        (i < self.len).then(|| {
            let o = self.codes_off + i * self.dim;
            &self.data.bytes()[o..o + self.dim]
        })
    }

    /// The largest difference storage can make to a dot product of `query`
    /// with item `i`: `|query . stored_i - query . float_i|` is at most this
    /// (half a step per component or axis, 1/256 of a step on refined axes,
    /// plus float rounding). `None` past the end or for a query of the wrong
    /// length.
    pub fn rounding_bound(&self, i: usize, query: &[f32]) -> Option<f32> {
        if i >= self.len || query.len() != self.dim {
            return None;
        }
        let l1: f32 = query.iter().map(|x| x.abs()).sum();
        let bound = match self.encoding {
            Encoding::ItemAffine => 0.5 * self.params(i).1 * l1,
            Encoding::Principal { refined } => {
                let mut z = vec![0f32; self.dim];
                self.rotate_into(query, &mut z);
                z.iter()
                    .enumerate()
                    .map(|(a, w)| {
                        let frac = if a < refined { 1.0 / 256.0 } else { 0.5 };
                        w.abs() * self.axis(a).1 * frac
                    })
                    .sum()
            }
        };
        Some(bound + 1e-6 * (1.0 + l1))
    }

    /// Item `i` as stored (the vector search scores against), written into
    /// `out` (`dim` values); false when `i` or `out.len()` is out of range.
    pub fn dequantize_into(&self, i: usize, out: &mut [f32]) -> bool {
        let Some(codes) = self.codes(i) else {
            return false;
        };
        if out.len() != self.dim {
            return false;
        }
        let b = self.data.bytes();
        let d = self.dim;
        match self.encoding {
            Encoding::ItemAffine => {
                let (offset, step) = self.params(i);
                for (j, (o, &c)) in out.iter_mut().zip(codes).enumerate() {
                    *o = f32_at(b, self.mean_off + 4 * j) + offset + step * f32::from(c as i8);
                }
            }
            Encoding::Principal { .. } => {
                for (j, o) in out.iter_mut().enumerate() {
                    *o = f32_at(b, self.mean_off + 4 * j);
                }
                let refine = self.refine(i);
                for (a, &c) in codes.iter().enumerate() {
                    let (offset, step) = self.axis(a);
                    let r = refine.get(a).map_or(0.0, |&r| f32::from(r as i8) / 256.0);
                    let z = offset + step * (f32::from(c as i8) + r);
                    for (j, o) in out.iter_mut().enumerate() {
                        *o += z * f32_at(b, self.axes_off + 4 * (a * d + j));
                    }
                }
            }
        }
        true
    }

    /// Exact top-k, `k = out.len()`: fills `out` with the best matches, best
    /// first (ties by lower index), and returns how many were written
    /// (`min(k, len)`). The scan is an int8 x int8 dot product of the query
    /// (item-affine tables) or of the query's per-axis weights (principal
    /// axes: the query rotated onto the axes times each axis's step),
    /// quantized per call into a stack buffer, with every item's codes; the
    /// best `4k` (at most [`MAX_CANDIDATES`]) candidates are then rescored
    /// with the float query against their stored vectors (refinement bytes
    /// included), so the result is the exact top-k of the stored vectors
    /// (what [`Self::search_float`] returns) unless a true top-k item falls
    /// outside the int8 shortlist. Scores are dot products with the stored
    /// vectors. Nothing is allocated. A query whose length is not
    /// [`Self::dim`] gives 0 matches (check with [`Self::check_model`]).
    pub fn search_into(&self, query: &[f32], out: &mut [Match]) -> usize {
        if query.len() != self.dim || out.is_empty() || self.len == 0 {
            return 0;
        }
        let b = self.data.bytes();
        let d = self.dim;
        // Item-affine: q . stored_i = q . mean + offset_i * sum(q) + step_i * (q . codes_i).
        // Principal: q . stored_i = q . mean + sum_a z_a * axis_offset_a
        //   + sum_a w_a * (codes_ia + refine_ia / 256), z = basis q, w_a = z_a * axis_step_a.
        let mut base = 0f32;
        for (j, &x) in query.iter().enumerate() {
            base += x * f32_at(b, self.mean_off + 4 * j);
        }
        let mut qbuf = [0i8; MAX_DIM];
        let q8 = &mut qbuf[..d];
        let mut wbuf = [0f32; PCA_MAX_DIM];
        let (q, params, w): (Query, &[u8], &[f32]) = match self.encoding {
            Encoding::ItemAffine => (
                Query {
                    base,
                    sum: query.iter().sum(),
                    scale: quantize_into(query, q8),
                },
                &b[self.params_off..self.params_off + 8 * self.len],
                query,
            ),
            Encoding::Principal { .. } => {
                let w = &mut wbuf[..d];
                self.rotate_into(query, w);
                for (a, x) in w.iter_mut().enumerate() {
                    let (offset, step) = self.axis(a);
                    base += *x * offset;
                    *x *= step;
                }
                let scale = quantize_into(w, q8);
                let q = Query {
                    base,
                    sum: 0.0,
                    scale,
                };
                (q, &[], &wbuf[..d])
            }
        };
        let codes = &b[self.codes_off..self.codes_off + self.len * d];
        let k = out.len();
        let mut cand = [Match::default(); MAX_CANDIDATES];
        let shortlist: &mut [Match] = if k < MAX_CANDIDATES {
            let c = (4 * k).clamp(k, MAX_CANDIDATES);
            &mut cand[..c]
        } else {
            &mut *out
        };
        let filled = kernel::scan(codes, params, d, q8, &q, shortlist);
        for m in &mut shortlist[..filled] {
            let i = m.index as usize;
            let v = &codes[i * d..(i + 1) * d];
            let dot = v
                .iter()
                .zip(w)
                .map(|(&x, &y)| f32::from(x as i8) * y)
                .sum::<f32>();
            m.score = match self.encoding {
                Encoding::ItemAffine => {
                    let (offset, step) = self.params(i);
                    q.base + offset * q.sum + step * dot
                }
                Encoding::Principal { .. } => {
                    let fine = self
                        .refine(i)
                        .iter()
                        .zip(w)
                        .map(|(&r, &y)| f32::from(r as i8) * y)
                        .sum::<f32>();
                    q.base + dot + fine / 256.0
                }
            };
        }
        // In-place, allocation-free sort (sort_unstable does not allocate).
        shortlist[..filled]
            .sort_unstable_by(|a, b| b.score.total_cmp(&a.score).then(a.index.cmp(&b.index)));
        let n = filled.min(k);
        if k < MAX_CANDIDATES {
            out[..n].copy_from_slice(&cand[..n]);
        }
        n
    }

    /// [`Self::search_into`] returning a fresh vector of at most `k` matches.
    pub fn search(&self, query: &[f32], k: usize) -> Vec<Match> {
        let mut out = vec![Match::default(); k.min(self.len)];
        let n = self.search_into(query, &mut out);
        out.truncate(n);
        out
    }

    /// Reference search: float query against the dequantized item vectors,
    /// exact top-k (allocates; for tests and checks).
    pub fn search_float(&self, query: &[f32], k: usize) -> Vec<Match> {
        if query.len() != self.dim {
            return Vec::new();
        }
        let mut deq = vec![0f32; self.len * self.dim];
        for (i, row) in deq.chunks_exact_mut(self.dim).enumerate() {
            self.dequantize_into(i, row);
        }
        search_float(&deq, self.dim, query, k)
    }
}

/// What the int8 scan needs of a query besides its codes.
#[derive(Debug, Clone, Copy)]
struct Query {
    /// `q . mean`.
    base: f32,
    /// Sum of the query's components (multiplies each item's offset).
    sum: f32,
    /// Scale of the query's int8 codes.
    scale: f32,
}

/// Exact float top-k by dot product over row-major `vectors` (`n x dim`):
/// the reference the int8 search is checked against.
pub fn search_float(vectors: &[f32], dim: usize, query: &[f32], k: usize) -> Vec<Match> {
    if dim == 0 || query.len() != dim {
        return Vec::new();
    }
    let mut all: Vec<Match> = vectors
        .chunks_exact(dim)
        .enumerate()
        .map(|(i, v)| Match {
            index: i as u32,
            score: v.iter().zip(query).map(|(a, b)| a * b).sum(),
        })
        .collect();
    all.sort_by(|a, b| b.score.total_cmp(&a.score).then(a.index.cmp(&b.index)));
    all.truncate(k);
    all
}

/// Write a table of `items` to `path` atomically.
pub fn write_table(
    path: &Path,
    fingerprint: &str,
    dim: usize,
    items: &[TableItem],
) -> Result<(), TableError> {
    let mut w = TableWriter::new(fingerprint, dim)?;
    for it in items {
        w.push(it)?;
    }
    w.write(path)
}

/// Symmetric int8 quantization of `x` into `out` (values in -127..=127);
/// returns the scale (`x ~= q * scale`; 0 for an all-zero vector).
pub fn quantize_into(x: &[f32], out: &mut [i8]) -> f32 {
    let max = x.iter().fold(0.0f32, |m, v| m.max(v.abs()));
    if max == 0.0 || !max.is_finite() {
        out.iter_mut().for_each(|o| *o = 0);
        return 0.0;
    }
    let scale = max / 127.0;
    let inv = 127.0 / max;
    for (o, v) in out.iter_mut().zip(x) {
        *o = (v * inv).round().clamp(-127.0, 127.0) as i8;
    }
    scale
}

/// Affine 8-bit quantization of `x - mean` over its own range (the table's
/// item storage, see [`format`]): writes codes in -128..=127 and returns
/// `(offset, step)` with `x[j] ~= mean[j] + offset + step * out[j]`, each
/// within `step / 2` (`step` = range / 255; 0 when `x - mean` is constant).
pub fn quantize_item(x: &[f32], mean: &[f32], out: &mut [i8]) -> (f32, f32) {
    let (mut lo, mut hi) = (f32::INFINITY, f32::NEG_INFINITY);
    for (v, m) in x.iter().zip(mean) {
        let d = v - m;
        lo = lo.min(d);
        hi = hi.max(d);
    }
    if !lo.is_finite() || !hi.is_finite() || hi <= lo {
        out.iter_mut().for_each(|o| *o = 0);
        let offset = if lo.is_finite() { lo } else { 0.0 };
        return (offset, 0.0);
    }
    let step = (hi - lo) / 255.0;
    let inv = 1.0 / step;
    for (o, (v, m)) in out.iter_mut().zip(x.iter().zip(mean)) {
        let c = ((v - m - lo) * inv).round().clamp(0.0, 255.0);
        *o = (c as i32 - 128) as i8;
    }
    (lo + 128.0 * step, step)
}

fn parse_record(mut r: &[u8]) -> Result<ItemRef<'_>, String> {
    let mut fields: [Option<&str>; 4] = [None; 4];
    for (k, name) in ["id", "name", "price", "url"].iter().enumerate() {
        if r.len() < 2 {
            return Err(format!("record ends before field `{name}`"));
        }
        let n = u16::from_le_bytes([r[0], r[1]]);
        r = &r[2..];
        if n == format::ABSENT {
            if k == 0 {
                return Err("id is absent".into());
            }
            continue;
        }
        let n = n as usize;
        if r.len() < n {
            return Err(format!("field `{name}` runs past the record"));
        }
        let s = std::str::from_utf8(&r[..n]).map_err(|_| format!("field `{name}` is not UTF-8"))?;
        fields[k] = Some(s);
        r = &r[n..];
    }
    if !r.is_empty() {
        return Err(format!("{} trailing bytes in record", r.len()));
    }
    Ok(ItemRef {
        id: fields[0].unwrap_or(""),
        name: fields[1],
        price: fields[2],
        url: fields[3],
    })
}

mod kernel {
    //! The scan loop: int8 dot products and a running top-k. The portable
    //! body is written so LLVM vectorizes it (i8 x i8 -> i32 in fixed
    //! chunks; NEON on the boards); on x86-64 an AVX2 version with
    //! `vpmaddwd` (16 products and pairwise sums per instruction) is
    //! selected at run time.
    use super::{Match, Query};

    #[inline(always)]
    fn dot(a: &[u8], q: &[i8]) -> i32 {
        let mut acc = [0i32; 32];
        let mut ca = a.chunks_exact(32);
        let mut cq = q.chunks_exact(32);
        for (x, y) in (&mut ca).zip(&mut cq) {
            for j in 0..32 {
                acc[j] += (x[j] as i8 as i16 * y[j] as i16) as i32;
            }
        }
        let mut s: i32 = acc.iter().sum();
        for (x, y) in ca.remainder().iter().zip(cq.remainder()) {
            s += *x as i8 as i32 * *y as i32;
        }
        s
    }

    #[inline(always)]
    fn insert(out: &mut [Match], filled: &mut usize, m: Match) {
        let k = out.len();
        let better =
            |a: &Match, b: &Match| a.score > b.score || (a.score == b.score && a.index < b.index);
        if *filled == k {
            if !better(&m, &out[k - 1]) {
                return;
            }
        } else {
            *filled += 1;
        }
        let mut j = *filled - 1;
        while j > 0 && better(&m, &out[j - 1]) {
            out[j] = out[j - 1];
            j -= 1;
        }
        out[j] = m;
    }

    /// The running top-k over every item, with `dot(codes_i)` the int8 dot
    /// product of item `i` with the query; `params` holds each item's
    /// offset and step (8 bytes) or is empty (offset 0, step 1).
    #[inline(always)]
    fn scan_with(
        codes: &[u8],
        params: &[u8],
        dim: usize,
        q: &Query,
        out: &mut [Match],
        dot: impl Fn(&[u8]) -> i32,
    ) -> usize {
        let mut filled = 0;
        // Empty params: the per-axis steps are folded into the query
        // (principal-axes tables), every item has offset 0 and step 1.
        let per_item = !params.is_empty();
        for (i, v) in codes.chunks_exact(dim).enumerate() {
            let (offset, step) = if per_item {
                let p = &params[8 * i..8 * i + 8];
                (
                    f32::from_le_bytes([p[0], p[1], p[2], p[3]]),
                    f32::from_le_bytes([p[4], p[5], p[6], p[7]]),
                )
            } else {
                (0.0, 1.0)
            };
            let score = q.base + offset * q.sum + step * q.scale * dot(v) as f32;
            if filled == out.len() && score < out[filled - 1].score {
                continue;
            }
            insert(
                out,
                &mut filled,
                Match {
                    index: i as u32,
                    score,
                },
            );
        }
        filled
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    /// `a . q` over int8 codes and an int8 query (`a.len() <= q.len()`).
    /// `vpmaddubsw` multiplies unsigned by signed bytes, so the products are
    /// formed as `|a| * (q with a's sign)`: with |a| <= 128 and |q| <= 127 a
    /// pair sums to at most 32,512, below the i16 saturation.
    ///
    /// # Safety
    /// The CPU must support AVX2.
    unsafe fn dot_avx2(a: &[u8], q: &[i8]) -> i32 {
        use std::arch::x86_64::*;
        let n = a.len();
        assert!(q.len() >= n);
        let chunks = n / 32;
        let ones = _mm256_set1_epi16(1);
        let mut acc = _mm256_setzero_si256();
        for c in 0..chunks {
            // SAFETY: 32 bytes of `a` and of `q` from 32 * c are in bounds
            // (c < n / 32, q.len() >= n); loads are unaligned.
            let (x, y) = unsafe {
                (
                    _mm256_loadu_si256(a.as_ptr().add(32 * c) as *const __m256i),
                    _mm256_loadu_si256(q.as_ptr().add(32 * c) as *const __m256i),
                )
            };
            let pairs = _mm256_maddubs_epi16(_mm256_sign_epi8(x, x), _mm256_sign_epi8(y, x));
            acc = _mm256_add_epi32(acc, _mm256_madd_epi16(pairs, ones));
        }
        let s4 = _mm_add_epi32(
            _mm256_castsi256_si128(acc),
            _mm256_extracti128_si256::<1>(acc),
        );
        let s2 = _mm_add_epi32(s4, _mm_shuffle_epi32::<0b01_00_11_10>(s4));
        let s1 = _mm_add_epi32(s2, _mm_shuffle_epi32::<0b10_11_00_01>(s2));
        let mut s = _mm_cvtsi128_si32(s1);
        for j in 32 * chunks..n {
            s += a[j] as i8 as i32 * q[j] as i32;
        }
        s
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    /// [`scan_with`] compiled with AVX2 enabled, so that [`dot_avx2`] is
    /// inlined into the loop instead of called once per item.
    ///
    /// # Safety
    /// The CPU must support AVX2.
    unsafe fn scan_avx2(
        codes: &[u8],
        params: &[u8],
        dim: usize,
        q8: &[i8],
        q: &Query,
        out: &mut [Match],
    ) -> usize {
        // SAFETY: this function runs only where AVX2 is supported.
        scan_with(codes, params, dim, q, out, |v| unsafe { dot_avx2(v, q8) })
    }

    /// Scan every item; `out` receives the top `out.len()` approximate
    /// scores (int8 query). Returns the number filled.
    pub(super) fn scan(
        codes: &[u8],
        params: &[u8],
        dim: usize,
        q8: &[i8],
        q: &Query,
        out: &mut [Match],
    ) -> usize {
        #[cfg(target_arch = "x86_64")]
        {
            if std::arch::is_x86_feature_detected!("avx2") {
                // SAFETY: the CPU supports AVX2 (checked just above).
                return unsafe { scan_avx2(codes, params, dim, q8, q, out) };
            }
        }
        scan_with(codes, params, dim, q, out, |v| dot(v, q8))
    }

    #[cfg(test)]
    mod tests {
        #[test]
        fn avx2_dot_equals_the_portable_dot() {
            #[cfg(target_arch = "x86_64")]
            if std::arch::is_x86_feature_detected!("avx2") {
                for n in [1usize, 31, 32, 33, 64, 100, 128, 4096] {
                    let a: Vec<u8> = (0..n).map(|i| (i * 37 % 256) as u8).collect();
                    let q: Vec<i8> = (0..n)
                        .map(|i| ((i * 53 % 255) as i32 - 127) as i8)
                        .collect();
                    // SAFETY: AVX2 checked above.
                    let fast = unsafe { super::dot_avx2(&a, &q) };
                    assert_eq!(fast, super::dot(&a, &q), "n = {n}");
                    // The extremes: codes -128 against queries -127 and 127,
                    // where an unguarded vpmaddubsw would saturate.
                    for (x, y) in [(-128i8, -127i8), (-128, 127), (127, 127), (-127, -127)] {
                        let a = vec![x as u8; n];
                        let q = vec![y; n];
                        // SAFETY: AVX2 checked above.
                        let fast = unsafe { super::dot_avx2(&a, &q) };
                        assert_eq!(fast, x as i32 * y as i32 * n as i32, "n = {n}, {x} x {y}");
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests;
