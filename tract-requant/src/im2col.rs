//! A faster im2col for int8 convolutions whose kernel takes the K=4-inner
//! packing (`PackedI8K4`: tract's AVX2, VNNI, AMX and arm64 dot kernels).
//!
//! tract-core's `Im2Col` zero-fills the whole packed buffer, then hands a
//! writer one k row (every output position) at a time; the writer stages four
//! rows and interleaves them into the panels. Every byte is written three
//! times and read twice, on one thread: on the `edge` int8 model that was 38%
//! of a frame. [`Im2colI8K4`] writes each panel directly: per block of four k
//! it gathers the `r` values of each k (one contiguous run of input bytes when
//! the panel's output positions share an output row and the stride is 1),
//! interleaves them into `4 r` bytes and stores them once; the lanes past the
//! last output position and the K padding get their zeros in the same pass.
//! Panels are split over tract's executor threads.
//!
//! The packed bytes are the same as tract-core's (the tests compare them for
//! every int8 kernel of the host and a range of geometries), so the matrix
//! product that reads them is unchanged.

use tract_core::internal::*;
use tract_core::ops::cnn::conv::Im2Col;
use tract_core::ops::nn::DataFormat;
use tract_core::tract_linalg::mmm::{
    EagerPackedInput, MMMInputValue, PackedExoticFact, PackedMatrixStorage,
};
use tract_core::tract_linalg::multithread::par_chunks_mut;
use tract_core::tract_linalg::pack::PackedI8K4;

/// The widest panel handled (lanes per panel, `r`); tract's int8 kernels use
/// 8 or 16.
const MAX_R: usize = 64;

/// Where the value of one k (one input channel and kernel position) comes
/// from, relative to an output position.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct KTap {
    /// Offset of the input channel's plane.
    pub(crate) plane: usize,
    /// `ky * dilation_y - pad_top`: input row = `oy * stride_y + dy`.
    pub(crate) dy: isize,
    /// `kx * dilation_x - pad_left`: input column = `ox * stride_x + dx`.
    pub(crate) dx: isize,
}

/// im2col of a 2-D, group-1, channels-first 8-bit convolution input straight
/// into the `PackedI8K4` panels of the matrix product that follows, with the
/// output of tract-core's `Im2Col` (same exotic fact, same bytes).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Im2colI8K4 {
    /// The kernel's packing of the activations.
    pub(crate) format: PackedI8K4,
    /// The input shape, as the node receives it.
    input_shape: TVec<usize>,
    /// Input height and width.
    pub(crate) ih: usize,
    pub(crate) iw: usize,
    /// Output width.
    pub(crate) ow: usize,
    /// Output positions (`oh * ow`): the matrix product's n.
    pub(crate) n: usize,
    /// Vertical and horizontal stride.
    pub(crate) sy: usize,
    pub(crate) sx: usize,
    /// One tap per k, in tract's order (channel, then kernel row, column).
    pub(crate) taps: Vec<KTap>,
}

