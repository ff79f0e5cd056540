//! The synthetic generator writes the released layout with its quirks, is
//! deterministic for a seed, and refuses to clobber a folder.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use deepfashion::synth::{generate, SynthError, SynthOptions, BENCHMARKS};

const CA: &str = "Category and Attribute Prediction Benchmark";
const INSHOP: &str = "In-shop Clothes Retrieval Benchmark";
const C2S: &str = "Consumer-to-shop Clothes Retrieval Benchmark";
const LM: &str = "Fashion Landmark Detection Benchmark";

fn opts(seed: u64, images: usize, size: u32) -> SynthOptions {
    SynthOptions {
        seed,
        images,
        size,
        overwrite: false,
    }
}

fn read(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// Rows of a released table: checks the count line and the header, returns
/// the data rows split on runs of spaces.
fn table(p: &Path, header_first: &str) -> Vec<Vec<String>> {
    let text = read(p);
    let mut lines = text.lines();
    let count: usize = lines.next().unwrap().trim().parse().unwrap();
    let header = lines.next().unwrap();
    assert!(
        header.starts_with(header_first),
        "{}: header {header}",
        p.display()
    );
    let rows: Vec<Vec<String>> = lines
        .map(|l| l.split_whitespace().map(str::to_string).collect())
        .collect();
    assert_eq!(rows.len(), count, "{}", p.display());
    rows
}

fn all_files(root: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.insert(
                    p.strip_prefix(root).unwrap().to_path_buf(),
                    std::fs::read(&p).unwrap(),
                );
            }
        }
    }
    out
}

