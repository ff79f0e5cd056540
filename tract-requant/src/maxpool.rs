//! A 2x2, stride-2 max pooling of 8-bit channels-first tensors, the pooling
//! between the `edge` model's convolution blocks.
//!
//! tract-core's `OptMaxPool` walks every output position through its generic
//! patch iterator: on the `edge` int8 model its four poolings took 1.5 ms of
//! a 26 ms frame (onnxruntime: 0.2 ms). [`MaxPool2x2`] takes the maximum of
//! two input rows 16 bytes at a time, then of neighbouring bytes, and splits
//! the channels over tract's executor threads. Same output as tract-core's
//! (tested, odd sizes included: the last row or column is dropped, as with
//! `Valid` padding).

use tract_core::internal::*;
use tract_core::ops::cnn::{OptMaxPool, PaddingSpec};
use tract_core::ops::nn::DataFormat;
use tract_core::tract_linalg::multithread::par_chunks_mut;

/// Max pooling, 2x2 kernel, stride 2, no padding, of a `[1, C, H, W]` or
/// `[C, H, W]` tensor of `u8` or `i8` (quantized forms included).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct MaxPool2x2 {
    /// The input shape, as the node receives it.
    input_shape: TVec<usize>,
    /// The output shape (the input's with H and W halved, rounded down).
    output_shape: TVec<usize>,
    /// Whether the values are signed (`i8`).
    signed: bool,
}

impl MaxPool2x2 {
    /// The replacement for `op` on an input of `input_fact`, when it is this
    /// case; `None` otherwise.
    pub fn for_max_pool(op: &OptMaxPool, input_fact: &TypedFact) -> Option<Self> {
        let spec = &op.pool_spec;
        let dt = input_fact.datum_type.unquantized();
        let ones = |v: &Option<TVec<usize>>| v.as_ref().is_none_or(|v| v.iter().all(|&d| d == 1));
        if op.with_index_outputs.is_some()
            || !(dt == DatumType::U8 || dt == DatumType::I8)
            || !matches!(spec.data_format, DataFormat::NCHW | DataFormat::CHW)
            || spec.kernel_shape.as_slice() != [2, 2]
            || spec.strides.as_deref() != Some(&[2, 2])
            || !ones(&spec.dilations)
            || spec.padding != PaddingSpec::Valid
        {
            return None;
        }
        let input_shape: TVec<usize> = input_fact.shape.as_concrete()?.into();
        let rank = if spec.data_format.has_n() { 4 } else { 3 };
        if input_shape.len() != rank || (rank == 4 && input_shape[0] != 1) {
            return None;
        }
        let mut output_shape = input_shape.clone();
        output_shape[rank - 2] /= 2;
        output_shape[rank - 1] /= 2;
        if output_shape.contains(&0) {
            return None;
        }
        Some(MaxPool2x2 {
            input_shape,
            output_shape,
            signed: dt == DatumType::I8,
        })
    }

    /// Input height and width, output height and width.
    fn dims(&self) -> (usize, usize, usize, usize) {
        let r = self.input_shape.len();
        (
            self.input_shape[r - 2],
            self.input_shape[r - 1],
            self.output_shape[r - 2],
            self.output_shape[r - 1],
        )
    }
}

/// One output row: `out[x] = max(a[2x], a[2x+1], b[2x], b[2x+1])`. The bytes
/// are compared as `u8` after an xor with `flip` (0x80 for `i8` data: the
/// sign bit flipped makes unsigned order the signed one), the result xored
/// back.
#[inline(always)]
fn row(a: &[u8], b: &[u8], out: &mut [u8], flip: u8) {
    // Advanced by the SIMD loops (x86-64, aarch64); the rest is scalar.
    #[allow(unused_mut)]
    let mut x = 0;
    #[cfg(target_arch = "x86_64")]
    // SAFETY: SSE2 is part of x86-64; each step reads 32 bytes at 2 x of
    // `a` and `b` (2 x + 32 <= 2 out.len() <= their lengths) and writes 16
    // at x of `out`.
    unsafe {
        use std::arch::x86_64::*;
        let low = _mm_set1_epi16(0x00ff);
        let f = _mm_set1_epi8(flip as i8);
        let ld = |p: *const u8| _mm_xor_si128(_mm_loadu_si128(p as _), f);
        while x + 16 <= out.len() {
            let (pa, pb) = (a.as_ptr().add(2 * x), b.as_ptr().add(2 * x));
            let v0 = _mm_max_epu8(ld(pa), ld(pb));
            let v1 = _mm_max_epu8(ld(pa.add(16)), ld(pb.add(16)));
            let even = _mm_packus_epi16(_mm_and_si128(v0, low), _mm_and_si128(v1, low));
            let odd = _mm_packus_epi16(_mm_srli_epi16(v0, 8), _mm_srli_epi16(v1, 8));
            let m = _mm_xor_si128(_mm_max_epu8(even, odd), f);
            _mm_storeu_si128(out.as_mut_ptr().add(x) as _, m);
            x += 16;
        }
    }
    #[cfg(target_arch = "aarch64")]
    // SAFETY: NEON is part of aarch64; reads and writes as above.
    unsafe {
        use std::arch::aarch64::*;
        let f = vdupq_n_u8(flip);
        let ld = |p: *const u8| veorq_u8(vld1q_u8(p), f);
        while x + 16 <= out.len() {
            let (pa, pb) = (a.as_ptr().add(2 * x), b.as_ptr().add(2 * x));
            let v0 = vmaxq_u8(ld(pa), ld(pb));
            let v1 = vmaxq_u8(ld(pa.add(16)), ld(pb.add(16)));
            vst1q_u8(out.as_mut_ptr().add(x), veorq_u8(vpmaxq_u8(v0, v1), f));
            x += 16;
        }
    }
    for (x, o) in out.iter_mut().enumerate().skip(x) {
        let v = |p: &[u8], i: usize| p[i] ^ flip;
        *o = v(a, 2 * x)
            .max(v(a, 2 * x + 1))
            .max(v(b, 2 * x))
            .max(v(b, 2 * x + 1))
            ^ flip;
    }
}