impl Im2colI8K4 {
    /// The replacement for `op`, an `Im2Col` reading an input of `input_fact`
    /// and producing `output_fact`, when this op handles its case (see the
    /// module doc); `None` otherwise.
    pub fn for_im2col(
        op: &Im2Col,
        input_fact: &TypedFact,
        output_fact: &TypedFact,
    ) -> Option<Self> {
        let dt = input_fact.datum_type.unquantized();
        if op.group != 1 || !(dt == DatumType::I8 || dt == DatumType::U8) {
            return None;
        }
        let spec = &op.pool_spec;
        if !matches!(spec.data_format, DataFormat::NCHW | DataFormat::CHW) {
            return None;
        }
        let pof = output_fact
            .exotic_fact
            .as_ref()?
            .downcast_ref::<PackedExoticFact>()?;
        let format = pof.format.downcast_ref::<PackedI8K4>()?.clone();
        if format.r == 0 || format.r > MAX_R || format.k_pad % 4 != 0 || format.k_pad == 0 {
            return None;
        }
        let input_shape: TVec<usize> = input_fact.shape.as_concrete()?.into();
        if spec.data_format.has_n() && input_shape.first() != Some(&1) {
            return None;
        }
        let geo = spec.compute_geo(&input_fact.shape).ok()?;
        let geo = geo.to_concrete(&input_shape).ok()?;
        let patch = &geo.patch;
        if patch.spec.kernel_shape.len() != 2 || patch.output_shape.len() != 2 {
            return None;
        }
        let c = *geo.input_shape.c();
        let hw = geo.input_shape.hw_dims();
        let (ih, iw) = (hw[0], hw[1]);
        let (oh, ow) = (patch.output_shape[0], patch.output_shape[1]);
        let (kh, kw) = (patch.spec.kernel_shape[0], patch.spec.kernel_shape[1]);
        let n = oh * ow;
        if n == 0 || pof.k != c * kh * kw || pof.mn.to_usize().ok()? != n {
            return None;
        }
        let (sy, sx) = (patch.spec.strides[0], patch.spec.strides[1]);
        let (dily, dilx) = (patch.spec.dilations[0], patch.spec.dilations[1]);
        let (pt, pl) = (patch.pad_before[0] as isize, patch.pad_before[1] as isize);
        let mut taps = Vec::with_capacity(pof.k);
        for ci in 0..c {
            for ky in 0..kh {
                for kx in 0..kw {
                    taps.push(KTap {
                        plane: ci * ih * iw,
                        dy: (ky * dily) as isize - pt,
                        dx: (kx * dilx) as isize - pl,
                    });
                }
            }
        }
        Some(Im2colI8K4 {
            format,
            input_shape,
            ih,
            iw,
            ow,
            n,
            sy,
            sx,
            taps,
        })
    }

    /// Fail unless `input` has the shape this im2col was made for.
    pub(crate) fn check_input(&self, input: &Tensor) -> TractResult<()> {
        ensure!(
            input.shape() == &*self.input_shape,
            "Im2colI8K4: input shape {:?}, expected {:?}",
            input.shape(),
            self.input_shape
        );
        Ok(())
    }

    /// The matrix product's k: one per tap.
    pub(crate) fn k(&self) -> usize {
        self.taps.len()
    }

    /// The exotic fact of the output, as tract-core's `Im2Col` declares it.
    pub(crate) fn packed_fact(&self) -> PackedExoticFact {
        PackedExoticFact {
            format: Box::new(self.format.clone()),
            k: self.k(),
            mn: self.n.to_dim(),
        }
    }

    /// Write panel `p` (`out`, `single_panel_len(k)` bytes) from `src`.
    pub(crate) fn panel(&self, p: usize, src: &[u8], pad: u8, out: &mut [u8]) {
        let r = self.format.r;
        let n0 = p * r;
        let lanes = r.min(self.n - n0);
        let (oy, ox) = (n0 / self.ow, n0 % self.ow);
        // The common case: all r lanes in one output row, read with stride 1.
        if lanes == r && ox + r <= self.ow && self.sx == 1 {
            match r {
                16 => return self.whole_panel::<16>(oy, ox, src, pad, out),
                8 => return self.whole_panel::<8>(oy, ox, src, pad, out),
                _ => {}
            }
        }
        // The panel's output positions as runs within one output row:
        // (first lane, output row, first output column, length).
        let mut runs: TVec<(usize, usize, usize, usize)> = tvec!();
        let mut lane = 0;
        while lane < lanes {
            let (oy, ox) = ((n0 + lane) / self.ow, (n0 + lane) % self.ow);
            let len = (self.ow - ox).min(lanes - lane);
            runs.push((lane, oy, ox, len));
            lane += len;
        }
        // Lanes past `lanes` stay zero in every row.
        let mut rows = [[0u8; MAX_R]; 4];
        let mut blocks = out.chunks_exact_mut(4 * r);
        for (taps, block) in self.taps.chunks(4).zip(&mut blocks) {
            for (t, row) in rows.iter_mut().enumerate() {
                match taps.get(t) {
                    Some(tap) => {
                        for &(first, oy, ox, len) in &runs {
                            self.gather(tap, oy, ox, src, pad, &mut row[first..first + len]);
                        }
                    }
                    None => row[..lanes].fill(0),
                }
            }
            interleave([&rows[0], &rows[1], &rows[2], &rows[3]], r, block);
        }
        // K padding.
        blocks.for_each(|b| b.fill(0));
    }