fn check_image(bench: &Path, name: &str, size: u32) {
    let p = bench.join("Img").join(name);
    let img = image::open(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    assert_eq!((img.width(), img.height()), (size, size));
}

fn expected_triples(clothes_type: &str) -> usize {
    match clothes_type {
        "1" => 6,
        "2" => 4,
        "3" => 8,
        t => panic!("bad clothes type {t}"),
    }
}

#[test]
fn writes_the_released_layout_with_its_quirks() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("ds");
    let size = 64;
    let s = generate(&out, &opts(3, 30, size), None).unwrap();
    assert_eq!(BENCHMARKS, [CA, INSHOP, C2S, LM]);
    assert_eq!(s.attr_images, 30);
    assert_eq!(s.attr_splits.iter().sum::<usize>(), 30);
    assert!(s.attr_splits.iter().all(|&n| n > 0));
    assert!(s.inshop_images >= 15 && s.c2s_images >= 15 && s.landmark_images >= 7);
    assert!(!out.with_file_name(".ds.partial").exists());

    // Category & Attribute, coarse.
    let ca = out.join(CA);
    let coarse = ca.join("Anno_coarse");
    let cats = table(
        &coarse.join("list_category_cloth.txt"),
        "category_name  category_type",
    );
    assert_eq!(cats.len(), 50);
    assert_eq!(cats[0], ["Anorak", "1"]);
    assert_eq!(cats[49], ["Sundress", "3"]);
    let attr_text = read(&coarse.join("list_attr_cloth.txt"));
    assert!(
        attr_text.contains("\nabstract chevron print       1\n"),
        "{attr_text}"
    );
    let attrs = table(
        &coarse.join("list_attr_cloth.txt"),
        "attribute_name  attribute_type",
    );
    let n_attr = attrs.len();
    assert!((30..=60).contains(&n_attr));
    let cat_img = table(
        &coarse.join("list_category_img.txt"),
        "image_name  category_label",
    );
    assert_eq!(cat_img.len(), 30);
    let with_images: BTreeSet<usize> = cat_img.iter().map(|r| r[1].parse().unwrap()).collect();
    for empty in [38, 45, 49, 50] {
        assert!(
            !with_images.contains(&empty),
            "category {empty} must have no images"
        );
    }
    let attr_img = table(
        &coarse.join("list_attr_img.txt"),
        "image_name  attribute_labels",
    );
    let mut positives = 0;
    for r in &attr_img {
        assert_eq!(r.len(), 1 + n_attr);
        for v in &r[1..] {
            assert!(["1", "-1", "0"].contains(&v.as_str()), "{v}");
        }
        positives += r[1..].iter().filter(|v| *v == "1").count();
    }
    let mean = positives as f32 / attr_img.len() as f32;
    assert!((3.0..=7.0).contains(&mean), "mean positives {mean}");
    let bbox = table(
        &coarse.join("list_bbox.txt"),
        "image_name  x_1  y_1  x_2  y_2",
    );
    assert!(bbox.iter().all(|r| r.len() == 5 && r[1].len() == 3));
    let lms = table(
        &coarse.join("list_landmarks.txt"),
        "image_name  clothes_type",
    );
    let type_of: BTreeMap<String, String> =
        lms.iter().map(|r| (r[0].clone(), r[1].clone())).collect();
    for r in &lms {
        // No variation column in the C&A file.
        assert_eq!(r.len(), 2 + 3 * expected_triples(&r[1]), "{r:?}");
    }
    let raw = read(&coarse.join("list_landmarks.txt"));
    assert!(
        raw.lines().any(|l| l.ends_with(' ')),
        "some rows carry trailing spaces"
    );
    let eval = table(
        &ca.join("Eval/list_eval_partition.txt"),
        "image_name  evaluation_status",
    );
    assert_eq!(eval.len(), 30);
    for r in &eval {
        assert!(r[0].starts_with("img/") && r[0].ends_with(".jpg"));
        check_image(&ca, &r[0], size);
    }

    // Anno_fine: row-aligned split files.
    let fine = ca.join("Anno_fine");
    assert_eq!(
        table(
            &fine.join("list_attr_cloth.txt"),
            "attribute_name  attribute_type"
        )
        .len(),
        26
    );
    assert_eq!(
        table(&fine.join("list_category_cloth.txt"), "category_name").len(),
        50
    );
    let mut fine_total = 0;
    for split in ["train", "val", "test"] {
        let names: Vec<String> = read(&fine.join(format!("{split}.txt")))
            .lines()
            .map(str::to_string)
            .collect();
        let rows = |f: &str| -> Vec<Vec<String>> {
            read(&fine.join(format!("{split}_{f}.txt")))
                .lines()
                .map(|l| l.split_whitespace().map(str::to_string).collect())
                .collect()
        };
        let (attr, cate, bb, lm) = (rows("attr"), rows("cate"), rows("bbox"), rows("landmarks"));
        for v in [&attr, &cate, &bb, &lm] {
            assert_eq!(v.len(), names.len(), "{split}");
        }
        for i in 0..names.len() {
            assert_eq!(attr[i].len(), 26);
            assert!(attr[i].iter().all(|v| v == "0" || v == "1"));
            assert_eq!(cate[i].len(), 1);
            assert_eq!(bb[i].len(), 4);
            assert_eq!(lm[i].len(), 16);
            // Absent slots are zeros: lower garments have no collar.
            if type_of[&names[i]] == "2" {
                assert!(lm[i][..4].iter().all(|v| v == "0"));
            }
        }
        fine_total += names.len();
    }
    assert_eq!(fine_total, 30);

    // In-shop.
    let ins = out.join(INSHOP);
    let items_text = read(&ins.join("Anno/list_item_inshop.txt"));
    let mut items = items_text.lines();
    let n_items: usize = items.next().unwrap().parse().unwrap();
    let ids: Vec<&str> = items.collect();
    assert_eq!(ids.len(), n_items);
    assert!(ids.iter().all(|i| i.starts_with("id_") && i.len() == 11));
    let part = table(
        &ins.join("Eval/list_eval_partition.txt"),
        "image_name item_id evaluation_status",
    );
    let mut by_status: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for r in &part {
        assert_eq!(r.len(), 3);
        assert!(r[0].contains(&format!("/{}/", r[1])), "{r:?}");
        by_status
            .entry(r[2].clone())
            .or_default()
            .insert(r[1].clone());
        check_image(&ins, &r[0], size);
    }
    assert_eq!(by_status["query"], by_status["gallery"]);
    assert!(by_status["train"].is_disjoint(&by_status["query"]));
    let bb = table(
        &ins.join("Anno/list_bbox_inshop.txt"),
        "image_name  clothes_type  pose_type",
    );
    assert!(bb.iter().all(|r| r.len() == 7));
    let lm = table(
        &ins.join("Anno/list_landmarks_inshop.txt"),
        "image_name  clothes_type  variation_type",
    );
    for r in &lm {
        assert_eq!(r.len(), 3 + 3 * expected_triples(&r[1]), "{r:?}");
    }
    assert_eq!(lm.len(), part.len());

    // Consumer-to-shop.
    let c2s = out.join(C2S);
    let pairs = table(
        &c2s.join("Eval/list_eval_partition.txt"),
        "image_pair_name_1 image_pair_name_2",
    );
    assert_eq!(pairs.len(), s.c2s_pairs);
    let statuses: BTreeSet<&str> = pairs.iter().map(|r| r[3].as_str()).collect();
    assert_eq!(statuses, ["test", "train", "val"].into_iter().collect());
    for r in &pairs {
        assert!(
            r[0].contains("/comsumer_") && r[1].contains("/shop_"),
            "{r:?}"
        );
        check_image(&c2s, &r[0], size);
        check_image(&c2s, &r[1], size);
    }
    let bb = table(
        &c2s.join("Anno/list_bbox_consumer2shop.txt"),
        "image_name  clothes_type  source_type",
    );
    assert_eq!(bb.len(), s.c2s_images);
    for r in &bb {
        assert_eq!(r.len(), 7);
        assert_eq!(r[2], if r[0].contains("comsumer") { "2" } else { "1" });
    }
    let lm = table(
        &c2s.join("Anno/list_landmarks_consumer2shop.txt"),
        "image_name  clothes_type  variation_type",
    );
    assert!(lm
        .iter()
        .all(|r| r.len() == 3 + 3 * expected_triples(&r[1])));
    let items = read(&c2s.join("Anno/list_item_consumer2shop.txt"));
    assert_eq!(
        items.lines().next().unwrap().parse::<usize>().unwrap(),
        s.c2s_items
    );

    // Landmark detection.
    let lmb = out.join(LM);
    let lm = table(
        &lmb.join("Anno/list_landmarks.txt"),
        "image_name  clothes_type  variation_type",
    );
    assert_eq!(lm.len(), s.landmark_images);
    let mut vis = BTreeMap::new();
    for r in &lm {
        assert_eq!(r.len(), 3 + 3 * expected_triples(&r[1]), "{r:?}");
        assert!(("1"..="5").contains(&r[2].as_str()));
        for t in r[3..].chunks(3) {
            *vis.entry(t[0].clone()).or_insert(0) += 1;
            assert_eq!(t[1].len(), 3, "zero-padded coordinate");
        }
        check_image(&lmb, &r[0], size);
    }
    assert!(vis.contains_key("0"));
    assert_eq!(
        table(&lmb.join("Anno/list_bbox.txt"), "image_name  x_1").len(),
        lm.len()
    );
    assert_eq!(
        table(
            &lmb.join("Eval/list_eval_partition.txt"),
            "image_name  evaluation_status"
        )
        .len(),
        lm.len()
    );
}

