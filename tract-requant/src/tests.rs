use super::*;
use tract_core::ops::{cast::cast, math, quant};

/// A chain as tract-core wires it after a quantized conv: `Scale` by a
/// per-channel (or single) constant, an optional zero point, the clamps and
/// the cast, on an i32 source of shape `[1, c, n]`.
fn chain(
    scales: &[f32],
    c: usize,
    n: usize,
    zp: Option<i32>,
    lo: i32,
    hi: i32,
    out: DatumType,
) -> TypedModel {
    let mut m = TypedModel::default();
    let x = m.add_source("x", i32::fact([1, c, n])).unwrap();
    let s_shape = if scales.len() == 1 {
        [1, 1, 1]
    } else {
        [1, c, 1]
    };
    let s = m
        .add_const("scale_k", tensor1(scales).into_shape(&s_shape).unwrap())
        .unwrap();
    let mut w = m.wire_node("scale", quant::scale(), &[s, x]).unwrap()[0];
    if let Some(zp) = zp {
        let z = m.add_const("zp_k", tensor3(&[[[zp]]])).unwrap();
        w = m.wire_node("zeropoint", math::add(), &[w, z]).unwrap()[0];
    }
    let l = m.add_const("lo_k", tensor3(&[[[lo]]])).unwrap();
    w = m.wire_node("max", math::max(), &[w, l]).unwrap()[0];
    let h = m.add_const("hi_k", tensor3(&[[[hi]]])).unwrap();
    w = m.wire_node("min", math::min(), &[h, w]).unwrap()[0];
    w = m.wire_node("cast", cast(out), &[w]).unwrap()[0];
    m.select_output_outlets(&[w]).unwrap();
    m
}

/// Accumulators that exercise every branch: ties at the scales used, both
/// signs, values near and beyond `2^23` after scaling, and the i32 extremes.
/// Even channel rows hold the extremes (the op redoes those rows exactly),
/// odd rows only values below `2^24` (its vectorized path).
fn inputs(c: usize, n: usize) -> Tensor {
    let small = [
        0,
        1,
        -1,
        2,
        -2,
        3,
        -3,
        5,
        -5,
        255,
        256,
        -256,
        511,
        513,
        1 << 22,
        -(1 << 22) - 1,
    ];
    let huge = [
        (1 << 23) + 1,
        (1 << 24) + 3,
        -(1 << 24) - 3,
        i32::MAX,
        i32::MIN,
        i32::MAX - 1,
        i32::MIN + 1,
    ];
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let mut v = Vec::with_capacity(c * n);
    for i in 0..c * n {
        let (row, col) = (i / n, i % n);
        if col % 3 == 0 && row % 2 == 0 {
            let all: Vec<i32> = small.iter().chain(huge.iter()).copied().collect();
            v.push(all[(col / 3) % all.len()]);
        } else if col % 3 == 0 {
            v.push(small[(col / 3) % small.len()]);
        } else {
            // xorshift: a spread of magnitudes, small ones most often
            // (below 2^24 in odd rows).
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let max_bits = if row % 2 == 0 { 31 } else { 24 };
            let bits = (state >> 40) as u32 % max_bits;
            let mag = (state as u32) >> (31 - bits);
            let sign = if state & (1 << 63) == 0 { 1 } else { -1 };
            v.push(mag as i32 * sign);
        }
    }
    tensor1(&v).into_shape(&[1, c, n]).unwrap()
}

fn run(model: TypedModel, x: &Tensor) -> Tensor {
    let plan = model.into_runnable().unwrap();
    let out = plan.run(tvec!(x.clone().into_tvalue())).unwrap();
    out[0].clone().into_tensor()
}