    /// [`Self::panel`] for `R` lanes in output row `oy` from column `ox`,
    /// stride 1: each k's `R` values are read in place when its input
    /// columns are inside the row (gathered with padding otherwise).
    #[inline(always)]
    fn whole_panel<const R: usize>(
        &self,
        oy: usize,
        ox: usize,
        src: &[u8],
        pad: u8,
        out: &mut [u8],
    ) {
        let pads = [pad; MAX_R];
        let zeros = [0u8; MAX_R];
        let mut edge = [[0u8; MAX_R]; 4];
        let iy0 = (oy * self.sy) as isize;
        let mut blocks = out.chunks_exact_mut(4 * R);
        for (taps, block) in self.taps.chunks(4).zip(&mut blocks) {
            let mut rows: [&[u8]; 4] = [&zeros; 4];
            for ((tap, row), edge) in taps.iter().zip(rows.iter_mut()).zip(edge.iter_mut()) {
                let iy = iy0 + tap.dy;
                let ix0 = ox as isize + tap.dx;
                *row = if iy < 0 || iy >= self.ih as isize {
                    &pads
                } else if ix0 >= 0 && ix0 as usize + R <= self.iw {
                    let at = tap.plane + iy as usize * self.iw + ix0 as usize;
                    &src[at..at + R]
                } else {
                    self.gather(tap, oy, ox, src, pad, &mut edge[..R]);
                    &edge[..]
                };
            }
            interleave(rows, R, block);
        }
        blocks.for_each(|b| b.fill(0));
    }

    /// The values of `tap` for output row `oy`, columns `ox..ox + out.len()`.
    #[inline(always)]
    fn gather(&self, tap: &KTap, oy: usize, ox: usize, src: &[u8], pad: u8, out: &mut [u8]) {
        let iy = (oy * self.sy) as isize + tap.dy;
        if iy < 0 || iy >= self.ih as isize {
            out.fill(pad);
            return;
        }
        let row = &src[tap.plane + iy as usize * self.iw..][..self.iw];
        let ix0 = (ox * self.sx) as isize + tap.dx;
        let len = out.len();
        if self.sx == 1 {
            if ix0 >= 0 && ix0 as usize + len <= self.iw {
                out.copy_from_slice(&row[ix0 as usize..ix0 as usize + len]);
            } else {
                // Columns ix0 + i inside the row: i in [lo, hi).
                let lo = (-ix0).clamp(0, len as isize) as usize;
                let hi = (self.iw as isize - ix0).clamp(lo as isize, len as isize) as usize;
                out[..lo].fill(pad);
                if hi > lo {
                    out[lo..hi].copy_from_slice(&row[(ix0 + lo as isize) as usize..][..hi - lo]);
                }
                out[hi..].fill(pad);
            }
        } else {
            for (i, o) in out.iter_mut().enumerate() {
                let ix = ix0 + (i * self.sx) as isize;
                *o = if ix >= 0 && ix < self.iw as isize {
                    row[ix as usize]
                } else {
                    pad
                };
            }
        }
    }
}

/// The padding byte of an im2col: the first byte of its optional second
/// input (tract passes the input's zero point), else 0.
pub(crate) fn pad_value(input: Option<&TValue>) -> TractResult<u8> {
    Ok(match input {
        Some(p) => *p
            .try_as_plain_ram()?
            .as_bytes()
            .first()
            .context("empty pad value")?,
        None => 0,
    })
}

