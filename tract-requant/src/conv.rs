//! One op for a whole int8 convolution: [`ConvBlocked`] runs the im2col,
//! the matrix product and the requantization of a channels-first int8 conv
//! block of output columns by block, so that the packed activations and the
//! i32 accumulators of a block stay in the core's cache.
//!
//! After [`crate::im2col`] and [`crate::fuse`], a convolution is three
//! nodes: [`Im2colI8K4`] writes every packed panel of the activations (12 MB
//! for the `edge` model's second conv), the `OptMatMul` reads them back and
//! writes an i32 tensor (4.7 MB), and [`Requant`] reads that to write the
//! 8-bit output. Each intermediate goes through memory; the three passes ran
//! at 4 to 7 GB/s. [`ConvBlocked`] takes a block of panels sized to the cache,
//! packs it with the same [`Im2colI8K4::panel`], runs the same kernel with the
//! same fused operations on it (tract-linalg's `run_with_scratch_space`, its
//! `B` a view of the block), requantizes the block's accumulators with the
//! same [`Requant`] rows, and goes on to the next block. Blocks are split over
//! tract's executor threads, each with its own buffers and kernel scratch.
//!
//! Every value is computed by the same code as before, so the output is bit
//! for bit that of the three nodes (tested on random geometries and on the
//! `edge` int8 model).

use crate::im2col::{pad_value, Im2colI8K4};
use crate::{only_successor, Out, Requant};
use tract_core::internal::*;
use tract_core::ops::change_axes::IntoShape;
use tract_core::ops::matmul::optimized::{MatMulOperand, OptMatMul, ProtoFusedSpec};
use tract_core::tract_linalg::mmm::{
    AsInputValue, FusedSpec, MMMInputFormat, MMMInputValue, PackedExoticFact, PackedMatrixStorage,
};
use tract_core::tract_linalg::multithread::{multithread_tract_scope, par_chunks_mut, Executor};
use tract_core::tract_linalg::pack::PackedI8K4;

/// Target size of a block's packed panels, and of its i32 accumulators: a
/// block's working set then stays in a 1 MB or larger L2 with room for the
/// weights.
const BLOCK_BYTES: usize = 192 * 1024;

/// An int8 convolution run block of output columns by block: im2col of a
/// block, matrix product, requantization (see the module doc).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConvBlocked {
    /// The im2col the conv had, which packs each panel.
    im2col: Im2colI8K4,
    /// The matrix product the conv had: its kernel, fused ops and shapes.
    mm: OptMatMul,
    /// Which of the product's inputs is the packed activations.
    b_slot: usize,
    /// For each of the product's inputs, the index of this op's input that
    /// feeds it (the activations' slot unused).
    mm_inputs: TVec<usize>,
    /// How many of this op's inputs are the im2col's (1 or 2: input, pad).
    im2col_inputs: usize,
    /// The requantization the conv had.
    requant: Requant,
    /// Output channels: the product's m.
    m: usize,
    /// The product's output shape with n replaced by a block's columns.
    block_c_shape: TVec<usize>,
    /// The product's n axis in that shape.
    c_n_axis: usize,
    /// Panels per block.
    block_panels: usize,
    /// The output's shape (the requantization's).
    out_shape: TVec<usize>,
}

/// A block of packed panels in a buffer the op owns for the block's
/// duration: the `B` of one `run_with_scratch_space`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct BlockPanels {
    fact: PackedExoticFact,
    /// The buffer, as an address (valid while the block runs).
    ptr: usize,
    panel_bytes: usize,
    mn: usize,
}

impl std::fmt::Display for BlockPanels {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "block of {} columns of {}", self.mn, self.fact)
    }
}

impl MMMInputValue for BlockPanels {
    fn format(&self) -> &dyn MMMInputFormat {
        &*self.fact.format
    }
    fn scratch_panel_buffer_layout(&self) -> Option<std::alloc::Layout> {
        None
    }
    fn panel_bytes(&self, i: usize, _buffer: Option<*mut u8>) -> TractResult<*const u8> {
        ensure!(
            i < self.panels_count(),
            "panel {i} of {}",
            self.panels_count()
        );
        Ok((self.ptr + i * self.panel_bytes) as *const u8)
    }
    fn mn(&self) -> usize {
        self.mn
    }
    fn k(&self) -> usize {
        self.fact.k
    }
    fn exotic_fact(&self) -> &dyn ExoticFact {
        &self.fact
    }
    fn extract_at_mn_f16(&self, _mn: usize, _slice: &mut [f16]) -> TractResult<()> {
        bail!("a block of int8 panels holds no f16")
    }
    fn extract_at_mn_f32(&self, _mn: usize, _slice: &mut [f32]) -> TractResult<()> {
        bail!("a block of int8 panels holds no f32")
    }
}

