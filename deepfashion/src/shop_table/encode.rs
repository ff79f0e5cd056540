//! How the writer turns float embeddings into a table's codes, and which of
//! the two encodings ([`Encoding`]) it uses for a given gallery.
//!
//! Both encodings store the difference from the gallery mean in 8 bits per
//! component. [`Encoding::ItemAffine`] spends its 256 levels over each
//! item's own min..max. [`Encoding::Principal`] first rotates the
//! differences onto the gallery's principal axes (eigenvectors of its
//! covariance, largest variance first), quantizes each axis over the
//! gallery's range on that axis, and stores a second byte for the first
//! axes. Trained embeddings put most of their variance on a few axes (the
//! demo model: 6 of 64 axes hold 95%), so the per-axis steps are small
//! where items differ little and the axes that decide rankings get 16 bits;
//! vectors spread evenly over all directions (random unit vectors) gain
//! nothing from the rotation and lose from ranges set by the gallery's
//! extremes. The writer therefore computes both and keeps the one whose
//! expected squared score error, `e^T M e` averaged over items with `e` the
//! stored-minus-float difference and `M` the gallery's second moment (the
//! queries come from the same model), is smaller.

use super::format::Encoding;
use super::{quantize_item, ShopTable};

/// Largest embedding dimension for which the writer considers the
/// principal-axes encoding (the basis is `dim x dim` floats and the
/// eigen-decomposition costs `O(dim^3)` per sweep).
pub const PCA_MAX_DIM: usize = 512;

/// Axes stored with a second (refinement) byte in [`Encoding::Principal`]:
/// the item then costs `dim + 12` bytes of codes plus its 4-byte record
/// index entry, the `D + 16` bytes the export issue allows.
pub const MAX_REFINED: usize = 12;

/// Items the writer samples to estimate each encoding's score error.
const ERROR_SAMPLE: usize = 2048;

/// A table's item storage, ready to be laid out by the writer.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Encoded {
    /// Per item: codes and `(offset, step)`.
    ItemAffine {
        /// `n * dim` codes.
        codes: Vec<i8>,
        /// `n` pairs `(offset, step)`.
        params: Vec<(f32, f32)>,
    },
    /// Principal axes, per-axis ranges, codes and refinement bytes.
    Principal(Principal),
}

/// The data of an [`Encoding::Principal`] table.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Principal {
    /// `dim x dim`, row `a` is axis `a` (unit length, largest variance first).
    pub basis: Vec<f32>,
    /// Per axis: the value code 0 stands for.
    pub offset: Vec<f32>,
    /// Per axis: the value of one code step (range / 255; 0 for a constant axis).
    pub step: Vec<f32>,
    /// Axes with a refinement byte (the first `refined`).
    pub refined: usize,
    /// `n * dim` codes.
    pub codes: Vec<i8>,
    /// `n * refined` refinement bytes: axis `a < refined` of item `i` reads
    /// `offset[a] + step[a] * (code + refine / 256)`.
    pub refine: Vec<i8>,
}

impl Encoded {
    /// The encoding's header description.
    pub fn encoding(&self) -> Encoding {
        match self {
            Encoded::ItemAffine { .. } => Encoding::ItemAffine,
            Encoded::Principal(p) => Encoding::Principal { refined: p.refined },
        }
    }
}

/// The table for `n` rows of `dim` (row-major `emb`) around `mean`, in the
/// encoding given, or else the one with the smaller expected score error.
/// `lay_out` turns an encoding into the complete table file; each candidate
/// is measured through [`ShopTable`], so the error is that of the vectors
/// search will actually score against.
pub(super) fn encode(
    emb: &[f32],
    dim: usize,
    mean: &[f32],
    force: Option<Encoding>,
    lay_out: impl Fn(&Encoded) -> Vec<u8>,
) -> Vec<u8> {
    let n = emb.len() / dim;
    let item = || {
        let mut codes = vec![0i8; n * dim];
        let params = emb
            .chunks_exact(dim)
            .zip(codes.chunks_exact_mut(dim))
            .map(|(row, c)| quantize_item(row, mean, c))
            .collect();
        lay_out(&Encoded::ItemAffine { codes, params })
    };
    let principal = |cov: &[f64], refined| {
        lay_out(&Encoded::Principal(principal(emb, dim, mean, cov, refined)))
    };
    match force {
        Some(Encoding::ItemAffine) => return item(),
        Some(Encoding::Principal { refined }) => {
            return principal(&covariance(emb, dim, mean), refined)
        }
        None => {}
    }
    let a = item();
    if n < 2 || dim > PCA_MAX_DIM {
        return a;
    }
    let cov = covariance(emb, dim, mean);
    let b = principal(&cov, MAX_REFINED.min(dim));
    // Second moment M = C + mean mean^T: the queries' distribution.
    let mut m = cov;
    for j in 0..dim {
        for k in 0..dim {
            m[j * dim + k] += f64::from(mean[j]) * f64::from(mean[k]);
        }
    }
    let (a, b) = (table(a), table(b));
    if score_error(&b, emb, &m) < score_error(&a, emb, &m) {
        b.into_bytes()
    } else {
        a.into_bytes()
    }
}

