//! A tract graph pass for int8 models: each requantization chain that
//! tract-core writes after a quantized convolution or matrix product
//!
//! ```text
//! i32 accumulator -> Scale(per-channel f32) -> [Add zero point] -> Max lo -> Min hi -> Cast u8/i8
//! ```
//!
//! becomes one [`Requant`] node that reads the accumulator once and writes
//! the 8-bit output once. tract evaluates the chain as four or five
//! element-wise passes over the i32 tensor (its `Scale` through a broadcasting
//! `ndarray` zip), and cannot fuse a per-channel scale into its matmul
//! kernels: on the `edge` int8 model these passes were 42% of a frame.
//!
//! The fused op computes exactly what the chain computes, bit for bit (the
//! tests run both on the same inputs, extreme accumulators included):
//! `y = clamp(sat_i32(round_half_even(x as f32 * scale[c])) + zero_point, lo, hi)`.
//!
//! Use [`fuse`] on an optimized model (`into_optimized()`), before making the
//! plan; [`into_optimized`] runs it with the crate's other passes, [`im2col`]
//! (int8 convolutions' im2col), [`conv`] (each int8 convolution's im2col,
//! product and requantization as one op over cache-sized blocks),
//! [`maxpool`] (2x2 pooling of 8-bit tensors), [`reduce`] (f32 maximum over
//! a middle axis) and [`quantize`] (f32 to u8). [`pool::run_in_pool`] runs a
//! plan on tract's thread pool with its other threads kept polling.

use tract_core::internal::*;
use tract_core::ops::binary::TypedBinOp;
use tract_core::ops::cast::Cast;
use tract_core::ops::math::{Add, Max, Min};
use tract_core::ops::quant::Scale;
use tract_core::tract_linalg::multithread::par_chunks_mut;

pub mod conv;
pub mod im2col;
pub mod maxpool;
pub mod pool;
pub mod quantize;
pub mod reduce;

/// One fused requantization: `clamp(round_half_even(x * scale[c]) +
/// zero_point, lo, hi)` from an i32 tensor into an 8-bit one, `c` the index
/// along `axis` (or one scale for the whole tensor).
#[derive(Debug, Clone, PartialEq)]
pub struct Requant {
    /// The scale per index along `axis`, or a single scale.
    pub scale: Vec<f32>,
    /// The axis `scale` runs along (ignored with a single scale).
    pub axis: usize,
    /// Added after rounding (wrapping, as tract's i32 `Add`).
    pub zero_point: i32,
    /// Lower clamp, within the output type's range.
    pub lo: i32,
    /// Upper clamp, within the output type's range.
    pub hi: i32,
    /// The output type: `u8`, `i8` or their quantized forms.
    pub out: DatumType,
}

// Scales are finite (checked where the op is made), so `==` is an equivalence.
impl Eq for Requant {}

impl Op for Requant {
    fn name(&self) -> StaticName {
        "Requant".into()
    }

    fn info(&self) -> TractResult<Vec<String>> {
        Ok(vec![format!(
            "{} scale(s) on axis {}, zero point {}, clamp [{}, {}] -> {:?}",
            self.scale.len(),
            self.axis,
            self.zero_point,
            self.lo,
            self.hi,
            self.out
        )])
    }

    op_as_typed_op!();
}

impl EvalOp for Requant {
    op_out_of_plan!();

    fn eval(&self, _ctx: &EvalContext, inputs: TVec<TValue>) -> TractResult<TVec<TValue>> {
        let input = &inputs[0];
        let shape = input.shape();
        let (outer, channels, inner) = self.split(shape)?;
        let x_view = input.try_as_plain_ram()?;
        let x = x_view.as_slice::<i32>()?;
        // SAFETY: every element is written below before the tensor is read.
        let mut output = unsafe { Tensor::uninitialized_dt(self.out, shape)? };
        {
            let mut y_view = output.try_as_plain_ram_mut()?;
            if self.out.unquantized() == DatumType::U8 {
                self.run(x, y_view.as_slice_mut::<u8>()?, outer, channels, inner)?;
            } else {
                self.run(x, y_view.as_slice_mut::<i8>()?, outer, channels, inner)?;
            }
        }
        Ok(tvec!(output.into_tvalue()))
    }
}