/// The output buffer, written by several threads at disjoint columns.
#[derive(Clone, Copy)]
struct SharedOut(*mut u8);
// SAFETY: each block writes its own columns of every row, and the buffer
// outlives the parallel section.
unsafe impl Send for SharedOut {}
unsafe impl Sync for SharedOut {}

impl ConvBlocked {
    /// Fuse the conv whose im2col is node `im2col_id`, when the product and
    /// requantization after it take the forms this op computes: `None` when
    /// they do not.
    fn for_node(model: &TypedModel, im2col_id: usize) -> Option<(Self, TVec<OutletId>, OutletId)> {
        let im_node = model.node(im2col_id);
        let im2col = im_node.op_as::<Im2colI8K4>()?.clone();
        let mm_node = model.node(only_successor(model, im2col_id.into())?);
        let mm = mm_node.op_as::<OptMatMul>()?.clone();
        let b_slot = mm_node
            .inputs
            .iter()
            .position(|i| *i == OutletId::from(im2col_id))?;
        if mm.mmm.is_empty() {
            return None;
        }
        let (c_m_axis, c_n_axis) = (mm.c_m_axis?, mm.c_n_axis?);
        let c_shape: TVec<usize> = mm.c_fact.shape.as_concrete()?.into();
        let rank = c_shape.len();
        // Row-major [.., m, n], every other axis 1.
        if mm.c_fact.datum_type != DatumType::I32
            || rank < 2
            || c_n_axis != rank - 1
            || c_m_axis != rank - 2
            || c_shape[..rank - 2].iter().any(|&d| d != 1)
        {
            return None;
        }
        let (m, n) = (c_shape[c_m_axis], c_shape[c_n_axis]);
        if n != im2col.n {
            return None;
        }
        let mut matmuls = 0;
        for op in &mm.micro_ops {
            match op {
                ProtoFusedSpec::AddMatMul { b, packings, .. } => {
                    if *b != MatMulOperand::Input(b_slot) || packings.iter().any(|p| p.1.is_some())
                    {
                        return None;
                    }
                    matmuls += 1;
                }
                // Per-row and scalar operations only: the block's columns are
                // not the product's.
                ProtoFusedSpec::BinScalar(..)
                | ProtoFusedSpec::LeakyRelu(_)
                | ProtoFusedSpec::BinPerRow(..)
                | ProtoFusedSpec::Scaler(_)
                | ProtoFusedSpec::Store(_) => {}
                _ => return None,
            }
        }
        if matmuls != 1 {
            return None;
        }
        // The packed activations must be what the chosen kernel reads.
        let mode = mm.mode_picker.pick(n).ok()?;
        let packing = mm.micro_ops.iter().find_map(|op| match op {
            ProtoFusedSpec::AddMatMul { packings, .. } => packings.get(mode).map(|p| p.0),
            _ => None,
        })?;
        let (_, b_format) = mm.mmm.get(mode)?.packings().get(packing)?;
        if b_format.downcast_ref::<PackedI8K4>() != Some(&im2col.format) {
            return None;
        }
        // Then (reshapes of the same buffer and) the requantization.
        let mut at: OutletId = mm_node.id.into();
        let (requant, last) = loop {
            let next = model.node(only_successor(model, at)?);
            if next.op_is::<IntoShape>() {
                at = next.id.into();
                continue;
            }
            break (next.op_as::<Requant>()?.clone(), OutletId::from(next.id));
        };
        let out_shape: TVec<usize> = model.outlet_fact(last).ok()?.shape.as_concrete()?.into();
        if out_shape.iter().product::<usize>() != m * n {
            return None;
        }
        let (outer, channels, inner) = requant.split(&out_shape).ok()?;
        if requant.scale.len() != 1 && (outer, channels, inner) != (1, m, n) {
            return None;
        }
        // Inputs: the im2col's, then the product's others.
        let mut inputs: TVec<OutletId> = im_node.inputs.clone().into();
        let mut mm_inputs = tvec!();
        for (slot, i) in mm_node.inputs.iter().enumerate() {
            if slot == b_slot {
                mm_inputs.push(usize::MAX);
            } else {
                mm_inputs.push(inputs.len());
                inputs.push(*i);
            }
        }
        let r = im2col.format.r;
        let panel_len = im2col.format.single_panel_len(im2col.k());
        let panels = n.div_ceil(r);
        let block_panels = (BLOCK_BYTES / panel_len)
            .min(BLOCK_BYTES / (m * r * 4))
            .clamp(1, panels);
        let mut block_c_shape = c_shape.clone();
        block_c_shape[c_n_axis] = block_panels * r;
        let op = ConvBlocked {
            im2col_inputs: im_node.inputs.len(),
            im2col,
            mm,
            b_slot,
            mm_inputs,
            requant,
            m,
            block_c_shape,
            c_n_axis,
            block_panels,
            out_shape,
        };
        Some((op, inputs, last))
    }

