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
//! packs it (stride-1 convs from a padded copy of the input, see [`Padded`];
//! others with the same [`Im2colI8K4::panel`]), runs the same kernel with the
//! same fused operations on it (tract-linalg's `run_with_scratch_space`, its
//! `B` a view of the block), requantizes the block's accumulators with the
//! same [`Requant`] rows, and goes on to the next block. Blocks are split over
//! tract's executor threads, each with its own buffers and kernel scratch.
//!
//! The packed bytes of every output position, the kernel and the
//! requantization are those of the three nodes, so the output is bit for bit
//! theirs (tested against tract's own conv on ten geometries, one and three
//! threads, and on the demo int8 model).

use crate::im2col::{interleave, pad_value, Im2colI8K4};
use crate::{only_successor, Out, Requant};
use tract_core::internal::*;
use tract_core::ops::change_axes::IntoShape;
use tract_core::ops::element_wise::ElementWiseOp;
use tract_core::ops::matmul::optimized::{MatMulOperand, OptMatMul, ProtoFusedSpec};
use tract_core::ops::quant::OffsetU8asI8;
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
    /// The padded-buffer packing, for stride-1 convs.
    padded: Option<Padded>,
    /// Whether this op reads the u8 tensor that tract's `OffsetU8asI8`
    /// turned into the conv's i8 input, and flips its sign bits itself
    /// while filling the padded buffer (one pass over the input saved).
    flip: bool,
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

/// What every block of one run of a [`ConvBlocked`] reads.
#[derive(Clone, Copy)]
struct Job<'a> {
    /// The packing's source: the input, or its padded copy.
    src: &'a [u8],
    /// The padding byte (unpadded packing).
    pad: u8,
    /// The product's inputs, as it had them.
    mm_inputs: &'a [TValue],
    /// The product's kernel mode.
    mode: usize,
    /// The output.
    out: SharedOut,
    /// Whether the requantization runs its AVX2 form.
    avx2: bool,
}

/// The output buffer, written by several threads at disjoint columns.
#[derive(Clone, Copy)]
struct SharedOut(*mut u8);
// SAFETY: each block writes its own columns of every row, and the buffer
// outlives the parallel section.
unsafe impl Send for SharedOut {}
unsafe impl Sync for SharedOut {}

/// The faster packing of stride-1 convs: the input is copied once into a
/// padded buffer (the padding written with the pad value), and the product
/// runs over "virtual" output positions `v = oy * iwp + ox`, `iwp` the
/// padded width. Every k's value for position `v` is then
/// `buffer[v + offset[k]]`: a panel's `r` lanes are `r` contiguous bytes
/// for every k, read with no bounds or padding test. The `iwp - ow`
/// positions past each output row's end are computed and dropped (2 of
/// every `ow + 2` for a 3x3 conv).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Padded {
    /// Input channels, rows and columns.
    channels: usize,
    ih: usize,
    iw: usize,
    /// Rows and columns of a padded plane.
    ihp: usize,
    iwp: usize,
    /// Where the input's first row and column sit in a padded plane.
    top: usize,
    left: usize,
    /// Output width.
    ow: usize,
    /// For each k, the offset of its value from a virtual position.
    offsets: Vec<usize>,
    /// The largest of `offsets`.
    max_offset: usize,
    /// Virtual positions: `(oh - 1) * iwp + ow`.
    n: usize,
    /// Bytes of the buffer: every plane, and what the last panel's lanes
    /// read past the last position.
    len: usize,
}

