//! The runtime's steady state must not allocate: `ShopTable::search_into`
//! is checked with a counting global allocator.

use deepfashion::shop_table::{Match, ShopTable, TableItem, TableWriter};
use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

struct Counting;

static ALLOCS: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::SeqCst);
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.dealloc(p, l) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

#[test]
fn search_into_does_not_allocate() {
    let dim = 128;
    let mut w = TableWriter::new("fp", dim).unwrap();
    for i in 0..2000usize {
        let e: Vec<f32> = (0..dim)
            .map(|j| ((i * 31 + j * 7) % 17) as f32 - 8.0)
            .collect();
        w.push(&TableItem {
            id: format!("item{i}"),
            name: None,
            price: None,
            url: None,
            embedding: e,
        })
        .unwrap();
    }
    let t = ShopTable::from_bytes(w.to_bytes()).unwrap();
    let q: Vec<f32> = (0..dim).map(|j| (j % 5) as f32 - 2.0).collect();
    let mut out = [Match::default(); 20];
    t.search_into(&q, &mut out); // warm-up (feature detection is cached)
    let before = ALLOCS.load(Ordering::SeqCst);
    let mut total = 0;
    for _ in 0..10 {
        total += t.search_into(&q, &mut out);
        let item = t.item(out[0].index as usize);
        assert!(item.id.starts_with("item"));
    }
    let after = ALLOCS.load(Ordering::SeqCst);
    assert_eq!(total, 200);
    assert_eq!(
        after - before,
        0,
        "search_into allocated {} times",
        after - before
    );
}