    /// The product's n: output positions.
    fn n(&self) -> usize {
        self.im2col.n
    }

    /// Run blocks `blocks` (indices), writing their columns of `out`.
    #[allow(clippy::too_many_arguments)]
    fn run_blocks<T: Out>(
        &self,
        blocks: std::ops::Range<usize>,
        src: &[u8],
        pad: u8,
        mm_inputs: &[TValue],
        mode: usize,
        out: SharedOut,
        avx2: bool,
    ) -> TractResult<()> {
        let mmm = &*self.mm.mmm[mode];
        let format = &self.im2col.format;
        let r = format.r;
        let panel_len = format.single_panel_len(self.im2col.k());
        let n = self.n();
        let panels = n.div_ceil(r);
        // SAFETY: each block's panels are written before the product reads
        // them; the product writes the accumulators of the block's columns
        // before they are read.
        let mut packed = unsafe {
            Tensor::uninitialized_aligned_dt(
                DatumType::I8,
                &[self.block_panels * panel_len],
                format.alignment().max(64),
            )?
        };
        let mut acc = unsafe { Tensor::uninitialized_dt(DatumType::I32, &self.block_c_shape)? };
        let acc_row = self.block_c_shape[self.c_n_axis];
        let mut scratch = unsafe { mmm.allocate_scratch_space() };
        let fact = self.im2col.packed_fact();
        let coords: TVec<usize> = tvec![0; self.block_c_shape.len()];
        for block in blocks {
            let p0 = block * self.block_panels;
            let p1 = (p0 + self.block_panels).min(panels);
            let (n0, n1) = (p0 * r, (p1 * r).min(n));
            {
                let bytes = packed.as_bytes_mut();
                for (i, panel) in bytes.chunks_exact_mut(panel_len).take(p1 - p0).enumerate() {
                    self.im2col.panel(p0 + i, src, pad, panel);
                }
            }
            let b = BlockPanels {
                fact: PackedExoticFact {
                    mn: (n1 - n0).to_dim(),
                    ..fact.clone()
                },
                ptr: packed.as_bytes().as_ptr() as usize,
                panel_bytes: panel_len,
                mn: n1 - n0,
            };
            let mut specs: TVec<FusedSpec> = tvec!();
            for op in &self.mm.micro_ops {
                specs.push(match op {
                    ProtoFusedSpec::AddMatMul { a, packings, .. } => {
                        let a: &dyn MMMInputValue = match a {
                            MatMulOperand::Const(v) => &**v,
                            MatMulOperand::Input(i) => mm_inputs[*i]
                                .try_storage_as::<PackedMatrixStorage>()?
                                .value(),
                        };
                        FusedSpec::AddMatMul {
                            a: AsInputValue::Borrowed(a),
                            b: AsInputValue::Borrowed(&b),
                            packing: packings[mode].0,
                        }
                    }
                    // SAFETY: the store's view is `acc`, which holds the
                    // block's m x (block columns) i32.
                    ProtoFusedSpec::Store(oss) => unsafe {
                        FusedSpec::Store(oss[mode].wrap(&acc.view_mut()))
                    },
                    // Per-row and scalar operands, at the product's only
                    // batch position.
                    other => other.resolve(mm_inputs, &coords, &acc, mmm, mode),
                });
            }
            // SAFETY: as OptMatMul runs it: the specs' views outlive the call.
            unsafe { mmm.run_with_scratch_space(self.m, n1 - n0, &mut *scratch, &specs)? };
            let acc = acc.try_as_plain_ram()?;
            let acc = acc.as_slice::<i32>()?;
            for row in 0..self.m {
                // SAFETY: row `row`, columns n0..n1 of the m x n output: this
                // block's alone.
                let y = unsafe {
                    std::slice::from_raw_parts_mut((out.0 as *mut T).add(row * n + n0), n1 - n0)
                };
                let channel = if self.requant.scale.len() == 1 {
                    0
                } else {
                    row
                };
                self.requant
                    .row(&acc[row * acc_row..][..n1 - n0], y, channel, avx2);
            }
        }
        Ok(())
    }
}