impl Padded {
    /// The padded form of `im`'s conv when it has stride 1.
    fn for_im2col(im: &Im2colI8K4) -> Option<Self> {
        if im.sy != 1 || im.sx != 1 || im.ow == 0 {
            return None;
        }
        let (ih, iw, ow) = (im.ih, im.iw, im.ow);
        let oh = im.n / ow;
        let plane = ih * iw;
        if plane == 0 || oh == 0 {
            return None;
        }
        let channels = im.taps.iter().map(|t| t.plane / plane).max()? + 1;
        let dy = im.taps.iter().map(|t| t.dy);
        let dx = im.taps.iter().map(|t| t.dx);
        let (dy_min, dy_max) = (dy.clone().min()?, dy.max()?);
        let (dx_min, dx_max) = (dx.clone().min()?, dx.max()?);
        let (top, left) = ((-dy_min).max(0), (-dx_min).max(0));
        let ihp = (ih as isize).max(oh as isize + dy_max) + top;
        let iwp = (iw as isize).max(ow as isize + dx_max) + left;
        let (ihp, iwp) = (ihp as usize, iwp as usize);
        let offsets: Vec<usize> = im
            .taps
            .iter()
            .map(|t| {
                (t.plane / plane) * ihp * iwp + (t.dy + top) as usize * iwp + (t.dx + left) as usize
            })
            .collect();
        let n = (oh - 1) * iwp + ow;
        let r = im.format.r;
        let max_offset = *offsets.iter().max()?;
        let len = (channels * ihp * iwp).max(n.div_ceil(r) * r + max_offset);
        Some(Padded {
            channels,
            ih,
            iw,
            ihp,
            iwp,
            top: top as usize,
            left: left as usize,
            ow,
            offsets,
            max_offset,
            n,
            len,
        })
    }

    /// Copy `src` (channels x ih x iw) into `buf` (`len` bytes), padded;
    /// planes split over tract's executor threads.
    /// Each input byte is xored with `flip` (0x80 turns u8 into i8 as
    /// tract's `OffsetU8asI8` does, 0 copies).
    fn fill(&self, src: &[u8], pad: u8, flip: u8, buf: &mut [u8]) -> TractResult<()> {
        let (ih, iw, iwp) = (self.ih, self.iw, self.iwp);
        let plane_len = self.ihp * iwp;
        let (planes, tail) = buf.split_at_mut(self.channels * plane_len);
        tail.fill(pad);
        par_chunks_mut(planes, plane_len, src.len(), |first, planes| {
            for (i, plane) in planes.chunks_exact_mut(plane_len).enumerate() {
                let c = first + i;
                for (py, row) in plane.chunks_exact_mut(iwp).enumerate() {
                    match py.checked_sub(self.top).filter(|&y| y < ih) {
                        Some(y) => {
                            row[..self.left].fill(pad);
                            let from = &src[(c * ih + y) * iw..][..iw];
                            let to = &mut row[self.left..self.left + iw];
                            if flip == 0 {
                                to.copy_from_slice(from);
                            } else {
                                to.iter_mut().zip(from).for_each(|(t, f)| *t = f ^ flip);
                            }
                            row[self.left + iw..].fill(pad);
                        }
                        None => row.fill(pad),
                    }
                }
            }
            Ok(())
        })
    }

    /// Write panel `p` (its k blocks; the K padding after them is left as
    /// it is) from the padded buffer.
    fn panel(&self, p: usize, r: usize, buf: &[u8], out: &mut [u8]) {
        const ZEROS: [u8; 64] = [0; 64];
        let v = p * r;
        assert!(
            v + self.max_offset + r <= buf.len(),
            "panel {p} reads past the padded buffer"
        );
        let groups = self.offsets.len() / 4;
        let (full, rest) = self.offsets.split_at(4 * groups);
        let (head, tail) = out.split_at_mut(4 * r * groups);
        let base = buf[v..].as_ptr();
        for (offs, block) in full.chunks_exact(4).zip(head.chunks_exact_mut(4 * r)) {
            // SAFETY: every offset is at most `max_offset`, and `v +
            // max_offset + r` is within `buf` (asserted above).
            let row = |t: usize| unsafe { std::slice::from_raw_parts(base.add(offs[t]), r) };
            interleave([row(0), row(1), row(2), row(3)], r, block);
        }
        if !rest.is_empty() {
            let row = |t: usize| match rest.get(t) {
                Some(&o) => &buf[v + o..v + o + r],
                None => &ZEROS[..r],
            };
            interleave([row(0), row(1), row(2), row(3)], r, tail);
        }
    }