impl Op for MaxPool2x2 {
    fn name(&self) -> StaticName {
        "MaxPool2x2".into()
    }

    fn info(&self) -> TractResult<Vec<String>> {
        Ok(vec![format!(
            "{:?} -> {:?}",
            self.input_shape, self.output_shape
        )])
    }

    op_as_typed_op!();
}

impl EvalOp for MaxPool2x2 {
    op_out_of_plan!();

    fn eval(&self, _ctx: &EvalContext, inputs: TVec<TValue>) -> TractResult<TVec<TValue>> {
        let input = &inputs[0];
        ensure!(
            input.shape() == &*self.input_shape,
            "MaxPool2x2: input shape {:?}, expected {:?}",
            input.shape(),
            self.input_shape
        );
        let (ih, iw, oh, ow) = self.dims();
        let src = input.try_as_plain_ram()?.as_bytes();
        let flip = if self.signed { 0x80 } else { 0 };
        // SAFETY: every byte is written below.
        let mut output =
            unsafe { Tensor::uninitialized_dt(input.datum_type(), &self.output_shape)? };
        let out = output.as_bytes_mut();
        let total = src.len();
        par_chunks_mut(out, oh * ow, total, |first, chunk| {
            for (i, plane) in chunk.chunks_exact_mut(oh * ow).enumerate() {
                let input = &src[(first + i) * ih * iw..][..ih * iw];
                for (y, out) in plane.chunks_exact_mut(ow).enumerate() {
                    let rows = &input[2 * y * iw..][..2 * iw];
                    row(&rows[..iw], &rows[iw..], out, flip);
                }
            }
            Ok(())
        })?;
        Ok(tvec!(output.into_tvalue()))
    }
}

impl TypedOp for MaxPool2x2 {
    as_op!();

    fn output_facts(&self, inputs: &[&TypedFact]) -> TractResult<TVec<TypedFact>> {
        Ok(tvec!(inputs[0].datum_type.fact(&*self.output_shape)))
    }
}

/// Replace every `OptMaxPool` of `model` that [`MaxPool2x2`] handles.
/// Returns how many were replaced; the model computes the same values
/// afterwards.
pub fn replace(model: &mut TypedModel) -> TractResult<usize> {
    crate::replace_each(model, |op, input, _| MaxPool2x2::for_max_pool(op, input))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_data::{bytes, run_both, same_bytes, tensor};
    use tract_core::ops::cnn::{MaxPool, PoolSpec};
    use tract_core::tract_linalg::multithread::Executor;

    /// `source -> MaxPool` (`k` x `k`, stride 2), optimized by tract (into
    /// its `OptMaxPool`).
    fn model(shape: &[usize], dt: DatumType, format: DataFormat, k: usize) -> TypedModel {
        let mut m = TypedModel::default();
        let x = m.add_source("x", dt.fact(shape)).unwrap();
        let spec = PoolSpec {
            data_format: format,
            kernel_shape: tvec!(k, k),
            padding: PaddingSpec::Valid,
            dilations: None,
            strides: Some(tvec!(2, 2)),
            input_channels: shape[shape.len() - 3],
            output_channels: shape[shape.len() - 3],
        };
        let pool = MaxPool {
            pool_spec: spec,
            with_index_outputs: None,
        };
        let y = m.wire_node("pool", pool, &[x]).unwrap()[0];
        m.select_output_outlets(&[y]).unwrap();
        m.into_optimized().unwrap()
    }

    fn compare(executor: Executor) {
        let shapes: [&[usize]; 5] = [
            &[1, 3, 8, 8],
            &[1, 5, 17, 45],
            &[1, 32, 40, 66],
            &[2, 7, 9],
            &[1, 1, 2, 2],
        ];
        for shape in shapes {
            for dt in [DatumType::U8, DatumType::I8] {
                let format = if shape.len() == 4 {
                    DataFormat::NCHW
                } else {
                    DataFormat::CHW
                };
                let reference = model(shape, dt, format, 2);
                let mut ours = reference.clone();
                assert_eq!(replace(&mut ours).unwrap(), 1, "{shape:?} {dt:?}");
                let len: usize = shape.iter().product();
                let x = tensor(shape, &bytes(len, len as u32), dt);
                let (want, got) = run_both(reference, ours, x, &executor);
                assert_eq!(got[0].shape(), want[0].shape(), "{shape:?} {dt:?}");
                assert_eq!(got[0].datum_type(), want[0].datum_type());
                assert!(
                    same_bytes(&got[0], &want[0]),
                    "{shape:?} {dt:?}: outputs differ"
                );
            }
        }
    }

    #[test]
    fn same_output_as_tract_core_max_pool() {
        compare(Executor::SingleThread);
    }

    #[test]
    fn same_output_split_over_threads() {
        tract_core::tract_linalg::multithread::set_threading_element_threshold(0);
        compare(Executor::multithread(3));
    }

    #[test]
    fn other_poolings_are_left_to_tract() {
        let mut m = model(&[1, 4, 9, 9], DatumType::U8, DataFormat::NCHW, 3);
        assert_eq!(replace(&mut m).unwrap(), 0);
    }
}