impl Op for ConvBlocked {
    fn name(&self) -> StaticName {
        "ConvBlocked".into()
    }

    fn info(&self) -> TractResult<Vec<String>> {
        let mut info = self.im2col.info()?;
        info.extend(self.mm.info()?);
        info.extend(self.requant.info()?);
        info.push(format!(
            "blocks of {} panels ({} columns)",
            self.block_panels,
            self.block_panels * self.im2col.format.r
        ));
        Ok(info)
    }

    op_as_typed_op!();
}

impl EvalOp for ConvBlocked {
    op_out_of_plan!();

    fn eval(&self, _ctx: &EvalContext, inputs: TVec<TValue>) -> TractResult<TVec<TValue>> {
        let x = &inputs[0];
        let pad = if self.im2col_inputs > 1 {
            pad_value(inputs.get(1))?
        } else {
            0
        };
        self.im2col.check_input(x)?;
        let src = x.try_as_plain_ram()?.as_bytes();
        // The product's inputs as it had them (the activations' slot holds
        // the input, never read).
        let mm_inputs: TVec<TValue> = self
            .mm_inputs
            .iter()
            .map(|&i| inputs[if i == usize::MAX { 0 } else { i }].clone())
            .collect();
        let mode = self.mm.mode_picker.pick(self.n())?;
        let out_dt = self.requant.out;
        // SAFETY: every block writes its columns of every row.
        let mut output = unsafe { Tensor::uninitialized_dt(out_dt, &self.out_shape)? };
        let out = SharedOut(output.as_bytes_mut().as_mut_ptr());
        let panels = self.n().div_ceil(self.im2col.format.r);
        let blocks = panels.div_ceil(self.block_panels);
        let avx2 = Requant::has_avx2();
        let work = self.m * self.n() * self.im2col.k();
        let mut ids: Vec<u8> = vec![0; blocks];
        let unsigned = out_dt.unquantized() == DatumType::U8;
        par_chunks_mut(&mut ids, 1, work, |first, chunk| {
            let range = first..first + chunk.len();
            // One thread per chunk: the kernel does not split again.
            multithread_tract_scope(Executor::SingleThread, || {
                if unsigned {
                    self.run_blocks::<u8>(range, src, pad, &mm_inputs, mode, out, avx2)
                } else {
                    self.run_blocks::<i8>(range, src, pad, &mm_inputs, mode, out, avx2)
                }
            })
        })?;
        Ok(tvec!(output.into_tvalue()))
    }
}

impl TypedOp for ConvBlocked {
    as_op!();

    fn output_facts(&self, _inputs: &[&TypedFact]) -> TractResult<TVec<TypedFact>> {
        Ok(tvec!(self.requant.out.fact(&*self.out_shape)))
    }
}

/// Replace each int8 conv of `model` made of an [`Im2colI8K4`], an
/// `OptMatMul` with only per-row fused operations and a [`Requant`] (with
/// reshapes between them) by one [`ConvBlocked`]. Run after
/// [`crate::fuse`] and [`crate::im2col::replace`]. Returns how many convs
/// were replaced; the model computes the same values afterwards, bit for bit.
pub fn replace(model: &mut TypedModel) -> TractResult<usize> {
    let mut replaced = 0;
    for id in model.eval_order()? {
        let Some((op, inputs, last)) = ConvBlocked::for_node(model, id) else {
            continue;
        };
        let name = format!("{}.blocked", model.node(last.node).name);
        let mut patch = TypedModelPatch::new(format!("block the conv of {name}"));
        let taps = inputs
            .iter()
            .map(|i| patch.tap_model(model, *i))
            .collect::<TractResult<TVec<_>>>()?;
        let out = patch.wire_node(name, op, &taps)?[0];
        patch.shunt_outside(model, last, out)?;
        patch.apply(model)?;
        replaced += 1;
    }
    if replaced > 0 {
        model.compact()?;
    }
    Ok(replaced)
}