impl TypedOp for Requant {
    as_op!();

    fn output_facts(&self, inputs: &[&TypedFact]) -> TractResult<TVec<TypedFact>> {
        ensure!(
            inputs[0].datum_type == DatumType::I32,
            "Requant reads i32, got {:?}",
            inputs[0].datum_type
        );
        Ok(tvec!(self.out.fact(inputs[0].shape.clone())))
    }
}

/// An 8-bit output element.
trait Out: Copy {
    /// Whether the type is `i8` (`u8` otherwise).
    const SIGNED: bool;
    fn from_i32(v: i32) -> Self;
}

impl Out for u8 {
    const SIGNED: bool = false;
    #[inline(always)]
    fn from_i32(v: i32) -> Self {
        v as u8
    }
}

impl Out for i8 {
    const SIGNED: bool = true;
    #[inline(always)]
    fn from_i32(v: i32) -> Self {
        v as i8
    }
}

/// `2^23`: from here on every f32 is an integer.
const TWO_POW_23: f32 = 8_388_608.0;

/// Round half to even, for every finite f32 (what tract's `Scale` does):
/// below `2^23`, adding and subtracting `2^23` rounds in the FPU's default
/// mode; above it the value is already an integer.
#[inline(always)]
fn round_half_even(v: f32) -> f32 {
    let a = v.abs();
    let r = (a + TWO_POW_23) - TWO_POW_23;
    let r = if a < TWO_POW_23 { r } else { a };
    r.copysign(v)
}

impl Requant {
    /// The input's shape as (outer, channels, inner) around `axis`.
    fn split(&self, shape: &[usize]) -> TractResult<(usize, usize, usize)> {
        if self.scale.len() == 1 {
            return Ok((1, 1, shape.iter().product()));
        }
        ensure!(
            self.axis < shape.len() && shape[self.axis] == self.scale.len(),
            "Requant: {} scales on axis {} of shape {:?}",
            self.scale.len(),
            self.axis,
            shape
        );
        let outer = shape[..self.axis].iter().product();
        let inner = shape[self.axis + 1..].iter().product();
        Ok((outer, shape[self.axis], inner))
    }

    /// The whole tensor, one channel row at a time, through the AVX2
    /// compilation of [`Self::row_fast`] where the CPU has it (the workspace
    /// builds for baseline x86-64, whose SSE2 has no 8-lane conversions).
    /// Rows are split over tract's executor threads; each row is computed
    /// the same way whichever thread runs it.
    fn run<T: Out + Send>(
        &self,
        x: &[i32],
        y: &mut [T],
        outer: usize,
        channels: usize,
        inner: usize,
    ) -> TractResult<()> {
        let avx2 = Self::has_avx2();
        let inner = inner.max(1);
        let rows = (outer * channels).min(y.len() / inner);
        let y = &mut y[..rows * inner];
        par_chunks_mut(y, inner, x.len(), |first, chunk| {
            for (i, y) in chunk.chunks_exact_mut(inner).enumerate() {
                let row = first + i;
                self.row(&x[row * inner..][..inner], y, row % channels, avx2);
            }
            Ok(())
        })
    }

    /// Whether this CPU runs [`Self::row`]'s AVX2 compilation.
    fn has_avx2() -> bool {
        #[cfg(target_arch = "x86_64")]
        return std::arch::is_x86_feature_detected!("avx2");
        #[cfg(not(target_arch = "x86_64"))]
        return false;
    }

    /// One row of channel `channel` (`x` and `y` the same length), through
    /// the AVX2 compilation of [`Self::row_fast`] when `avx2` (the CPU has
    /// it: see [`Self::has_avx2`]), redone exactly when the fast path is not.
    #[inline]
    fn row<T: Out>(&self, x: &[i32], y: &mut [T], channel: usize, avx2: bool) {
        let scale = self.scale[channel];
        #[cfg(target_arch = "x86_64")]
        // SAFETY: only with AVX2 present (the caller's `has_avx2`).
        let exact = if avx2 {
            unsafe { self.row_fast_avx2(x, y, scale) }
        } else {
            self.row_fast(x, y, scale)
        };
        #[cfg(not(target_arch = "x86_64"))]
        let exact = {
            let _ = avx2;
            self.row_fast(x, y, scale)
        };
        if !exact {
            self.row_exact(x, y, scale);
        }
    }