#[test]
fn same_seed_gives_identical_bytes_and_other_seeds_differ() {
    let tmp = tempfile::tempdir().unwrap();
    let (a, b, c) = (
        tmp.path().join("a"),
        tmp.path().join("b"),
        tmp.path().join("c"),
    );
    generate(&a, &opts(42, 12, 48), None).unwrap();
    // A different thread count must not change the output.
    rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .unwrap()
        .install(|| generate(&b, &opts(42, 12, 48), None))
        .unwrap();
    generate(&c, &opts(43, 12, 48), None).unwrap();
    let (fa, fb, fc) = (all_files(&a), all_files(&b), all_files(&c));
    assert!(fa.len() > 40);
    assert_eq!(fa.keys().collect::<Vec<_>>(), fb.keys().collect::<Vec<_>>());
    for (k, v) in &fa {
        assert!(v == &fb[k], "{} differs between runs", k.display());
    }
    assert_ne!(fa, fc);
}

#[test]
fn refuses_a_non_empty_folder_unless_overwriting_and_checks_options() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("busy");
    std::fs::create_dir_all(&out).unwrap();
    std::fs::write(out.join("keep.txt"), "mine").unwrap();
    let err = generate(&out, &opts(0, 10, 48), None).unwrap_err();
    assert!(matches!(err, SynthError::Exists(_)), "{err}");
    assert!(out.join("keep.txt").exists());
    let calls = std::sync::atomic::AtomicUsize::new(0);
    let progress = |done: usize, total: usize| {
        assert!(done <= total);
        calls.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    };
    let mut o = opts(0, 10, 48);
    o.overwrite = true;
    let s = generate(&out, &o, Some(&progress)).unwrap();
    assert_eq!(calls.into_inner(), s.total_images);
    assert!(!out.join("keep.txt").exists());
    assert!(out.join(CA).join("Anno_coarse/list_bbox.txt").exists());

    let e = generate(&tmp.path().join("x"), &opts(0, 3, 64), None).unwrap_err();
    assert!(e.to_string().contains("images"), "{e}");
    let e = generate(&tmp.path().join("y"), &opts(0, 20, 4000), None).unwrap_err();
    assert!(e.to_string().contains("size"), "{e}");
}
