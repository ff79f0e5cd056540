//! Every benchmark of a generated dataset loads with the readers, with the
//! counts the generator reports.

use std::collections::BTreeSet;

use deepfashion::annotations::{load, Benchmark, LandmarkState, LoadOptions};
use deepfashion::synth::{generate, SynthOptions, COARSE_ATTRIBUTES, FINE_ATTRIBUTES};

#[test]
fn generated_benchmarks_load_with_expected_counts() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("synth");
    let opts = SynthOptions {
        seed: 11,
        images: 40,
        size: 64,
        overwrite: false,
    };
    let s = generate(&root, &opts, None).unwrap();
    let strict = LoadOptions::default();

    let ca = load(&root, Benchmark::CategoryAttribute, &strict).unwrap();
    assert_eq!(ca.images.len(), s.attr_images);
    assert_eq!(ca.skipped_rows, 0);
    assert_eq!(ca.categories.len(), 50);
    assert_eq!(ca.attributes.len(), COARSE_ATTRIBUTES.len());
    for (i, split) in ["train", "val", "test"].iter().enumerate() {
        assert_eq!(ca.split(split).count(), s.attr_splits[i], "{split}");
    }
    let mut states = BTreeSet::new();
    for rec in &ca.images {
        assert!(rec.bbox.is_some() && rec.category.is_some() && rec.attributes.is_some());
        let lm = rec.landmarks.expect("landmarks");
        for l in lm {
            states.insert(format!("{:?}", l.state));
        }
        let ty = rec.clothes_type.expect("clothes type");
        let absent = lm
            .iter()
            .filter(|l| l.state == LandmarkState::Absent)
            .count();
        assert_eq!(absent, [2, 4, 0][ty as usize - 1], "{}", rec.image);
        assert!(ca.image_path(rec).is_file(), "{}", rec.image);
    }
    assert!(states.contains("Visible"));

    let fine = load(&root, Benchmark::Fine, &strict).unwrap();
    assert_eq!(fine.images.len(), s.attr_images);
    assert_eq!(fine.attributes.len(), FINE_ATTRIBUTES.len());
    assert!(fine.images.iter().all(|r| fine.image_path(r).is_file()));

    let ins = load(&root, Benchmark::InShop, &strict).unwrap();
    assert_eq!(ins.images.len(), s.inshop_images);
    assert_eq!(ins.items.len(), s.inshop_items);
    for (i, split) in ["train", "query", "gallery"].iter().enumerate() {
        assert_eq!(ins.split(split).count(), s.inshop_status[i], "{split}");
    }
    assert!(ins
        .images
        .iter()
        .all(|r| r.item_id.is_some() && ins.image_path(r).is_file()));

    let c2s = load(&root, Benchmark::Consumer2Shop, &strict).unwrap();
    assert_eq!(c2s.images.len(), s.c2s_images);
    assert_eq!(c2s.items.len(), s.c2s_items);
    assert!(c2s
        .images
        .iter()
        .all(|r| r.source.is_some() && c2s.image_path(r).is_file()));

    let lmb = load(&root, Benchmark::Landmarks, &strict).unwrap();
    assert_eq!(lmb.images.len(), s.landmark_images);
    assert!(lmb
        .images
        .iter()
        .all(|r| r.landmarks.is_some() && lmb.image_path(r).is_file()));
}
