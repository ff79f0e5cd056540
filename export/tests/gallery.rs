//! Building a shop table from catalogue images and checking it against the
//! model that made it.

mod common;

use export::gallery;
use export::images;
use export::infer::TractModel;
use export::onnx;
use export::shop_table::ShopTable;

#[test]
fn gallery_from_folder_writes_a_table_bound_to_the_model() {
    let dir = tempfile::tempdir().unwrap();
    let (_, ck) = common::tiny_checkpoint(dir.path(), 11);
    let model_path = dir.path().join("tiny.onnx");
    onnx::write_model(&model_path, &onnx::from_checkpoint(&ck)).unwrap();
    let cat = dir.path().join("catalogue");
    std::fs::create_dir_all(cat.join("shirts")).unwrap();
    for i in 0..5u8 {
        let img = image::RgbImage::from_fn(64 + 8 * i as u32, 80, |x, y| {
            image::Rgb([(x * 3) as u8 ^ (i * 40), (y * 2) as u8, 100 + i * 20])
        });
        img.save(cat.join("shirts").join(format!("s{i}.png")))
            .unwrap();
    }
    let csv = dir.path().join("items.csv");
    std::fs::write(
        &csv,
        "id,name,price,url\nshirts/s1,\"Blue, shirt\",19.99 EUR,https://x/1\n",
    )
    .unwrap();
    let meta = gallery::read_items_csv(&csv).unwrap();
    let imgs = images::folder_images(&cat).unwrap();
    assert_eq!(imgs.len(), 5);
    let tm = TractModel::load(&model_path, 1).unwrap();
    let out = dir.path().join("shop.table");
    assert_eq!(
        gallery::build_table(&tm, &imgs, &meta, &out, false).unwrap(),
        5
    );
    let t = ShopTable::open(&out).unwrap();
    assert_eq!(t.len(), 5);
    assert_eq!(t.dim(), ck.config.embedding_dim);
    assert_eq!(t.fingerprint(), ck.fingerprint());
    gallery::check_table(&t, &ck.fingerprint(), ck.config.embedding_dim).unwrap();
    let s1 = t.item(1);
    assert_eq!(s1.id, "shirts/s1");
    assert_eq!(s1.name, Some("Blue, shirt"));
    assert_eq!(s1.price, Some("19.99 EUR"));
    assert_eq!(t.item(0).name, None);
    // Each catalogue image finds itself first.
    let s = ck.config.input_size;
    let mut buf = vec![0f32; 3 * s * s];
    for (i, img) in imgs.iter().enumerate() {
        images::preprocess(img, s, 0.1, &mut buf).unwrap();
        let e = tm.predict(&buf).unwrap().embedding;
        assert_eq!(t.search(&e, 1)[0].index as usize, i);
    }
    // A table from another model is refused.
    let (_, other) = common::tiny_checkpoint(dir.path(), 12);
    let e = gallery::check_table(&t, &other.fingerprint(), other.config.embedding_dim).unwrap_err();
    assert!(e.to_string().contains("rebuild"), "{e}");
    // An unreadable catalogue image is named and the old table survives.
    std::fs::write(cat.join("shirts/zz.jpg"), b"garbage").unwrap();
    let imgs = images::folder_images(&cat).unwrap();
    let e = gallery::build_table(&tm, &imgs, &meta, &out, false).unwrap_err();
    assert!(e.to_string().contains("zz.jpg"), "{e}");
    assert_eq!(ShopTable::open(&out).unwrap().len(), 5);
}

#[test]
fn items_csv_errors_name_the_line() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("items.csv");
    std::fs::write(&p, "id,name\na,b\nc\n").unwrap();
    let e = gallery::read_items_csv(&p).unwrap_err().to_string();
    assert!(e.contains("items.csv:3"), "{e}");
    std::fs::write(&p, "name,price\na,b\n").unwrap();
    assert!(gallery::read_items_csv(&p)
        .unwrap_err()
        .to_string()
        .contains("no `id` column"));
}
