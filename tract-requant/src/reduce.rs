//! The maximum of an f32 tensor over one axis that is not the last: the
//! landmark pooling's maximum over the nine samples around each landmark
//! (`[1, 8, 9, 256] -> [1, 8, 1, 256]` in the `edge` model).
//!
//! tract-core's `Reduce<Max>` builds one `ndarray` slice per output value
//! and folds it: 0.3 ms for the 18,432 inputs of the `edge` model, 3% of an
//! int8 frame. [`ReduceMaxAxis`] folds whole rows of the inner axes at once
//! (the compiler vectorizes the row loop), with the same fold:
//! `acc = f32::MIN; acc = if acc > v { acc } else { v }` in the axis order,
//! so the result is tract's bit for bit, NaN, infinities and signed zeros
//! included (tested).

use tract_core::internal::*;
use tract_core::ops::nn::{Reduce, Reducer};

/// `y[o, 0, i] = fold(max, x[o, 0..len, i])` over a `[outer, len, inner]`
/// view of the input (the reduced axis in the middle, `inner > 1`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ReduceMaxAxis {
    /// The input shape.
    input_shape: TVec<usize>,
    /// The reduced axis.
    axis: usize,
}

impl ReduceMaxAxis {
    /// The replacement for `op` on an input of `input_fact`, when it is
    /// this case; `None` otherwise (other reducers, several axes, the last
    /// axis, an axis of length 0 or 1, non-f32 or symbolic shapes).
    pub fn for_reduce(op: &Reduce, input_fact: &TypedFact) -> Option<Self> {
        if op.reducer != Reducer::Max
            || op.axes.len() != 1
            || input_fact.datum_type != DatumType::F32
        {
            return None;
        }
        let input_shape: TVec<usize> = input_fact.shape.as_concrete()?.into();
        let axis = op.axes[0];
        let inner: usize = input_shape.get(axis + 1..)?.iter().product();
        if inner <= 1 || input_shape[axis] <= 1 {
            return None;
        }
        Some(ReduceMaxAxis { input_shape, axis })
    }

    /// Outer size, reduced length, inner size.
    fn dims(&self) -> (usize, usize, usize) {
        let s = &self.input_shape;
        (
            s[..self.axis].iter().product(),
            s[self.axis],
            s[self.axis + 1..].iter().product(),
        )
    }

    fn output_shape(&self) -> TVec<usize> {
        let mut shape = self.input_shape.clone();
        shape[self.axis] = 1;
        shape
    }
}

impl Op for ReduceMaxAxis {
    fn name(&self) -> StaticName {
        "ReduceMaxAxis".into()
    }

    fn info(&self) -> TractResult<Vec<String>> {
        Ok(vec![format!("{:?}, axis {}", self.input_shape, self.axis)])
    }

    op_as_typed_op!();
}

impl EvalOp for ReduceMaxAxis {
    op_out_of_plan!();

    fn eval(&self, _ctx: &EvalContext, inputs: TVec<TValue>) -> TractResult<TVec<TValue>> {
        let input = &inputs[0];
        ensure!(
            input.shape() == &*self.input_shape && input.datum_type() == DatumType::F32,
            "ReduceMaxAxis: input {:?}, expected f32 {:?}",
            input,
            self.input_shape
        );
        let (outer, len, inner) = self.dims();
        let x = input.try_as_plain_ram()?;
        let x = x.as_slice::<f32>()?;
        let mut output = Tensor::zero::<f32>(&self.output_shape())?;
        {
            let mut y = output.try_as_plain_ram_mut()?;
            let y = y.as_slice_mut::<f32>()?;
            for (o, acc) in y.chunks_exact_mut(inner).enumerate() {
                acc.fill(f32::MIN);
                for row in x[o * len * inner..][..len * inner].chunks_exact(inner) {
                    for (a, &v) in acc.iter_mut().zip(row) {
                        *a = if *a > v { *a } else { v };
                    }
                }
            }
            debug_assert_eq!(y.len(), outer * inner);
        }
        Ok(tvec!(output.into_tvalue()))
    }
}

impl TypedOp for ReduceMaxAxis {
    as_op!();

    fn output_facts(&self, _inputs: &[&TypedFact]) -> TractResult<TVec<TypedFact>> {
        Ok(tvec!(f32::fact(&*self.output_shape())))
    }
}

/// Replace every `Reduce<Max>` of `model` that [`ReduceMaxAxis`] handles.
/// Returns how many were replaced; the model computes the same values
/// afterwards, bit for bit.
pub fn replace(model: &mut TypedModel) -> TractResult<usize> {
    crate::replace_each(model, |op, input, _| ReduceMaxAxis::for_reduce(op, input))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_data::{bytes, run_both, same_bytes};
    use tract_core::tract_linalg::multithread::Executor;

    /// `x -> Reduce<Max>(axis)`, optimized by tract.
    fn model(shape: &[usize], axis: usize) -> TypedModel {
        let mut m = TypedModel::default();
        let x = m.add_source("x", f32::fact(shape)).unwrap();
        let op = Reduce::new(tvec![axis], Reducer::Max);
        let y = m.wire_node("max", op, &[x]).unwrap()[0];
        m.select_output_outlets(&[y]).unwrap();
        m.into_optimized().unwrap()
    }

    /// Finite values of both signs, with NaN, infinities, signed zeros and
    /// values below `f32::MIN` mixed in.
    fn input(shape: &[usize], seed: u32) -> Tensor {
        let len = shape.iter().product();
        let special = [
            f32::NAN,
            f32::INFINITY,
            f32::NEG_INFINITY,
            0.0,
            -0.0,
            f32::MIN,
            f32::MAX,
        ];
        let values: Vec<f32> = bytes(len, seed)
            .iter()
            .enumerate()
            .map(|(i, &b)| match b {
                0..=8 => special[i % special.len()],
                _ => (b as f32 - 128.0) * 0.37,
            })
            .collect();
        Tensor::from_shape(shape, &values).unwrap()
    }

    #[test]
    fn equals_tracts_reduce_max_bit_for_bit() {
        for (shape, axis) in [
            (&[1, 8, 9, 256][..], 2),
            (&[1, 8, 9, 256][..], 1),
            (&[3, 5, 7][..], 0),
            (&[2, 3, 5, 7][..], 1),
            (&[4, 2, 33][..], 1),
        ] {
            let m = model(shape, axis);
            let mut ours = m.clone();
            assert_eq!(replace(&mut ours).unwrap(), 1, "{shape:?} axis {axis}");
            let x = input(shape, axis as u32 + shape.len() as u32);
            let (want, got) = run_both(m, ours, x, &Executor::SingleThread);
            assert_eq!(want[0].shape(), got[0].shape(), "{shape:?} axis {axis}");
            assert!(same_bytes(&want[0], &got[0]), "{shape:?} axis {axis}");
        }
    }

    #[test]
    fn other_reductions_are_left_to_tract() {
        for (shape, axes, reducer) in [
            (&[2, 9][..], tvec![1], Reducer::Max),
            (&[2, 9, 4][..], tvec![1], Reducer::Min),
            (&[2, 9, 4][..], tvec![0, 1], Reducer::Max),
        ] {
            let mut m = TypedModel::default();
            let x = m.add_source("x", f32::fact(shape)).unwrap();
            let y = m.wire_node("r", Reduce::new(axes, reducer), &[x]).unwrap()[0];
            m.select_output_outlets(&[y]).unwrap();
            assert_eq!(replace(&mut m).unwrap(), 0, "{shape:?} {reducer:?}");
        }
    }
}