/// `out[4 j + t] = rows[t][j]` for the `r` lanes `j` (each row holds at
/// least `r` bytes, `out` at least `4 r`).
#[inline(always)]
pub(crate) fn interleave(rows: [&[u8]; 4], r: usize, out: &mut [u8]) {
    let out = &mut out[..4 * r];
    let rows = rows.map(|row| &row[..r]);
    #[cfg(target_arch = "x86_64")]
    if r % 8 == 0 {
        // SAFETY: SSE2 is part of x86-64. Each step reads 8 or 16 bytes at
        // j of rows of r bytes (j + 8 <= r, or j + 16 <= r for the wide
        // step) and writes 32 or 64 bytes at 4 j of `out` (4 r bytes).
        unsafe {
            use std::arch::x86_64::*;
            let mut j = 0;
            while j < r {
                let o = out.as_mut_ptr().add(4 * j) as *mut __m128i;
                let ld = |t: usize| rows[t].as_ptr().add(j) as *const __m128i;
                if j + 16 <= r {
                    let (a, b) = (_mm_loadu_si128(ld(0)), _mm_loadu_si128(ld(1)));
                    let (c, d) = (_mm_loadu_si128(ld(2)), _mm_loadu_si128(ld(3)));
                    let ab_lo = _mm_unpacklo_epi8(a, b);
                    let ab_hi = _mm_unpackhi_epi8(a, b);
                    let cd_lo = _mm_unpacklo_epi8(c, d);
                    let cd_hi = _mm_unpackhi_epi8(c, d);
                    _mm_storeu_si128(o, _mm_unpacklo_epi16(ab_lo, cd_lo));
                    _mm_storeu_si128(o.add(1), _mm_unpackhi_epi16(ab_lo, cd_lo));
                    _mm_storeu_si128(o.add(2), _mm_unpacklo_epi16(ab_hi, cd_hi));
                    _mm_storeu_si128(o.add(3), _mm_unpackhi_epi16(ab_hi, cd_hi));
                    j += 16;
                } else {
                    let (a, b) = (_mm_loadl_epi64(ld(0)), _mm_loadl_epi64(ld(1)));
                    let (c, d) = (_mm_loadl_epi64(ld(2)), _mm_loadl_epi64(ld(3)));
                    let ab = _mm_unpacklo_epi8(a, b);
                    let cd = _mm_unpacklo_epi8(c, d);
                    _mm_storeu_si128(o, _mm_unpacklo_epi16(ab, cd));
                    _mm_storeu_si128(o.add(1), _mm_unpackhi_epi16(ab, cd));
                    j += 8;
                }
            }
        }
        return;
    }
    #[cfg(target_arch = "aarch64")]
    if r % 16 == 0 {
        // SAFETY: NEON is part of aarch64; each step reads 16 bytes at j of
        // rows of r bytes and vst4q_u8 writes 64 bytes at 4 j of `out`.
        unsafe {
            use std::arch::aarch64::*;
            for j in (0..r).step_by(16) {
                let v = uint8x16x4_t(
                    vld1q_u8(rows[0].as_ptr().add(j)),
                    vld1q_u8(rows[1].as_ptr().add(j)),
                    vld1q_u8(rows[2].as_ptr().add(j)),
                    vld1q_u8(rows[3].as_ptr().add(j)),
                );
                vst4q_u8(out.as_mut_ptr().add(4 * j), v);
            }
        }
        return;
    }
    for (j, lane) in out.chunks_exact_mut(4).enumerate() {
        lane.copy_from_slice(&[rows[0][j], rows[1][j], rows[2][j], rows[3][j]]);
    }
}

impl Op for Im2colI8K4 {
    fn name(&self) -> StaticName {
        "Im2colI8K4".into()
    }

    fn info(&self) -> TractResult<Vec<String>> {
        Ok(vec![format!(
            "k {} n {} into {:?}, stride {}x{}",
            self.k(),
            self.n,
            self.format,
            self.sy,
            self.sx
        )])
    }

    op_as_typed_op!();
}

impl EvalOp for Im2colI8K4 {
    op_out_of_plan!();

    fn eval(&self, _ctx: &EvalContext, inputs: TVec<TValue>) -> TractResult<TVec<TValue>> {
        let input = &inputs[0];
        self.check_input(input)?;
        let dt = input.datum_type();
        let pad = pad_value(inputs.get(1))?;
        let src = input.try_as_plain_ram()?.as_bytes();
        let panel_len = self.format.single_panel_len(self.k());
        let panels = self.n.div_ceil(self.format.r);
        // SAFETY: `panel` writes every byte of every panel.
        let mut data = unsafe {
            Tensor::uninitialized_aligned_dt(dt, &[panels * panel_len], self.format.alignment())?
        };
        let out = data.as_bytes_mut();
        let total = out.len();
        par_chunks_mut(out, panel_len, total, |first, chunk| {
            for (i, panel) in chunk.chunks_exact_mut(panel_len).enumerate() {
                self.panel(first + i, src, pad, panel);
            }
            Ok(())
        })?;
        let value: Box<dyn MMMInputValue> = Box::new(EagerPackedInput {
            fact: self.packed_fact(),
            packed: data.into_blob()?.into(),
            panel_bytes: panel_len,
            mn: self.n,
        });
        let output = PackedMatrixStorage::new_batched(&[1, 1], tvec!(value)).into_tensor(dt);
        Ok(tvec!(output.into_tvalue()))
    }
}

