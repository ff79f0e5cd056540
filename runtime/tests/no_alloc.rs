//! Proof that the steady-state frame work in the runtime's own code
//! (preprocess, output decoding, shop search) allocates nothing on the
//! heap, with a counting global allocator; and a measurement of what
//! tract's `run` allocates per call (printed; run with `--nocapture`).
//!
//! One test in this file: the counter is process-wide.

mod common;

use common::TestModel;
use fashion_runtime::config::{ResultsConfig, RoiConfig};
use fashion_runtime::engine::{Engine, EngineOptions};
use fashion_runtime::pipeline::Pipeline;
use fashion_runtime::result::FrameResult;
use fashion_runtime::sources::{demo, Frame};
use fashion_runtime::table::Table;
use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

struct Counting;
static COUNTING: AtomicBool = AtomicBool::new(false);
static ALLOCS: AtomicUsize = AtomicUsize::new(0);
static BYTES: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if COUNTING.load(Ordering::Relaxed) {
            ALLOCS.fetch_add(1, Ordering::Relaxed);
            BYTES.fetch_add(layout.size(), Ordering::Relaxed);
        }
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if COUNTING.load(Ordering::Relaxed) {
            ALLOCS.fetch_add(1, Ordering::Relaxed);
            BYTES.fetch_add(new_size, Ordering::Relaxed);
        }
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn counted<R>(f: impl FnOnce() -> R) -> (R, usize, usize) {
    ALLOCS.store(0, Ordering::SeqCst);
    BYTES.store(0, Ordering::SeqCst);
    COUNTING.store(true, Ordering::SeqCst);
    let r = f();
    COUNTING.store(false, Ordering::SeqCst);
    (
        r,
        ALLOCS.load(Ordering::SeqCst),
        BYTES.load(Ordering::SeqCst),
    )
}

#[test]
fn steady_state_frame_work_does_not_allocate() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.onnx");
    let model = TestModel::small(5);
    model.write(&path);
    let engine = Engine::load(&path, EngineOptions::default()).unwrap();
    // A table for this model, so that the search stage is measured too.
    let dim = model.config.embedding_dim;
    let items: Vec<deepfashion::shop_table::TableItem> = (0..300)
        .map(|i| {
            let v: Vec<f32> = (0..dim)
                .map(|j| (((i * 31 + j * 17) % 23) as f32 - 11.0) / 11.0)
                .collect();
            let n = v.iter().map(|x| x * x).sum::<f32>().sqrt().max(1e-6);
            deepfashion::shop_table::TableItem {
                id: format!("item{i}"),
                name: Some(format!("Item {i}")),
                price: None,
                url: None,
                embedding: v.iter().map(|x| x / n).collect(),
            }
        })
        .collect();
    let table_path = dir.path().join("shop.table");
    deepfashion::shop_table::write_table(&table_path, &model.fingerprint(), dim, &items).unwrap();
    let table = Arc::new(Table::open(&table_path).unwrap());
    let results = ResultsConfig {
        top_categories: 5,
        top_attributes: 10,
        top_matches: 10,
    };
    let mut pipeline = Pipeline::new(engine, Some(table), RoiConfig::default(), results).unwrap();
    let mut frames: Vec<Frame> = (0..4)
        .map(|t| {
            let mut f = Frame::default();
            demo::draw(&mut f, 320, 240, t * 9);
            f
        })
        .collect();
    frames[1].sequence = 2;
    let mut out = FrameResult::default();
    for f in &frames {
        pipeline.process(f, 0, &mut out).unwrap();
    }

    const N: usize = 40;
    let ((), allocs, bytes) = counted(|| {
        for i in 0..N {
            let f = &frames[i % frames.len()];
            let crop = pipeline.preprocess(f);
            pipeline.decode(crop, &mut out);
            pipeline.search(&mut out);
        }
    });
    assert_eq!(
        allocs, 0,
        "preprocess+decode+search allocated {allocs} times ({bytes} bytes) over {N} frames"
    );
    assert_eq!(out.landmarks.len(), 8);
    assert_eq!(out.categories.len(), 5);
    assert_eq!(out.attributes.len(), 10);
    assert_eq!(out.matches.len(), 10, "the table search ran");

    // tract's run, measured (not asserted to be zero: tract allocates its
    // intermediate tensors per call).
    let ((), run_allocs, run_bytes) = counted(|| {
        for _ in 0..N {
            pipeline.infer().unwrap();
        }
    });
    eprintln!(
        "tract SimpleState::run: {:.1} allocations, {:.0} bytes per call (test model, input 64x64)",
        run_allocs as f64 / N as f64,
        run_bytes as f64 / N as f64
    );
    let ((), all_allocs, _) = counted(|| {
        for i in 0..N {
            pipeline
                .process(&frames[i % frames.len()], 0, &mut out)
                .unwrap();
        }
    });
    assert_eq!(
        all_allocs, run_allocs,
        "process() allocates only inside tract's run"
    );
}