    /// [`Self::row_fast`]'s arithmetic in AVX2, 32 then 8 values per step: convert,
    /// scale, clamp to `[lo - zero_point, hi - zero_point]`, round half to
    /// even (`cvtps2dq` in the default rounding mode), add the zero point,
    /// and narrow with saturating packs (the values are already in range).
    /// The rest of the row goes through [`Self::row_fast`]. Exact under the
    /// same condition, checked from the row's smallest and largest input.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    unsafe fn row_fast_avx2<T: Out>(&self, x: &[i32], y: &mut [T], scale: f32) -> bool {
        use std::arch::x86_64::*;
        let n = x.len().min(y.len());
        let (mut lows, mut highs) = ([0i32; 8], [0i32; 8]);
        // SAFETY: AVX2 is enabled here (the caller checked the CPU); each
        // step reads 32 (or 8) values at i of `x` and writes as many at i
        // of `y` (i + 32 <= n, or i + 8 <= n, n the shorter length); the
        // last stores write the two 8-value arrays.
        let i = unsafe {
            let (a, b) = self.bounds();
            let (s, va, vb) = (_mm256_set1_ps(scale), _mm256_set1_ps(a), _mm256_set1_ps(b));
            let zp = _mm256_set1_epi32(self.zero_point);
            // The packs below interleave 128-bit lanes; this puts the four
            // bytes of each eight-value group back in order.
            let order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
            let (mut min, mut max) = (_mm256_setzero_si256(), _mm256_setzero_si256());
            // Eight values: scaled, clamped, rounded, offset (i32 lanes).
            let mut eight = |p: *const i32| {
                let v = _mm256_loadu_si256(p as *const __m256i);
                min = _mm256_min_epi32(min, v);
                max = _mm256_max_epi32(max, v);
                let f = _mm256_mul_ps(_mm256_cvtepi32_ps(v), s);
                let f = _mm256_min_ps(_mm256_max_ps(f, va), vb);
                _mm256_add_epi32(_mm256_cvtps_epi32(f), zp)
            };
            // Bytes from two vectors of i16 (saturating: already in range).
            let narrow = |a: __m256i, b: __m256i| {
                let bytes = if T::SIGNED {
                    _mm256_packs_epi16(a, b)
                } else {
                    _mm256_packus_epi16(a, b)
                };
                _mm256_permutevar8x32_epi32(bytes, order)
            };
            let mut i = 0;
            while i + 32 <= n {
                let p = x.as_ptr().add(i);
                let (q0, q1) = (eight(p), eight(p.add(8)));
                let (q2, q3) = (eight(p.add(16)), eight(p.add(24)));
                let bytes = narrow(_mm256_packs_epi32(q0, q1), _mm256_packs_epi32(q2, q3));
                _mm256_storeu_si256(y.as_mut_ptr().add(i) as *mut __m256i, bytes);
                i += 32;
            }
            while i + 8 <= n {
                let w = _mm256_packs_epi32(eight(x.as_ptr().add(i)), _mm256_setzero_si256());
                let bytes = narrow(w, w);
                _mm_storel_epi64(
                    y.as_mut_ptr().add(i) as *mut __m128i,
                    _mm256_castsi256_si128(bytes),
                );
                i += 8;
            }
            _mm256_storeu_si256(lows.as_mut_ptr() as *mut __m256i, min);
            _mm256_storeu_si256(highs.as_mut_ptr() as *mut __m256i, max);
            i
        };
        let largest = lows.iter().chain(&highs).map(|v| v.unsigned_abs()).max();
        let blocks_exact = (largest.unwrap_or(0) as f32 * scale).abs() < Self::LIMIT;
        self.row_fast(&x[i..n], &mut y[i..n], scale) && blocks_exact
    }

    /// Beyond this `|x * scale|` the fast paths are not exact: `2^30`.
    const LIMIT: f32 = 1_073_741_824.0;

    /// The clamp bounds relative to the zero point, `lo - zero_point` and
    /// `hi - zero_point`, as f32 (integers below `2^17`, exact).
    #[inline(always)]
    fn bounds(&self) -> (f32, f32) {
        (
            self.lo.wrapping_sub(self.zero_point) as f32,
            self.hi.wrapping_sub(self.zero_point) as f32,
        )
    }

    /// One row in f32 arithmetic, branch-free so that the compiler
    /// vectorizes it. Exact when every `|x * scale|` is below `2^30`, which
    /// it checks: returns false (and the row must be redone exactly)
    /// otherwise.
    ///
    /// Why exact: below `2^30` no i32 saturates or wraps, so the float
    /// rounding, sum and clamp equal tract's. Clamping to the integers
    /// `[lo - zero_point, hi - zero_point]` before rounding gives what
    /// clamping after it gives (rounding is monotonic and keeps integers);
    /// the clamped value is below `2^17`, where adding and subtracting
    /// `1.5 * 2^23` rounds half to even.
    #[inline(always)]
    fn row_fast<T: Out>(&self, x: &[i32], y: &mut [T], scale: f32) -> bool {
        const MAGIC: f32 = 12_582_912.0; // 1.5 * 2^23
        let (a, b) = self.bounds();
        let zp = self.zero_point;
        let mut big = 0u32;
        for (x, y) in x.iter().zip(y.iter_mut()) {
            let v = *x as f32 * scale;
            big |= (v.abs() >= Self::LIMIT) as u32;
            let c = if v < a { a } else { v };
            let c = if c > b { b } else { c };
            let r = (c + MAGIC) - MAGIC;
            // SAFETY: `r` is an integer within [a, b], inside i32.
            *y = T::from_i32(unsafe { r.to_int_unchecked::<i32>() } + zp);
        }
        big == 0
    }

    /// One row exactly as tract's chain computes it, for rows with huge
    /// accumulators.
    fn row_exact<T: Out>(&self, x: &[i32], y: &mut [T], scale: f32) {
        let (zp, lo, hi) = (self.zero_point, self.lo, self.hi);
        for (x, y) in x.iter().zip(y.iter_mut()) {
            // `as i32` saturates, as tract's cast does.
            let r = round_half_even(*x as f32 * scale) as i32;
            *y = T::from_i32(r.wrapping_add(zp).max(lo).min(hi));
        }
    }
}

