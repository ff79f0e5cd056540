//! The pass on a real exported int8 model (the demo's `tiny` FashionNet):
//! every requantization chain is fused, every im2col and 2x2 pooling
//! replaced, every conv run block by block, and the outputs stay
//! bit-identical, on one thread and on several.

use tract_linalg::multithread::{multithread_tract_scope, Executor};
use tract_onnx::prelude::*;
use tract_onnx::tract_core::tract_linalg::mmm::PackedExoticFact;
use tract_onnx::tract_core::tract_linalg::pack::PackedI8K4;

const MODEL: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../assets/demo/fashionnet-tiny.int8.onnx"
);

fn optimized() -> TypedModel {
    let model = tract_onnx::onnx().model_for_path(MODEL).unwrap();
    // The demo model is the `tiny` config: 96 x 96 input.
    model
        .with_input_fact(0, f32::fact([1, 3, 96, 96]).into())
        .unwrap()
        .into_optimized()
        .unwrap()
}

fn count(model: &TypedModel, name: &str) -> usize {
    model
        .nodes()
        .iter()
        .filter(|n| n.op().name() == name)
        .count()
}

#[test]
fn every_chain_im2col_and_pool_of_the_demo_model_is_replaced_and_outputs_are_identical() {
    let reference = optimized();
    let scales = count(&reference, "Scale");
    assert!(scales > 0, "the int8 model has requantization chains");
    assert!(
        count(&reference, "Im2col") > 0,
        "the int8 model has im2col convolutions"
    );
    // Those whose kernel takes the K=4-inner packing (x86-64's int8 kernels,
    // arm64's dot-product ones; not every CPU's).
    let im2cols = reference
        .nodes()
        .iter()
        .filter(|n| n.op().name() == "Im2col")
        .filter(|n| {
            let fact = n.outputs[0].fact.exotic_fact.as_ref();
            let packed = fact.and_then(|f| f.downcast_ref::<PackedExoticFact>());
            packed.is_some_and(|p| p.format.downcast_ref::<PackedI8K4>().is_some())
        })
        .count();
    // Every x86-64 int8 kernel takes it (the AVX2 one since PATCHED.md change 2).
    #[cfg(target_arch = "x86_64")]
    assert_eq!(im2cols, count(&reference, "Im2col"));
    let mut fused = reference.clone();
    let n = tract_requant::fuse(&mut fused).unwrap();
    assert_eq!(n, scales, "one fused op per chain");
    assert_eq!(count(&fused, "Scale"), 0);
    assert_eq!(count(&fused, "Requant"), n);
    // The demo model's convolutions are all 3x3, channels first, group 1.
    let replaced = tract_requant::im2col::replace(&mut fused).unwrap();
    assert_eq!(replaced, im2cols, "every K=4-inner im2col replaced");
    assert_eq!(count(&fused, "Im2colI8K4"), replaced);
    // Then each conv's im2col, product and requantization become one op.
    let requants = count(&fused, "Requant");
    let blocked = tract_requant::conv::replace(&mut fused).unwrap();
    #[cfg(target_arch = "x86_64")]
    assert_eq!(blocked, replaced, "every conv run block by block");
    assert_eq!(count(&fused, "ConvBlocked"), blocked);
    assert_eq!(count(&fused, "Im2colI8K4"), replaced - blocked);
    assert_eq!(count(&fused, "Requant"), requants - blocked);
    let pools = count(&fused, "OptMaxPool");
    assert!(pools > 0, "the model pools between its blocks");
    assert_eq!(tract_requant::maxpool::replace(&mut fused).unwrap(), pools);
    assert_eq!(count(&fused, "MaxPool2x2"), pools);

    let shape: Vec<usize> = reference
        .input_fact(0)
        .unwrap()
        .shape
        .as_concrete()
        .unwrap()
        .to_vec();
    let a = reference.into_runnable().unwrap();
    let b = fused.into_runnable().unwrap();
    // Blocks (and the other ops' rows) split over threads from the first
    // element on, as well as on one thread.
    tract_linalg::multithread::set_threading_element_threshold(0);
    let threads = Executor::multithread(3);
    for seed in 0..4u32 {
        let len: usize = shape.iter().product();
        // A deterministic spread of pixel-like values per seed.
        let data: Vec<f32> = (0..len)
            .map(|i| {
                (((i as u32)
                    .wrapping_mul(2_654_435_761)
                    .wrapping_add(seed * 977))
                    % 1000) as f32
                    / 250.0
                    - 2.0
            })
            .collect();
        let x = tract_ndarray::ArrayD::from_shape_vec(shape.clone(), data).unwrap();
        let x: Tensor = x.into();
        let ra = a.run(tvec!(x.clone().into())).unwrap();
        let rb = if seed % 2 == 0 {
            b.run(tvec!(x.into())).unwrap()
        } else {
            multithread_tract_scope(threads.clone(), || b.run(tvec!(x.into())).unwrap())
        };
        assert_eq!(ra.len(), rb.len());
        for (k, (oa, ob)) in ra.iter().zip(rb.iter()).enumerate() {
            let (oa, ob) = (
                oa.try_as_plain_ram().unwrap(),
                ob.try_as_plain_ram().unwrap(),
            );
            assert_eq!(
                oa.as_bytes(),
                ob.as_bytes(),
                "output {k} differs (seed {seed})"
            );
        }
    }
}