/// A table the writer just laid out (its own bytes: they always load).
fn table(bytes: Vec<u8>) -> ShopTable {
    ShopTable::from_bytes(bytes).expect("the writer lays out valid tables")
}

/// Mean of `e^T m e` over a sample of rows, `e` = stored - float.
fn score_error(table: &ShopTable, emb: &[f32], m: &[f64]) -> f64 {
    let dim = table.dim();
    let n = table.len();
    let stride = n.div_ceil(ERROR_SAMPLE).max(1);
    let mut stored = vec![0f32; dim];
    let mut e = vec![0f64; dim];
    let (mut sum, mut count) = (0f64, 0usize);
    for i in (0..n).step_by(stride) {
        table.dequantize_into(i, &mut stored);
        for ((x, s), v) in e.iter_mut().zip(&stored).zip(&emb[i * dim..(i + 1) * dim]) {
            *x = f64::from(*s) - f64::from(*v);
        }
        for j in 0..dim {
            let row = &m[j * dim..(j + 1) * dim];
            sum += e[j] * row.iter().zip(&e).map(|(a, b)| a * b).sum::<f64>();
        }
        count += 1;
    }
    sum / count.max(1) as f64
}

/// Covariance of the rows around `mean` (`dim x dim`, f64).
fn covariance(emb: &[f32], dim: usize, mean: &[f32]) -> Vec<f64> {
    let n = emb.len() / dim;
    let mut c = vec![0f64; dim * dim];
    let mut d = vec![0f64; dim];
    for row in emb.chunks_exact(dim) {
        for ((x, v), m) in d.iter_mut().zip(row).zip(mean) {
            *x = f64::from(*v) - f64::from(*m);
        }
        for j in 0..dim {
            let dj = d[j];
            for (c, dk) in c[j * dim + j..(j + 1) * dim].iter_mut().zip(&d[j..]) {
                *c += dj * dk;
            }
        }
    }
    let n = n.max(1) as f64;
    for j in 0..dim {
        for k in j..dim {
            let v = c[j * dim + k] / n;
            c[j * dim + k] = v;
            c[k * dim + j] = v;
        }
    }
    c
}

/// The principal-axes encoding of the rows (see the module documentation).
/// Two passes over the rows (per-axis ranges, then codes), each rotating one
/// row at a time: memory stays at the codes, not an `n x dim` f64 copy.
fn principal(emb: &[f32], dim: usize, mean: &[f32], cov: &[f64], refined: usize) -> Principal {
    let n = emb.len() / dim;
    let (_, vectors) = symmetric_eigen(cov, dim);
    // The basis as stored (f32): codes are computed against exactly the
    // vectors the reader will use.
    let basis: Vec<f32> = vectors.iter().map(|&v| v as f32).collect();
    let mut d = vec![0f64; dim];
    let mut z = vec![0f64; dim];
    // Row `row` on the principal axes, into `z`.
    let mut rotate = |row: &[f32], z: &mut [f64]| {
        for ((x, v), m) in d.iter_mut().zip(row).zip(mean) {
            *x = f64::from(*v) - f64::from(*m);
        }
        for (za, axis) in z.iter_mut().zip(basis.chunks_exact(dim)) {
            *za = axis.iter().zip(&d).map(|(b, x)| f64::from(*b) * x).sum();
        }
    };
    let mut lo = vec![f64::INFINITY; dim];
    let mut hi = vec![f64::NEG_INFINITY; dim];
    for row in emb.chunks_exact(dim) {
        rotate(row, &mut z);
        for ((l, h), za) in lo.iter_mut().zip(&mut hi).zip(&z) {
            *l = l.min(*za);
            *h = h.max(*za);
        }
    }
    let mut offset = vec![0f32; dim];
    let mut step = vec![0f32; dim];
    for a in 0..dim {
        let (lo, hi) = if n == 0 { (0.0, 0.0) } else { (lo[a], hi[a]) };
        let s = ((hi - lo) / 255.0) as f32;
        step[a] = s;
        // Codes are stored as -128..=127: code c stands for lo + (c + 128) s.
        offset[a] = (lo + 128.0 * f64::from(s)) as f32;
    }
    let mut codes = vec![0i8; n * dim];
    let mut refine = vec![0i8; n * refined];
    for (i, row) in emb.chunks_exact(dim).enumerate() {
        rotate(row, &mut z);
        for a in 0..dim {
            let s = f64::from(step[a]);
            if s == 0.0 {
                continue;
            }
            let u = (z[a] - f64::from(offset[a])) / s;
            let c = u.round().clamp(-128.0, 127.0);
            codes[i * dim + a] = c as i8;
            if a < refined {
                refine[i * refined + a] = ((u - c) * 256.0).round().clamp(-128.0, 127.0) as i8;
            }
        }
    }
    Principal {
        basis,
        offset,
        step,
        refined,
        codes,
        refine,
    }
}