/// What a node of the chain contributes.
enum Step {
    ZeroPoint(i32),
    Lo(i32),
    Hi(i32),
    Cast(DatumType),
}

/// The single i32 constant of a binary node's other input, if it is a
/// uniform constant.
fn uniform_i32(model: &TypedModel, node: &TypedNode, from: OutletId) -> Option<i32> {
    if node.inputs.len() != 2 {
        return None;
    }
    let other = if node.inputs[0] == from {
        node.inputs[1]
    } else {
        node.inputs[0]
    };
    let fact = model.outlet_fact(other).ok()?;
    let k = fact.uniform.as_ref().or(fact.konst.as_ref())?;
    if k.datum_type() != DatumType::I32 || (fact.uniform.is_none() && k.len() != 1) {
        return None;
    }
    k.cast_to_scalar::<i32>().ok()
}

/// What `node` (fed by `from`) does in a requantization chain, if anything.
fn step(model: &TypedModel, node: &TypedNode, from: OutletId) -> Option<Step> {
    if let Some(cast) = node.op_as::<Cast>() {
        let dt = cast.to.unquantized();
        return (dt == DatumType::U8 || dt == DatumType::I8).then_some(Step::Cast(cast.to));
    }
    let bin = node.op_as::<TypedBinOp>()?;
    if bin.1.is_some() || node.outputs[0].fact.datum_type != DatumType::I32 {
        return None;
    }
    let v = uniform_i32(model, node, from)?;
    let mini = &bin.0;
    if mini.is::<Add>() {
        Some(Step::ZeroPoint(v))
    } else if mini.is::<Max>() {
        Some(Step::Lo(v))
    } else if mini.is::<Min>() {
        Some(Step::Hi(v))
    } else {
        None
    }
}

/// The node fed only by `outlet`, if `outlet` has exactly one consumer and
/// is not a model output.
pub(crate) fn only_successor(model: &TypedModel, outlet: OutletId) -> Option<usize> {
    let node = model.node(outlet.node);
    let succ = &node.outputs[outlet.slot].successors;
    if succ.len() != 1 || model.output_outlets().ok()?.contains(&outlet) {
        return None;
    }
    Some(succ[0].node)
}

