//! f32 to u8 quantization (ONNX `QuantizeLinear` to u8), the first op of
//! an int8 model: `y = clamp(round_half_even(x * scale) + zero_point, 0,
//! 255)`.
//!
//! tract-core's `QuantizeLinearU8` rounds each value with a scalar
//! bit-twiddling function: 0.17-0.19 ms for the `edge` model's 110,592
//! input values, 2% of an int8 frame. [`QuantizeU8`] computes the same in
//! AVX2 where the CPU has it, 32 values per step (scale, NaN to 0, clamp to
//! `[-zero_point, 255 - zero_point]`, round half to even with `cvtps2dq`,
//! add the zero point, narrow with saturating packs), and falls back to
//! tract-core's own function for values whose `|x * scale|` reaches `2^30`
//! (where tract's integer addition can wrap) and on other CPUs. Same bytes
//! as tract's (tested, NaN, infinities and huge values included).

use tract_core::internal::*;
use tract_core::ops::element_wise::ElementWiseOp;
use tract_core::ops::quant::{quantize_linear_f32_u8, QuantizeLinearU8};

/// Beyond this `|x * scale|` the AVX2 path leaves a block to tract's
/// function: `2^30`.
#[cfg(target_arch = "x86_64")]
const LIMIT: f32 = 1_073_741_824.0;

/// Quantize an f32 tensor to u8 (or its quantized form).
#[derive(Debug, Clone, PartialEq)]
pub struct QuantizeU8 {
    /// The multiplier (tract's `QuantizeLinearU8::scale`, the inverse of
    /// the ONNX scale).
    scale: f32,
    /// The zero point.
    zero_point: u8,
    /// The output type: `u8` or a quantized `u8`, as the replaced node had.
    out: DatumType,
}

// The scale is finite (checked where the op is made), so `==` is an
// equivalence.
impl Eq for QuantizeU8 {}

impl std::hash::Hash for QuantizeU8 {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.scale.to_bits().hash(state);
        self.zero_point.hash(state);
        self.out.hash(state);
    }
}

impl QuantizeU8 {
    /// The replacement for `op` on an f32 input, when it is a
    /// `QuantizeLinearU8` with a finite scale; `None` otherwise.
    pub fn for_element_wise(
        op: &ElementWiseOp,
        input_fact: &TypedFact,
        output_fact: &TypedFact,
    ) -> Option<Self> {
        let q = op.0.downcast_ref::<QuantizeLinearU8>()?;
        if input_fact.datum_type != DatumType::F32
            || output_fact.datum_type.unquantized() != DatumType::U8
            || !q.scale.is_finite()
        {
            return None;
        }
        Some(QuantizeU8 {
            scale: q.scale,
            zero_point: q.zero_point,
            out: output_fact.datum_type,
        })
    }

    /// All of `x` into `y` (the same length).
    fn run(&self, x: &[f32], y: &mut [u8]) {
        #[allow(unused_mut)]
        let mut done = 0;
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU has AVX2.
            done = unsafe { self.run_avx2(x, y) };
        }
        self.run_exact(&x[done..], &mut y[done..]);
    }

    /// tract-core's own function, value by value.
    fn run_exact(&self, x: &[f32], y: &mut [u8]) {
        let zp = self.zero_point as i32;
        for (x, y) in x.iter().zip(y.iter_mut()) {
            *y = quantize_linear_f32_u8(*x, self.scale, zp);
        }
    }

    /// Blocks of 32 values in AVX2 (see the module doc); a block with a
    /// value beyond [`LIMIT`] goes through [`Self::run_exact`]. Returns
    /// how many values were written (a multiple of 32).
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    unsafe fn run_avx2(&self, x: &[f32], y: &mut [u8]) -> usize {
        use std::arch::x86_64::*;
        let n = x.len().min(y.len()) / 32 * 32;
        let zp = self.zero_point as i32;
        // SAFETY: AVX2 is enabled here (the caller checked the CPU); each
        // step reads 32 values at i of `x` and writes 32 bytes at i of `y`
        // (i + 32 <= n, at most the shorter length).
        unsafe {
            let s = _mm256_set1_ps(self.scale);
            let (lo, hi) = (
                _mm256_set1_ps(-zp as f32),
                _mm256_set1_ps((255 - zp) as f32),
            );
            let limit = _mm256_set1_ps(LIMIT);
            let sign = _mm256_set1_ps(-0.0);
            let vzp = _mm256_set1_epi32(zp);
            // The packs interleave 128-bit lanes; this restores the order.
            let order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
            for i in (0..n).step_by(32) {
                let p = x.as_ptr().add(i);
                let mut big = _mm256_setzero_ps();
                let mut q = [_mm256_setzero_si256(); 4];
                for (k, q) in q.iter_mut().enumerate() {
                    let v = _mm256_mul_ps(_mm256_loadu_ps(p.add(8 * k)), s);
                    big = _mm256_or_ps(
                        big,
                        _mm256_cmp_ps(_mm256_andnot_ps(sign, v), limit, _CMP_GE_OQ),
                    );
                    // NaN to 0, as tract's `as i32` makes it.
                    let v = _mm256_and_ps(v, _mm256_cmp_ps(v, v, _CMP_ORD_Q));
                    let v = _mm256_min_ps(_mm256_max_ps(v, lo), hi);
                    *q = _mm256_add_epi32(_mm256_cvtps_epi32(v), vzp);
                }
                if _mm256_movemask_ps(big) != 0 {
                    self.run_exact(&x[i..i + 32], &mut y[i..i + 32]);
                    continue;
                }
                let words = (
                    _mm256_packs_epi32(q[0], q[1]),
                    _mm256_packs_epi32(q[2], q[3]),
                );
                let bytes = _mm256_packus_epi16(words.0, words.1);
                let bytes = _mm256_permutevar8x32_epi32(bytes, order);
                _mm256_storeu_si256(y.as_mut_ptr().add(i) as *mut __m256i, bytes);
            }
        }
        n
    }
}