/// Eigen-decomposition of the symmetric `n x n` matrix `a` (row-major) by
/// cyclic Jacobi rotations: eigenvalues in decreasing order and the matching
/// unit eigenvectors as the rows of an `n x n` matrix.
pub fn symmetric_eigen(a: &[f64], n: usize) -> (Vec<f64>, Vec<f64>) {
    let mut a = a.to_vec();
    // v's columns become the eigenvectors.
    let mut v = vec![0f64; n * n];
    for i in 0..n {
        v[i * n + i] = 1.0;
    }
    let total: f64 = a.iter().map(|x| x * x).sum();
    for _sweep in 0..100 {
        let off: f64 = (0..n)
            .flat_map(|p| (0..n).filter(move |&q| q != p).map(move |q| (p, q)))
            .map(|(p, q)| a[p * n + q] * a[p * n + q])
            .sum();
        if off <= 1e-30 * total || off == 0.0 {
            break;
        }
        for p in 0..n {
            for q in p + 1..n {
                let apq = a[p * n + q];
                if apq == 0.0 {
                    continue;
                }
                let theta = (a[q * n + q] - a[p * n + p]) / (2.0 * apq);
                let t = theta.signum() / (theta.abs() + (theta * theta + 1.0).sqrt());
                let c = 1.0 / (t * t + 1.0).sqrt();
                let s = t * c;
                // A <- P^T A P, V <- V P, with P the rotation in the (p, q) plane.
                for k in 0..n {
                    let (akp, akq) = (a[k * n + p], a[k * n + q]);
                    a[k * n + p] = c * akp - s * akq;
                    a[k * n + q] = s * akp + c * akq;
                }
                for k in 0..n {
                    let (apk, aqk) = (a[p * n + k], a[q * n + k]);
                    a[p * n + k] = c * apk - s * aqk;
                    a[q * n + k] = s * apk + c * aqk;
                }
                for k in 0..n {
                    let (vkp, vkq) = (v[k * n + p], v[k * n + q]);
                    v[k * n + p] = c * vkp - s * vkq;
                    v[k * n + q] = s * vkp + c * vkq;
                }
            }
        }
    }
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by(|&i, &j| a[j * n + j].total_cmp(&a[i * n + i]).then(i.cmp(&j)));
    let values = order.iter().map(|&i| a[i * n + i]).collect();
    let mut rows = vec![0f64; n * n];
    for (r, &i) in order.iter().enumerate() {
        for k in 0..n {
            rows[r * n + k] = v[k * n + i];
        }
    }
    (values, rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jacobi_recovers_eigenpairs_of_a_known_matrix() {
        // A = Q diag(5, 2, 0.5, 0) Q^T for a rotation Q.
        let n = 4;
        let (c, s) = (0.8f64, 0.6f64);
        let q = [
            c, -s, 0.0, 0.0, s, c, 0.0, 0.0, 0.0, 0.0, c, s, 0.0, 0.0, -s, c,
        ];
        let d = [2.0, 5.0, 0.0, 0.5];
        let mut a = vec![0f64; 16];
        for i in 0..n {
            for j in 0..n {
                a[i * n + j] = (0..n).map(|k| q[i * n + k] * d[k] * q[j * n + k]).sum();
            }
        }
        let (values, rows) = symmetric_eigen(&a, n);
        for (got, want) in values.iter().zip([5.0, 2.0, 0.5, 0.0]) {
            assert!((got - want).abs() < 1e-12, "{values:?}");
        }
        for r in 0..n {
            let x = &rows[r * n..(r + 1) * n];
            let norm: f64 = x.iter().map(|v| v * v).sum();
            assert!((norm - 1.0).abs() < 1e-12);
            // A x = lambda x.
            for i in 0..n {
                let ax: f64 = (0..n).map(|k| a[i * n + k] * x[k]).sum();
                assert!((ax - values[r] * x[i]).abs() < 1e-12, "row {r}");
            }
        }
    }
}
