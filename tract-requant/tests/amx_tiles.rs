//! The patched AMX int8 16x16 kernel keeps its tile configuration from one
//! call to the next on a thread (no `tilerelease`, and `ldtilecfg` only when
//! the tiles are configured otherwise: third_party/tract-linalg/PATCHED.md,
//! change 6). Products computed by it, then by the AMX 8x8 kernel (its own
//! configuration, released after each call), then by the 16x16 again, on one
//! thread and on several, must all equal a plain i32 reference. Skipped (with
//! a message) on a CPU without AMX.

use tract_core::internal::*;
use tract_core::tract_linalg::mmm::{AsInputValue, FusedSpec, MatMatMul};
use tract_core::tract_linalg::MmmDispatch;

fn kernel(name: &str) -> Option<Box<dyn MatMatMul>> {
    MmmDispatch::native()
        .runnable()
        .iter()
        .find(|k| k.name() == name)
        .cloned()
}

/// A deterministic spread of i8 values, extremes included.
fn values(len: usize, seed: u32) -> Vec<i8> {
    let mut s = seed.wrapping_mul(2_654_435_761) | 1;
    (0..len)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 17;
            s ^= s << 5;
            (s >> 11) as i8
        })
        .collect()
}

/// `a [m, k] x b [k, n]` with `kernel`'s int8 packing.
fn product(kernel: &dyn MatMatMul, a: &Tensor, b: &Tensor) -> Vec<i32> {
    let (m, n) = (a.shape()[0], b.shape()[1]);
    let packing = kernel
        .packings()
        .iter()
        .position(|(pa, _)| pa.precursor().as_dt() == Some(DatumType::I8))
        .expect("an i8 x i8 packing");
    let (fa, fb) = &kernel.packings()[packing];
    let pa = fa.prepare_one(a, 1, 0).unwrap();
    let pb = fb.prepare_one(b, 0, 1).unwrap();
    let mut c = Tensor::zero::<i32>(&[m, n]).unwrap();
    unsafe {
        kernel
            .run(
                m,
                n,
                &[
                    FusedSpec::AddMatMul {
                        a: AsInputValue::Borrowed(&*pa),
                        b: AsInputValue::Borrowed(&*pb),
                        packing,
                    },
                    FusedSpec::Store(kernel.c_view(Some(0), Some(1)).wrap(&c.view_mut())),
                ],
            )
            .unwrap();
    }
    c.try_as_plain_ram()
        .unwrap()
        .as_slice::<i32>()
        .unwrap()
        .to_vec()
}

fn reference(a: &[i8], b: &[i8], m: usize, k: usize, n: usize) -> Vec<i32> {
    let mut c = vec![0i32; m * n];
    for i in 0..m {
        for j in 0..n {
            c[i * n + j] = (0..k)
                .map(|p| a[i * k + p] as i32 * b[p * n + j] as i32)
                .sum();
        }
    }
    c
}

fn check_sequence(seed: u32) {
    let (Some(k16), Some(k8)) = (
        kernel("avx512amx_mmm_i32_16x16"),
        kernel("avx512amx_mmm_i32_8x8"),
    ) else {
        eprintln!("no AMX int8 kernels on this CPU: skipped");
        return;
    };
    for (step, kern) in [&k16, &k16, &k8, &k16, &k8, &k8, &k16]
        .into_iter()
        .enumerate()
    {
        let (m, k, n) = (37 + step, 27 + 31 * step, 50 - step);
        let (av, bv) = (
            values(m * k, seed + step as u32),
            values(k * n, seed + 99 + step as u32),
        );
        let a = Tensor::from_shape(&[m, k], &av).unwrap();
        let b = Tensor::from_shape(&[k, n], &bv).unwrap();
        assert_eq!(
            product(&**kern, &a, &b),
            reference(&av, &bv, m, k, n),
            "step {step}: {} m {m} k {k} n {n}",
            kern.name()
        );
    }
}

#[test]
fn amx_16x16_after_itself_and_after_the_8x8_on_one_thread() {
    check_sequence(1);
}

#[test]
fn amx_16x16_on_several_threads_at_once() {
    let threads: Vec<_> = (0..4)
        .map(|t| std::thread::spawn(move || (0..3).for_each(|r| check_sequence(10 * t + r))))
        .collect();
    for t in threads {
        t.join().unwrap();
    }
}