/// Match the chain starting at the `Scale` node `scale_id`: the fused op, the
/// accumulator it reads and the last node it replaces.
fn match_chain(model: &TypedModel, scale_id: usize) -> Option<(Requant, OutletId, OutletId)> {
    let node = model.node(scale_id);
    let bin = node.op_as::<TypedBinOp>()?;
    if !bin.0.is::<Scale>() || bin.1.is_some() || node.inputs.len() != 2 {
        return None;
    }
    let acc = node.inputs[1];
    let acc_fact = model.outlet_fact(acc).ok()?;
    let out_fact = &node.outputs[0].fact;
    if acc_fact.datum_type != DatumType::I32 || out_fact.datum_type != DatumType::I32 {
        return None;
    }
    let shape = acc_fact.shape.as_concrete()?.to_vec();
    if out_fact.shape.as_concrete()? != shape.as_slice() {
        return None;
    }
    let scale_fact = model.outlet_fact(node.inputs[0]).ok()?;
    let scale_t = scale_fact.konst.as_ref()?;
    if scale_t.datum_type() != DatumType::F32 || scale_t.rank() > shape.len() {
        return None;
    }
    let scale: Vec<f32> = scale_t
        .try_as_plain_ram()
        .ok()?
        .as_slice::<f32>()
        .ok()?
        .to_vec();
    if scale.iter().any(|s| !s.is_finite()) {
        return None;
    }
    // Broadcast from the right: the scale varies along at most one axis.
    let pad = shape.len() - scale_t.rank();
    let varying: Vec<usize> = scale_t
        .shape()
        .iter()
        .enumerate()
        .filter(|(_, &d)| d != 1)
        .map(|(i, _)| i + pad)
        .collect();
    let axis = match varying.as_slice() {
        [] => 0,
        [a] if shape[*a] == scale.len() => *a,
        _ => return None,
    };
    let scale = if varying.is_empty() {
        vec![scale[0]]
    } else {
        scale
    };

    let (mut zero_point, mut lo, mut hi) = (0i32, i32::MIN, i32::MAX);
    let mut clamped = false;
    let mut at: OutletId = scale_id.into();
    loop {
        let next = model.node(only_successor(model, at)?);
        match step(model, next, at)? {
            Step::ZeroPoint(z) if !clamped => zero_point = zero_point.checked_add(z)?,
            Step::ZeroPoint(_) => return None,
            Step::Lo(v) => {
                clamped = true;
                lo = lo.max(v);
            }
            Step::Hi(v) => {
                clamped = true;
                hi = hi.min(v);
            }
            Step::Cast(out) => {
                let (min, max) = if out.unquantized() == DatumType::U8 {
                    (0, 255)
                } else {
                    (-128, 127)
                };
                // The fast path's exactness argument needs a small zero point.
                if lo < min || hi > max || lo > hi || zero_point.unsigned_abs() >= 1 << 16 {
                    return None;
                }
                if next.outputs[0].fact.shape.as_concrete()? != shape.as_slice() {
                    return None;
                }
                let op = Requant {
                    scale,
                    axis,
                    zero_point,
                    lo,
                    hi,
                    out,
                };
                return Some((op, acc, next.id.into()));
            }
        }
        at = next.id.into();
    }
}

/// Replace, one for one, every node of `model` whose op is an `O` for which
/// `make` (given the op, its first input's fact and its output's fact)
/// returns a replacement. Returns how many were replaced. The shared walk of
/// the [`im2col`] and [`maxpool`] passes.
fn replace_each<O: TypedOp, R: TypedOp>(
    model: &mut TypedModel,
    make: impl Fn(&O, &TypedFact, &TypedFact) -> Option<R>,
) -> TractResult<usize> {
    let mut replaced = 0;
    for id in model.eval_order()? {
        let node = model.node(id);
        let Some(op) = node.op_as::<O>() else {
            continue;
        };
        let input_fact = model.outlet_fact(node.inputs[0])?;
        let Some(new) = make(op, input_fact, &node.outputs[0].fact) else {
            continue;
        };
        TypedModelPatch::replace_single_op(model, node, &node.inputs, new)?.apply(model)?;
        replaced += 1;
    }
    Ok(replaced)
}