impl TypedOp for Im2colI8K4 {
    as_op!();

    fn output_facts(&self, inputs: &[&TypedFact]) -> TractResult<TVec<TypedFact>> {
        Ok(tvec!(inputs[0]
            .datum_type
            .fact([1, 1])
            .with_exotic_fact(self.packed_fact())))
    }
}

/// Replace every `Im2Col` of `model` that [`Im2colI8K4`] handles. Returns
/// how many were replaced; the model computes the same values afterwards.
pub fn replace(model: &mut TypedModel) -> TractResult<usize> {
    crate::replace_each(model, Im2colI8K4::for_im2col)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_data::{bytes, run_both, tensor};
    use tract_core::ops::cnn::{PaddingSpec, PoolSpec};
    use tract_core::tract_linalg::mmm::MatMatMul;
    use tract_core::tract_linalg::multithread::Executor;
    use tract_core::tract_linalg::MmmDispatch;

    /// One kernel per distinct `PackedI8K4` activation format this host can
    /// run (r and K padding), with the index of that packing.
    fn kernels() -> Vec<(Box<dyn MatMatMul>, usize)> {
        let mut seen: Vec<PackedI8K4> = vec![];
        let mut found = vec![];
        for mmm in MmmDispatch::native().runnable() {
            for (ix, (_, b)) in mmm.packings().iter().enumerate() {
                if let Some(f) = b.downcast_ref::<PackedI8K4>() {
                    if !seen.contains(f) {
                        seen.push(f.clone());
                        found.push((mmm.clone(), ix));
                    }
                }
            }
        }
        found
    }

    /// A model `source -> Im2Col`, the conv's input of shape `[1, c, h, w]`.
    fn model(
        spec: &PoolSpec,
        shape: [usize; 4],
        dt: DatumType,
        kernel: &(Box<dyn MatMatMul>, usize),
        pad: Option<u8>,
    ) -> TypedModel {
        let mut m = TypedModel::default();
        let fact = dt.fact(shape);
        let x = m.add_source("x", fact.clone()).unwrap();
        let k = shape[1] * spec.kernel_shape.iter().product::<usize>();
        let op = Im2Col::new(spec.clone(), 1, k, &fact.shape, kernel.0.clone(), kernel.1).unwrap();
        let mut inputs = vec![x];
        if let Some(p) = pad {
            let t = tensor(&[], &[p], dt);
            inputs.push(m.add_const("pad", t).unwrap());
        }
        let y = m.wire_node("im2col", op, &inputs).unwrap()[0];
        m.select_output_outlets(&[y]).unwrap();
        m
    }

    /// The packed bytes, panel length and n of an im2col output.
    fn packed(t: &TValue) -> (Vec<u8>, usize, usize, String) {
        let storage = t.try_storage_as::<PackedMatrixStorage>().unwrap();
        let v = storage.value().downcast_ref::<EagerPackedInput>().unwrap();
        (
            v.packed.as_bytes().to_vec(),
            v.panel_bytes,
            v.mn,
            format!("{:?}", v.fact),
        )
    }

    fn spec(
        kernel: [usize; 2],
        strides: [usize; 2],
        dil: [usize; 2],
        padding: PaddingSpec,
        c: usize,
    ) -> PoolSpec {
        PoolSpec {
            data_format: DataFormat::NCHW,
            kernel_shape: kernel[..].into(),
            padding,
            dilations: Some(dil[..].into()),
            strides: Some(strides[..].into()),
            input_channels: c,
            output_channels: 8,
        }
    }

    /// The geometries compared: 3x3 "same" convs as in the `edge` model
    /// (widths that are and are not multiples of the panel width, so
    /// panels wrap across output rows), 1x1, strides, dilation, asymmetric
    /// padding, a kernel larger than its padded input's valid zone, and k
    /// not a multiple of 4.
    fn geometries() -> Vec<(PoolSpec, [usize; 4])> {
        use PaddingSpec::*;
        let e = |b: [usize; 2], a: [usize; 2]| Explicit(b[..].into(), a[..].into());
        vec![
            (
                spec([3, 3], [1, 1], [1, 1], e([1, 1], [1, 1]), 3),
                [1, 3, 16, 16],
            ),
            (
                spec([3, 3], [1, 1], [1, 1], e([1, 1], [1, 1]), 5),
                [1, 5, 13, 21],
            ),
            (
                spec([3, 3], [1, 1], [1, 1], e([1, 1], [1, 1]), 32),
                [1, 32, 24, 24],
            ),
            (
                spec([3, 3], [1, 1], [1, 1], e([1, 1], [1, 1]), 6),
                [1, 6, 12, 12],
            ),
            (spec([1, 1], [1, 1], [1, 1], Valid, 2), [1, 2, 9, 10]),
            (
                spec([3, 3], [2, 2], [1, 1], e([1, 1], [1, 1]), 4),
                [1, 4, 17, 19],
            ),
            (spec([5, 5], [1, 1], [2, 2], SameUpper, 3), [1, 3, 12, 12]),
            (
                spec([3, 1], [1, 2], [1, 1], e([0, 1], [2, 0]), 7),
                [1, 7, 6, 40],
            ),
            (
                spec([7, 7], [1, 1], [1, 1], e([3, 3], [3, 3]), 1),
                [1, 1, 5, 5],
            ),
            (spec([3, 3], [1, 1], [1, 1], Valid, 3), [1, 3, 20, 35]),
        ]
    }

    fn compare(executor: Executor) {
        let kernels = kernels();
        assert!(
            !kernels.is_empty(),
            "an int8 kernel with the K=4-inner packing"
        );
        let mut compared = 0;
        for kernel in &kernels {
            for (g, (spec, shape)) in geometries().into_iter().enumerate() {
                for (dt, pad) in [
                    (DatumType::I8, None),
                    (DatumType::U8, Some(131u8)),
                    (DatumType::I8, Some(0xfd)),
                ] {
                    let reference = model(&spec, shape, dt, kernel, pad);
                    let mut ours = reference.clone();
                    assert_eq!(
                        replace(&mut ours).unwrap(),
                        1,
                        "geometry {g} {dt:?} replaced"
                    );
                    let data = bytes(shape.iter().product(), g as u32);
                    let x = tensor(&shape, &data, dt);
                    let (want, got) = run_both(reference, ours, x, &executor);
                    assert_eq!(got[0].datum_type(), want[0].datum_type());
                    let (w, g_) = (packed(&want[0]), packed(&got[0]));
                    assert_eq!(g_.1, w.1, "panel bytes, geometry {g}, {:?}", kernel.0);
                    assert_eq!(g_.2, w.2, "n, geometry {g}");
                    assert_eq!(g_.3, w.3, "packed fact, geometry {g}");
                    assert!(
                        g_.0 == w.0,
                        "packed bytes differ: geometry {g} {dt:?} pad {pad:?}, {:?}",
                        kernel.0
                    );
                    compared += 1;
                }
            }
        }
        assert_eq!(compared, kernels.len() * 30);
    }

    #[test]
    fn same_bytes_as_tract_core_im2col() {
        compare(Executor::SingleThread);
    }

    #[test]
    fn same_bytes_split_over_threads() {
        tract_core::tract_linalg::multithread::set_threading_element_threshold(0);
        compare(Executor::multithread(3));
    }

    #[test]
    fn grouped_and_channels_last_convs_are_left_to_tract() {
        let kernel = &kernels()[0];
        let mut s = spec([3, 3], [1, 1], [1, 1], PaddingSpec::Valid, 4);
        s.data_format = DataFormat::NHWC;
        let mut m = model(&s, [1, 8, 8, 4], DatumType::I8, kernel, None);
        assert_eq!(replace(&mut m).unwrap(), 0);
    }
}
