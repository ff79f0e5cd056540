//! Every DeepFashion annotation line parser on every line of the input:
//! each returns a value or an error message, never panics. Values that
//! parse must be what the loader relies on (finite coordinates, known
//! clothes types, the attribute count asked for).
#![no_main]

use deepfashion::annotations::parse;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    for line in text.lines() {
        let toks = parse::tokens(line);
        let _ = parse::count_line(line);
        let _ = parse::header_line(line);
        let _ = parse::label_line(line);
        let _ = parse::image_status(&toks);
        let _ = parse::image_label(&toks);
        if let Some(n) = toks.len().checked_sub(1) {
            if let Ok((_, values)) = parse::image_attributes(&toks, n) {
                assert_eq!(values.len(), n);
            }
        }
        let _ = parse::image_attributes(&toks, 1000);
        if let Ok((_, b)) = parse::image_bbox(&toks) {
            assert!(b.iter().all(|v| v.is_finite()));
        }
        if let Ok((_, ct, _, b)) = parse::image_typed_bbox(&toks) {
            assert!((1..=3).contains(&ct));
            assert!(b.iter().all(|v| v.is_finite()));
        }
        if let Ok(row) = parse::landmark_row(&toks) {
            for l in &row.landmarks {
                assert!(l.x.is_finite() && l.y.is_finite());
            }
        }
        if let Some(t) = toks.first() {
            if let Ok(ct) = parse::clothes_type(t) {
                let _ = parse::slots_of(ct);
            }
            let _ = parse::uint(t, "field");
            let _ = parse::number(t, "field");
        }
        let _ = parse::inshop_partition(&toks);
        let _ = parse::consumer2shop_partition(&toks);
        let _ = parse::item_line(&toks);
        let _ = parse::image_line(&toks);
    }
});
