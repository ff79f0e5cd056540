//! No line parser panics, whatever it is fed, and neither does `load` on
//! garbled files: arbitrary and near-valid lines (tokens from the real
//! formats, shuffled, truncated, with garbage mixed in).

use deepfashion::annotations::{load, parse, Benchmark, LoadOptions};
use proptest::prelude::*;
use std::path::Path;

/// Tokens that occur in real rows, plus hostile ones.
fn token() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("img/a/img_00000001.jpg".to_string()),
        Just("0".to_string()),
        Just("1".to_string()),
        Just("2".to_string()),
        Just("3".to_string()),
        Just("-1".to_string()),
        Just("072".to_string()),
        Just("nan".to_string()),
        Just("1e39".to_string()),
        Just("99999999999999999999999".to_string()),
        Just("train".to_string()),
        Just("id_00000001".to_string()),
        "[a-z_]{1,8}",
        "[0-9]{1,4}",
        "\\PC{1,6}",
    ]
}

fn line() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        prop::collection::vec(token(), 0..30).prop_map(|t| t.join("  ")),
    ]
}

fn all_parsers(l: &str) {
    let t = parse::tokens(l);
    let _ = parse::count_line(l);
    let _ = parse::header_line(l);
    let _ = parse::label_line(l);
    let _ = parse::image_status(&t);
    let _ = parse::image_label(&t);
    let _ = parse::image_attributes(&t, t.len().saturating_sub(1));
    let _ = parse::image_attributes(&t, 3);
    let _ = parse::image_bbox(&t);
    let _ = parse::image_typed_bbox(&t);
    let _ = parse::landmark_row(&t);
    let _ = parse::inshop_partition(&t);
    let _ = parse::consumer2shop_partition(&t);
    let _ = parse::item_line(&t);
    let _ = parse::image_line(&t);
    let _ = parse::fine_attributes(&t, t.len());
    let _ = parse::fine_category(&t);
    let _ = parse::fine_bbox(&t);
    let _ = parse::fine_landmarks(&t);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn line_parsers_never_panic(l in line()) {
        all_parsers(&l);
    }

    #[test]
    fn landmark_rows_of_valid_shape_parse(ct in 1u8..=3, var in any::<bool>(), vals in prop::collection::vec((0u8..=2, 0u16..999, 0u16..999), 8)) {
        let k = parse::slots_of(ct).len();
        let mut l = format!("img/x.jpg {ct}");
        if var { l += " 1"; }
        for (v, x, y) in vals.iter().take(k) { l += &format!("  {v} {x:03} {y:03}"); }
        let r = parse::landmark_row(&parse::tokens(&l)).unwrap();
        prop_assert_eq!(r.variation.is_some(), var);
        let present = r.landmarks.iter().filter(|l| l.state != deepfashion::annotations::LandmarkState::Absent).count();
        prop_assert_eq!(present, k);
    }
}

/// Files of every benchmark with garbled lines: `load` returns (strict or
/// lenient), never panics.
fn garble(src: &Path, dst: &Path, edits: &[(usize, usize, String)]) {
    let mut files = Vec::new();
    collect(src, &mut files);
    for f in &files {
        let rel = f.strip_prefix(src).unwrap();
        let to = dst.join(rel);
        std::fs::create_dir_all(to.parent().unwrap()).unwrap();
        std::fs::copy(f, &to).unwrap();
    }
    for (fi, li, text) in edits {
        let f = dst.join(files[fi % files.len()].strip_prefix(src).unwrap());
        let body = std::fs::read_to_string(&f).unwrap();
        let mut lines: Vec<String> = body.lines().map(str::to_string).collect();
        let n = lines.len();
        match li % 3 {
            // Earlier edits may have removed every line: only an insert
            // applies then.
            _ if n == 0 => lines.push(text.clone()),
            0 => lines[li % n] = text.clone(),
            1 => lines.insert(li % (n + 1), text.clone()),
            _ => {
                lines.remove(li % n);
            }
        }
        std::fs::write(&f, lines.join("\n")).unwrap();
    }
}

fn collect(d: &Path, out: &mut Vec<std::path::PathBuf>) {
    let mut es: Vec<_> = std::fs::read_dir(d)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    es.sort();
    for p in es {
        if p.is_dir() {
            collect(&p, out)
        } else {
            out.push(p)
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn load_never_panics_on_garbled_files(
        b in 0usize..5,
        edits in prop::collection::vec((0usize..40, 0usize..40, line()), 1..4),
        lenient in any::<bool>(),
    ) {
        let bench = Benchmark::ALL[b];
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/DeepFashion").join(bench.folder_name());
        let tmp = tempfile::tempdir().unwrap();
        let dst = tmp.path().join(bench.folder_name());
        garble(&src, &dst, &edits);
        let _ = load(&dst, bench, &LoadOptions { lenient });
    }
}