impl Op for QuantizeU8 {
    fn name(&self) -> StaticName {
        "QuantizeU8".into()
    }

    fn info(&self) -> TractResult<Vec<String>> {
        Ok(vec![format!(
            "scale {} zero point {} -> {:?}",
            self.scale, self.zero_point, self.out
        )])
    }

    op_as_typed_op!();
}

impl EvalOp for QuantizeU8 {
    op_out_of_plan!();

    fn eval(&self, _ctx: &EvalContext, inputs: TVec<TValue>) -> TractResult<TVec<TValue>> {
        let input = &inputs[0];
        let x = input.try_as_plain_ram()?;
        let x = x.as_slice::<f32>()?;
        // SAFETY: `run` writes every byte.
        let mut output = unsafe { Tensor::uninitialized_dt(self.out, input.shape())? };
        self.run(x, output.as_bytes_mut());
        Ok(tvec!(output.into_tvalue()))
    }
}

impl TypedOp for QuantizeU8 {
    as_op!();

    fn output_facts(&self, inputs: &[&TypedFact]) -> TractResult<TVec<TypedFact>> {
        ensure!(
            inputs[0].datum_type == DatumType::F32,
            "QuantizeU8 reads f32, got {:?}",
            inputs[0].datum_type
        );
        Ok(tvec!(self.out.fact(inputs[0].shape.clone())))
    }
}

/// Replace every f32 `QuantizeLinearU8` of `model`. Returns how many were
/// replaced; the model computes the same values afterwards, bit for bit.
pub fn replace(model: &mut TypedModel) -> TractResult<usize> {
    crate::replace_each(model, QuantizeU8::for_element_wise)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_data::{bytes, run_both, same_bytes};
    use tract_core::tract_linalg::multithread::Executor;

    /// `x (f32) -> QuantizeLinearU8`, optimized by tract.
    fn model(len: usize, scale: f32, zero_point: u8) -> TypedModel {
        let mut m = TypedModel::default();
        let x = m.add_source("x", f32::fact([len])).unwrap();
        let op = ElementWiseOp(Box::new(QuantizeLinearU8 { scale, zero_point }), None);
        let y = m.wire_node("q", op, &[x]).unwrap()[0];
        m.select_output_outlets(&[y]).unwrap();
        m.into_optimized().unwrap()
    }

    /// Values around every rounding tie of the u8 range and out of range
    /// both ways; every fourth block of 32 also holds NaN and signed zeros
    /// (which the AVX2 path computes), and every other fourth -inf and
    /// values beyond `2^30` after scaling, below `-2^31` too (which it
    /// leaves to tract's function).
    fn input(len: usize, scale: f32, seed: u32) -> Tensor {
        let quiet = [f32::NAN, 0.0, -0.0];
        // Not +inf nor beyond 2^31 upwards: tract's own function then adds
        // the zero point to i32::MAX, which panics in a debug build.
        let loud = [f32::NEG_INFINITY, 2e9 / scale, -3e9 / scale, 1.5e9 / scale];
        let values: Vec<f32> = bytes(len, seed)
            .iter()
            .enumerate()
            .map(|(i, &b)| match (i / 32 % 4, b) {
                (3, 0..=40) => quiet[i % quiet.len()],
                (1, 0..=10) => loud[i % loud.len()],
                // Exact halves: x * scale = t + 0.5, t in [-128, 127].
                _ if i % 2 == 0 => ((b as i32 - 128) as f32 + 0.5) / scale,
                _ => (b as f32 - 100.0) * 0.548 / scale,
            })
            .collect();
        tensor1(&values)
    }

    #[test]
    fn equals_tracts_quantize_linear_bit_for_bit() {
        for (len, scale, zp) in [
            (32 * 40 + 13, 1.0, 128),
            (32 * 40, 2.0, 0),
            (7, 0.5, 255),
            (1000, 1.0 / 0.0173, 3),
        ] {
            let m = model(len, scale, zp);
            let mut ours = m.clone();
            assert_eq!(replace(&mut ours).unwrap(), 1);
            let x = input(len, scale, len as u32);
            let (want, got) = run_both(m, ours, x, &Executor::SingleThread);
            assert_eq!(got[0].datum_type(), want[0].datum_type());
            assert!(
                same_bytes(&want[0], &got[0]),
                "len {len} scale {scale} zero point {zp}"
            );
        }
    }
}