/// Wire `op` over `inputs` and send what read `last` to its output instead
/// (the nodes that only fed `last` go with the next `compact`). The new node
/// is named after `last`'s node with `suffix`. The shared patch of the
/// [`fuse`] and [`conv`] passes.
fn replace_outlet<O: TypedOp>(
    model: &mut TypedModel,
    last: OutletId,
    suffix: &str,
    op: O,
    inputs: &[OutletId],
) -> TractResult<()> {
    let name = format!("{}.{suffix}", model.node(last.node).name);
    let mut patch = TypedModelPatch::new(format!("{suffix}: {name}"));
    let taps = inputs
        .iter()
        .map(|i| patch.tap_model(model, *i))
        .collect::<TractResult<TVec<_>>>()?;
    let out = patch.wire_node(name, op, &taps)?[0];
    patch.shunt_outside(model, last, out)?;
    patch.apply(model)
}

/// Optimize `model` as tract does, fuse its requantization chains, give
/// its int8 convolutions the faster im2col of [`im2col`] then run each as
/// one blocked op ([`conv`]), and its 2x2 8-bit poolings [`maxpool`]: the
/// one way
/// `export` and the runtime prepare a graph, so both run the same.
pub fn into_optimized(model: TypedModel) -> TractResult<TypedModel> {
    let mut model = model.into_optimized()?;
    fuse(&mut model)?;
    im2col::replace(&mut model)?;
    conv::replace(&mut model)?;
    maxpool::replace(&mut model)?;
    reduce::replace(&mut model)?;
    quantize::replace(&mut model)?;
    Ok(model)
}

/// Replace every requantization chain of `model` by one [`Requant`] node.
/// Returns how many chains were fused. The model computes the same values
/// afterwards, bit for bit.
pub fn fuse(model: &mut TypedModel) -> TractResult<usize> {
    let mut fused = 0;
    let order = model.eval_order()?;
    for id in order {
        let Some((op, acc, last)) = match_chain(model, id) else {
            continue;
        };
        replace_outlet(model, last, "requant", op, &[acc])?;
        fused += 1;
    }
    if fused > 0 {
        model.compact()?;
    }
    Ok(fused)
}

#[cfg(test)]
mod tests;

/// Inputs the passes' tests share.
#[cfg(test)]
mod test_data {
    use tract_core::internal::*;
    use tract_core::tract_linalg::multithread::{multithread_tract_scope, Executor};

    /// A deterministic spread of bytes (xorshift), different per seed.
    pub fn bytes(len: usize, seed: u32) -> Vec<u8> {
        let mut s = seed.wrapping_mul(2_654_435_761).wrapping_add(1);
        (0..len)
            .map(|_| {
                s ^= s << 13;
                s ^= s >> 17;
                s ^= s << 5;
                (s >> 8) as u8
            })
            .collect()
    }

    /// Run `reference` and `ours` on `x`, `ours` under `executor`: what
    /// each plan outputs.
    pub fn run_both(
        reference: TypedModel,
        ours: TypedModel,
        x: Tensor,
        executor: &Executor,
    ) -> (TVec<TValue>, TVec<TValue>) {
        let want = reference
            .into_runnable()
            .unwrap()
            .run(tvec!(x.clone().into()))
            .unwrap();
        let got = multithread_tract_scope(executor.clone(), || {
            ours.into_runnable().unwrap().run(tvec!(x.into())).unwrap()
        });
        (want, got)
    }

    /// Whether two plain tensors hold the same bytes.
    pub fn same_bytes(a: &Tensor, b: &Tensor) -> bool {
        a.try_as_plain_ram().unwrap().as_bytes() == b.try_as_plain_ram().unwrap().as_bytes()
    }

    /// A tensor of `shape` holding `data` as `dt` (u8, i8 or a quantized
    /// form: one byte wide).
    pub fn tensor(shape: &[usize], data: &[u8], dt: DatumType) -> Tensor {
        let mut t = Tensor::from_shape(shape, data).unwrap();
        // SAFETY: u8, i8 and their quantized forms share one byte layout.
        unsafe { t.set_datum_type(dt) };
        t
    }
}
