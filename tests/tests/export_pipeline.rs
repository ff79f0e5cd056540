//! End to end through `export` on synthetic DeepFashion: random checkpoint
//! -> fp32 ONNX -> int8 calibrated on real (synthetic) training images ->
//! both scored on the test split -> In-shop gallery table -> query search.

use deepfashion::contract::ModelConfig;
use export::infer::TractModel;
use export::quantize::{self, Method};
use export::shop_table::ShopTable;
use export::{checkpoint, evaluate, gallery, images, onnx};

#[test]
fn synthetic_export_pipeline() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("synth");
    e2e_tests::synth(&root, 5, 40, 96);
    let ca = images::load_dataset(&root, "category-attribute").unwrap();

    let mut cfg = ModelConfig::tiny();
    cfg.num_attributes = ca.attributes.len();
    let ck_path = dir.path().join("tiny.safetensors");
    checkpoint::write_random(&cfg, &ca.labels(), 21, &ck_path).unwrap();
    let ck = checkpoint::load(&ck_path).unwrap();
    let fp32 = dir.path().join("tiny.onnx");
    onnx::write_model(&fp32, &onnx::from_checkpoint(&ck)).unwrap();

    let (info, w) = quantize::read_fp32(&fp32).unwrap();
    let calib: Vec<_> = images::split_images(&ca, "train")
        .into_iter()
        .take(8)
        .collect();
    let ranges = quantize::calibrate(&info, &w, &calib, Method::Percentile, false).unwrap();
    let int8 = dir.path().join("tiny.int8.onnx");
    onnx::write_model(
        &int8,
        &quantize::int8_model(&info, &w, &quantize::plan(ranges, Default::default())),
    )
    .unwrap();

    let fm = TractModel::load(&fp32, 1).unwrap();
    let qm = TractModel::load(&int8, 1).unwrap();
    let sf = evaluate::evaluate(&fm, &ca, "test", false).unwrap();
    let sq = evaluate::evaluate(&qm, &ca, "test", false).unwrap();
    let (cf, cq) = (sf.category.unwrap(), sq.category.unwrap());
    assert!(cf.images > 0 && cf.images == cq.images);
    assert!((0.0..=1.0).contains(&cf.top1) && (0.0..=1.0).contains(&cq.top1));
    assert!(sf.landmarks.is_some() && sq.attributes.is_some());
    eprintln!(
        "random tiny model, synthetic test split: fp32 top-1 {:.3}, int8 top-1 {:.3}",
        cf.top1, cq.top1
    );

    let inshop = images::load_dataset(&root, "inshop").unwrap();
    let gal = images::split_images(&inshop, "gallery");
    let table = dir.path().join("shop.table");
    let n = gallery::build_table(&qm, &gal, &Default::default(), &table, false).unwrap();
    assert_eq!(n, gal.len());
    let t = ShopTable::open(&table).unwrap();
    gallery::check_table(&t, &qm.info.fingerprint, cfg.embedding_dim).unwrap();
    assert_eq!(t.item(0).id, gal[0].item_id.clone().unwrap());
    let si = evaluate::evaluate(&fm, &inshop, "query", false).unwrap();
    assert!(si.retrieval.is_some());
}