    /// The output runs of virtual positions `v0..v1`: (offset from `v0`,
    /// output position, length).
    fn runs(&self, v0: usize, v1: usize, runs: &mut Vec<(usize, usize, usize)>) {
        runs.clear();
        let mut v = v0;
        while v < v1 {
            let (oy, ox) = (v / self.iwp, v % self.iwp);
            if ox >= self.ow {
                v = (oy + 1) * self.iwp;
                continue;
            }
            let len = (self.ow - ox).min(v1 - v);
            runs.push((v - v0, oy * self.ow + ox, len));
            v += len;
        }
    }
}

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
        let padded = Padded::for_im2col(&im2col);
        // u8 -> OffsetU8asI8 -> [reshapes] -> im2col: read the u8 tensor.
        let mut flip = false;
        if padded.is_some() {
            let (mut at, mut consumer) = (im_node.inputs[0], im2col_id);
            while only_successor(model, at) == Some(consumer) {
                let node = model.node(at.node);
                if node.op_is::<IntoShape>() {
                    (at, consumer) = (node.inputs[0], node.id);
                    continue;
                }
                let offset = node
                    .op_as::<ElementWiseOp>()
                    .is_some_and(|op| op.0.is::<OffsetU8asI8>());
                let u8_input = model
                    .outlet_fact(node.inputs[0])
                    .is_ok_and(|f| f.datum_type.unquantized() == DatumType::U8);
                if offset && u8_input {
                    inputs[0] = node.inputs[0];
                    flip = true;
                }
                break;
            }
        }
        let panel_len = im2col.format.single_panel_len(im2col.k());
        let panels = padded.as_ref().map_or(n, |p| p.n).div_ceil(r);
        let block_panels = (BLOCK_BYTES / panel_len)
            .min(BLOCK_BYTES / (m * r * 4))
            .clamp(1, panels);
        let mut block_c_shape = c_shape.clone();
        block_c_shape[c_n_axis] = block_panels * r;
        let op = ConvBlocked {
            im2col_inputs: im_node.inputs.len(),
            im2col,
            mm,
            mm_inputs,
            requant,
            m,
            block_c_shape,
            c_n_axis,
            block_panels,
            out_shape,
            padded,
            flip,
        };
        Some((op, inputs, last))
    }

    /// The conv's output positions.
    fn n(&self) -> usize {
        self.im2col.n
    }

    /// The product's n: output positions, or virtual ones when padded.
    fn cols(&self) -> usize {
        self.padded.as_ref().map_or(self.im2col.n, |p| p.n)
    }

    /// Run blocks `blocks` (indices) of `job`, writing their columns of
    /// the output.
    fn run_blocks<T: Out>(&self, blocks: std::ops::Range<usize>, job: &Job) -> TractResult<()> {
        let Job {
            src,
            pad,
            mm_inputs,
            mode,
            out,
            avx2,
        } = *job;
        let block_panels = self.block_panels;
        let mmm = &*self.mm.mmm[mode];
        let format = &self.im2col.format;
        let r = format.r;
        let panel_len = format.single_panel_len(self.im2col.k());
        let n = self.n();
        let cols = self.cols();
        let panels = cols.div_ceil(r);
        // SAFETY: each block's panels are written before the product reads
        // them (the K padding, which the padded packing leaves, is zeroed
        // here once); the product writes the accumulators of the block's
        // columns before they are read.
        let mut packed = unsafe {
            Tensor::uninitialized_aligned_dt(
                DatumType::I8,
                &[self.block_panels * panel_len],
                format.alignment().max(64),
            )?
        };
        if self.padded.is_some() {
            let written = self.im2col.k().div_ceil(4) * 4 * r;
            for panel in packed.as_bytes_mut().chunks_exact_mut(panel_len) {
                panel[written..].fill(0);
            }
        }
        let mut acc = unsafe { Tensor::uninitialized_dt(DatumType::I32, &self.block_c_shape)? };
        let acc_row = self.block_c_shape[self.c_n_axis];
        let mut scratch = unsafe { mmm.allocate_scratch_space() };
        // The block's B, its length set per block (no allocation per block).
        let mut b = BlockPanels {
            fact: self.im2col.packed_fact(),
            ptr: packed.as_bytes().as_ptr() as usize,
            panel_bytes: panel_len,
            mn: 0,
        };
        let coords: TVec<usize> = tvec![0; self.block_c_shape.len()];
        let mut runs = Vec::new();
        // One requantized row of a block, before its runs are copied out.
        let mut line = vec![T::from_i32(0); acc_row];
        for block in blocks {
            let p0 = block * block_panels;
            let p1 = (p0 + block_panels).min(panels);
            let (v0, v1) = (p0 * r, (p1 * r).min(cols));
            {
                let bytes = packed.as_bytes_mut();
                let panels = bytes.chunks_exact_mut(panel_len).take(p1 - p0);
                for (i, panel) in panels.enumerate() {
                    match &self.padded {
                        Some(padded) => padded.panel(p0 + i, r, src, panel),
                        None => self.im2col.panel(p0 + i, src, pad, panel),
                    }
                }
            }
            b.mn = v1 - v0;
            b.fact.mn = (v1 - v0).to_dim();
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
            unsafe { mmm.run_with_scratch_space(self.m, v1 - v0, &mut *scratch, &specs)? };
            // The block's columns as runs of output positions.
            match &self.padded {
                Some(padded) => padded.runs(v0, v1, &mut runs),
                None => {
                    runs.clear();
                    runs.push((0, v0, v1 - v0));
                }
            }
            let acc = acc.try_as_plain_ram()?;
            let acc = acc.as_slice::<i32>()?;
            let cols = v1 - v0;
            for row in 0..self.m {
                let channel = if self.requant.scale.len() == 1 {
                    0
                } else {
                    row
                };
                let x = &acc[row * acc_row..][..cols];
                let out_row = |to: usize, len: usize| {
                    // SAFETY: row `row`, output positions `to..to + len` of
                    // the m x n output: this block's alone.
                    unsafe {
                        std::slice::from_raw_parts_mut((out.0 as *mut T).add(row * n + to), len)
                    }
                };
                if let [(0, to, len)] = runs[..] {
                    self.requant.row(&x[..len], out_row(to, len), channel, avx2);
                } else {
                    // Short runs (rows of a padded plane): the whole row at
                    // once, in full vectors, then the runs copied out.
                    self.requant.row(x, &mut line[..cols], channel, avx2);
                    for &(from, to, len) in &runs {
                        out_row(to, len).copy_from_slice(&line[from..from + len]);
                    }
                }
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
        if self.flip {
            // The u8 tensor before tract's offset and reshapes.
            ensure!(
                x.datum_type().unquantized() == DatumType::U8
                    && x.len() == self.padded.as_ref().map_or(0, |p| p.channels * p.ih * p.iw),
                "ConvBlocked: input {:?} is not the conv's u8 input",
                x
            );
        } else {
            self.im2col.check_input(x)?;
        }
        let x = x.try_as_plain_ram()?;
        let flip = if self.flip { 0x80 } else { 0 };
        // SAFETY: `fill` writes every byte of the buffer.
        let mut buffer = match &self.padded {
            Some(padded) => unsafe { Tensor::uninitialized_dt(DatumType::U8, &[padded.len])? },
            None => Tensor::default(),
        };
        let src = match &self.padded {
            Some(padded) => {
                padded.fill(x.as_bytes(), pad, flip, buffer.as_bytes_mut())?;
                buffer.as_bytes()
            }
            None => x.as_bytes(),
        };
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
        let panels = self.cols().div_ceil(self.im2col.format.r);
        let blocks = panels.div_ceil(self.block_panels);
        let job = Job {
            src,
            pad,
            mm_inputs: &mm_inputs,
            mode,
            out,
            avx2: Requant::has_avx2(),
        };
        let work = self.m * self.cols() * self.im2col.k();
        let mut ids: Vec<u8> = vec![0; blocks];
        let unsigned = out_dt.unquantized() == DatumType::U8;
        par_chunks_mut(&mut ids, 1, work, |first, chunk| {
            let range = first..first + chunk.len();
            // One thread per chunk: the kernel does not split again.
            multithread_tract_scope(Executor::SingleThread, || {
                if unsigned {
                    self.run_blocks::<u8>(range, &job)
                } else {
                    self.run_blocks::<i8>(range, &job)
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
        crate::replace_outlet(model, last, "blocked", op, &inputs)?;
        replaced += 1;
    }
    if replaced > 0 {
        model.compact()?;
    }
    Ok(replaced)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_data::{bytes, run_both, same_bytes, tensor};
    use tract_core::ops::cnn::{Conv, KernelFormat, PaddingSpec, PoolSpec};
    use tract_core::ops::nn::DataFormat;
    use tract_core::tract_linalg::multithread::set_threading_element_threshold;

    /// A quantized conv `x (u8) -> Conv -> y (u8)` with per-channel kernel
    /// scales, random i8 weights and i32 biases.
    fn model(spec: &PoolSpec, shape: [usize; 4], seed: u32) -> TypedModel {
        let (c, o) = (spec.input_channels, spec.output_channels);
        let taps: usize = spec.kernel_shape.iter().product();
        let mut m = TypedModel::default();
        let x = m.add_source("x", u8::fact(shape)).unwrap();
        let kshape = [o, c, spec.kernel_shape[0], spec.kernel_shape[1]];
        let kernel = tensor(&kshape, &bytes(o * c * taps, seed + 1), DatumType::I8);
        let bias: Vec<i32> = (0..o as i32).map(|i| (i * 37 % 200) - 100).collect();
        let kscale: Vec<f32> = (0..o).map(|i| 0.002 + 0.0005 * i as f32).collect();
        let mut konst = |name: &str, t: Tensor| m.add_const(name, t).unwrap();
        let wires = [
            x,
            konst("kernel", kernel),
            konst("bias", tensor1(&bias)),
            konst("x0", tensor0(3i32)),
            konst("x_scale", tensor0(0.05f32)),
            konst("k0", tensor0(0i32)),
            konst("k_scale", tensor1(&kscale)),
            konst("y0", tensor0(7i32)),
            konst("y_scale", tensor0(0.04f32)),
        ];
        let op = Conv::new(spec.clone(), KernelFormat::OIHW, 1, Some(DatumType::U8));
        let y = m.wire_node("conv", op, &wires).unwrap()[0];
        m.select_output_outlets(&[y]).unwrap();
        m
    }

    fn spec(
        k: [usize; 2],
        s: [usize; 2],
        d: [usize; 2],
        p: PaddingSpec,
        c: usize,
        o: usize,
    ) -> PoolSpec {
        PoolSpec {
            data_format: DataFormat::NCHW,
            kernel_shape: k[..].into(),
            padding: p,
            dilations: Some(d[..].into()),
            strides: Some(s[..].into()),
            input_channels: c,
            output_channels: o,
        }
    }

    /// 3x3 "same" convs as in the `edge` model (widths below, at and above
    /// a panel, several blocks, output channels over several kernel
    /// tiles), 1x1, stride 2 (the unpadded packing), dilation, asymmetric
    /// padding, "valid" padding, k not a multiple of 4.
    fn geometries() -> Vec<(PoolSpec, [usize; 4])> {
        use PaddingSpec::*;
        let e = |b: [usize; 2], a: [usize; 2]| Explicit(b[..].into(), a[..].into());
        vec![
            (
                spec([3, 3], [1, 1], [1, 1], e([1, 1], [1, 1]), 3, 8),
                [1, 3, 16, 16],
            ),
            (
                spec([3, 3], [1, 1], [1, 1], e([1, 1], [1, 1]), 5, 40),
                [1, 5, 13, 21],
            ),
            (
                spec([3, 3], [1, 1], [1, 1], e([1, 1], [1, 1]), 32, 64),
                [1, 32, 24, 24],
            ),
            (
                spec([3, 3], [1, 1], [1, 1], e([1, 1], [1, 1]), 16, 16),
                [1, 16, 6, 6],
            ),
            (
                spec([3, 3], [1, 1], [1, 1], e([1, 1], [1, 1]), 8, 32),
                [1, 8, 96, 96],
            ),
            (spec([1, 1], [1, 1], [1, 1], Valid, 12, 24), [1, 12, 9, 10]),
            (
                spec([3, 3], [2, 2], [1, 1], e([1, 1], [1, 1]), 4, 16),
                [1, 4, 17, 19],
            ),
            (
                spec([5, 5], [1, 1], [2, 2], SameUpper, 3, 16),
                [1, 3, 12, 12],
            ),
            (
                spec([3, 1], [1, 1], [1, 1], e([0, 1], [2, 0]), 7, 16),
                [1, 7, 6, 40],
            ),
            (spec([3, 3], [1, 1], [1, 1], Valid, 3, 16), [1, 3, 20, 35]),
        ]
    }

    /// The model after tract's optimization and this crate's other passes.
    fn unblocked(spec: &PoolSpec, shape: [usize; 4], seed: u32) -> TypedModel {
        let mut m = model(spec, shape, seed).into_optimized().unwrap();
        crate::fuse(&mut m).unwrap();
        crate::im2col::replace(&mut m).unwrap();
        m
    }

    fn count(model: &TypedModel, op: &str) -> usize {
        model.nodes().iter().filter(|n| n.op.name() == op).count()
    }

    fn compare(executor: Executor) {
        for (g, (spec, shape)) in geometries().into_iter().enumerate() {
            let reference = unblocked(&spec, shape, g as u32);
            let mut ours = reference.clone();
            // Every conv tract runs through an im2col (not the 1x1 one).
            let im2cols = count(&reference, "Im2colI8K4");
            #[cfg(target_arch = "x86_64")]
            assert_eq!(im2cols, usize::from(spec.kernel_shape[..] != [1, 1]));
            assert_eq!(replace(&mut ours).unwrap(), im2cols, "geometry {g}");
            assert_eq!(count(&ours, "ConvBlocked"), im2cols);
            let x = tensor(
                &shape,
                &bytes(shape.iter().product(), 100 + g as u32),
                DatumType::U8,
            );
            let (want, got) = run_both(reference, ours, x, &executor);
            assert_eq!(got[0].shape(), want[0].shape(), "geometry {g}");
            assert!(
                same_bytes(&got[0], &want[0]),
                "geometry {g}: outputs differ"
            );
        }
    }

    #[test]
    fn blocked_convs_equal_tracts_bit_for_bit() {
        compare(Executor::SingleThread);
    }

    #[test]
    fn blocks_split_over_threads_equal_tracts() {
        set_threading_element_threshold(0);
        compare(Executor::multithread(3));
    }

    #[test]
    fn stride_one_convs_take_the_padded_packing_and_fold_the_u8_offset() {
        let geometries = geometries();
        for (g, (spec, shape)) in geometries.iter().enumerate() {
            let mut m = unblocked(spec, *shape, 0);
            replace(&mut m).unwrap();
            for node in m.nodes() {
                if let Some(op) = node.op_as::<ConvBlocked>() {
                    let stride_one = spec.strides.as_ref().unwrap().iter().all(|&s| s == 1);
                    assert_eq!(op.padded.is_some(), stride_one, "geometry {g}");
                    // The u8 input read directly, tract's offset to i8 folded.
                    assert_eq!(op.flip, stride_one, "geometry {g}");
                }
            }
        }
    }
}