fn check(scales: &[f32], zp: Option<i32>, lo: i32, hi: i32, out: DatumType) {
    let (c, n) = (scales.len().max(3), 1000);
    let reference = chain(scales, c, n, zp, lo, hi, out);
    let mut fused = reference.clone();
    assert_eq!(fuse(&mut fused).unwrap(), 1, "the chain is fused");
    let ops: Vec<String> = fused
        .nodes()
        .iter()
        .map(|n| n.op().name().to_string())
        .collect();
    assert!(ops.contains(&"Requant".to_string()), "{ops:?}");
    for gone in ["Scale", "Max", "Min", "Cast", "Add"] {
        assert!(!ops.iter().any(|o| o == gone), "{gone} left in {ops:?}");
    }
    let x = inputs(c, n);
    let want = run(reference, &x);
    let got = run(fused, &x);
    assert_eq!(want.datum_type(), got.datum_type());
    assert_eq!(want.shape(), got.shape());
    let (w, g) = (
        want.try_as_plain_ram().unwrap(),
        got.try_as_plain_ram().unwrap(),
    );
    let (w, g) = (w.as_bytes(), g.as_bytes());
    let differing = w.iter().zip(g).filter(|(a, b)| a != b).count();
    assert_eq!(differing, 0, "{differing} of {} outputs differ", w.len());
}

#[test]
fn per_channel_u8_equals_the_chain_bit_for_bit() {
    check(
        &[0.5, 1.5, 2.5e-3, 7.3e-4, 1.0, 3.0],
        None,
        0,
        255,
        u8::datum_type(),
    );
}

#[test]
fn rows_split_over_threads_equal_the_chain() {
    use tract_core::tract_linalg::multithread::{multithread_tract_scope, Executor};
    // Thread even these small tensors (the default skips below 32,768).
    tract_core::tract_linalg::multithread::set_threading_element_threshold(0);
    // Scales below 1 with a zero point, as in the i8 test below.
    multithread_tract_scope(Executor::multithread(3), || {
        check(
            &[0.5, 0.07, 2.5e-3, 7.3e-4, 0.999, 0.3, 0.2],
            Some(5),
            0,
            255,
            u8::datum_type(),
        )
    });
}

#[test]
fn zero_point_and_narrow_clamp_equal_the_chain() {
    check(&[0.25, 0.013, 0.75], Some(17), 3, 200, u8::datum_type());
}

#[test]
fn i8_output_equals_the_chain() {
    // Scales below 1: with a zero point, a saturated accumulator would make
    // tract's own `Add` overflow (a panic in this debug-checked build).
    check(
        &[0.5, 0.07, 1.25e-5, 0.999],
        Some(-3),
        -128,
        127,
        i8::datum_type(),
    );
}

#[test]
fn one_scale_for_the_tensor_equals_the_chain() {
    check(&[0.031_25], Some(128), 0, 255, u8::datum_type());
}

#[test]
fn rounding_is_half_to_even_for_every_magnitude() {
    for v in [
        0.5f32,
        1.5,
        2.5,
        -0.5,
        -1.5,
        -2.5,
        4_194_304.5,
        8_388_607.5,
        1e10,
        -3.4e38,
    ] {
        assert_eq!(
            round_half_even(v),
            tract_core::internal::round_ties_to_even(v),
            "{v}"
        );
    }
}

#[test]
fn chains_it_cannot_prove_equal_are_left_alone() {
    // A clamp wider than u8: the cast would wrap, so no fusion.
    let mut m = chain(&[0.5, 0.25, 1.0], 3, 8, None, -5, 255, u8::datum_type());
    assert_eq!(fuse(&mut m).unwrap(), 0);
    // A zero point added after a clamp changes the result: no fusion.
    let mut m = TypedModel::default();
    let x = m.add_source("x", i32::fact([1, 3, 8])).unwrap();
    let s = m.add_const("scale_k", tensor3(&[[[0.5f32]]])).unwrap();
    let mut w = m.wire_node("scale", quant::scale(), &[s, x]).unwrap()[0];
    let l = m.add_const("lo_k", tensor3(&[[[0i32]]])).unwrap();
    w = m.wire_node("max", math::max(), &[w, l]).unwrap()[0];
    let z = m.add_const("zp_k", tensor3(&[[[3i32]]])).unwrap();
    w = m.wire_node("zp", math::add(), &[w, z]).unwrap()[0];
    let h = m.add_const("hi_k", tensor3(&[[[200i32]]])).unwrap();
    w = m.wire_node("min", math::min(), &[w, h]).unwrap()[0];
    w = m.wire_node("cast", cast(u8::datum_type()), &[w]).unwrap()[0];
    m.select_output_outlets(&[w]).unwrap();
    assert_eq!(fuse(&mut m).unwrap(), 0);
}
