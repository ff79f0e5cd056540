//! With a real exported model (the `export` crate's graph of a random
//! `tiny` checkpoint) and a real shop table: the runtime's landmarks,
//! categories and matches equal those of plain tract + the table's own
//! search on the same crops; a table from another model is refused.

mod common;

use common::demo_jpeg;
use deepfashion::contract::ModelConfig;
use fashion_runtime::config::{ResultsConfig, RoiConfig};
use fashion_runtime::engine::{Engine, EngineOptions};
use fashion_runtime::pipeline::{roi_for, Pipeline};
use fashion_runtime::result::FrameResult;
use fashion_runtime::sources::{images::ImageSource, Frame, FrameSource, FrameStatus};
use fashion_runtime::table::Table;
use std::path::Path;
use std::sync::Arc;

fn export_model(dir: &Path, seed: u64) -> std::path::PathBuf {
    let cfg = ModelConfig::tiny();
    let labels = export::checkpoint::placeholder_labels(&cfg);
    let ck = dir.join(format!("ck{seed}.safetensors"));
    export::checkpoint::write_random(&cfg, &labels, seed, &ck).unwrap();
    let ck = export::checkpoint::load(&ck).unwrap();
    let model = dir.join(format!("tiny{seed}.onnx"));
    export::onnx::write_model(&model, &export::onnx::from_checkpoint(&ck)).unwrap();
    model
}

#[test]
fn exported_model_and_table_match_tract_and_table_search() {
    let dir = tempfile::tempdir().unwrap();
    let model = export_model(dir.path(), 1);
    let engine = Engine::load(&model, EngineOptions::default()).unwrap();
    let info = engine.info().clone();
    assert_eq!(info.config, ModelConfig::tiny());
    let table_path = dir.path().join("shop.table");
    export::gallery::write_random_table(
        &info.fingerprint,
        info.config.embedding_dim,
        500,
        3,
        &table_path,
    )
    .unwrap();
    let table = Arc::new(Table::open(&table_path).unwrap());
    let results = ResultsConfig {
        top_categories: 5,
        top_attributes: 10,
        top_matches: 10,
    };
    let mut pipeline =
        Pipeline::new(engine, Some(table.clone()), RoiConfig::default(), results).unwrap();

    let imgs = dir.path().join("imgs");
    std::fs::create_dir(&imgs).unwrap();
    for t in 0..3u64 {
        std::fs::write(
            imgs.join(format!("{t}.jpg")),
            demo_jpeg(200 + 20 * t as u32, 150, t * 7),
        )
        .unwrap();
    }
    let plain = common::plain_plan(&model);
    let s = info.config.input_size;
    let mut src = ImageSource::open(&imgs).unwrap();
    let mut frame = Frame::default();
    let mut out = FrameResult::default();
    let mut n = 0;
    while src.next_frame(&mut frame).unwrap() == FrameStatus::Frame {
        n += 1;
        pipeline.process(&frame, 0, &mut out).unwrap();
        let crop = roi_for(&RoiConfig::default(), frame.width, frame.height);
        let mut input = vec![0.0f32; 3 * s * s];
        deepfashion::preprocess::crop_resize_normalize(
            frame.pixels(),
            frame.width,
            frame.height,
            crop,
            s,
            false,
            &mut input,
        );
        let want = common::plain_run(&plain, &input, s);
        for (i, lm) in out.landmarks.iter().enumerate() {
            let (x, y) = crop.to_pixels(want[0][2 * i], want[0][2 * i + 1]);
            assert!(
                (lm.x - x).abs() < 1e-2 && (lm.y - y).abs() < 1e-2,
                "landmark {i}: {} vs {x}",
                lm.x
            );
        }
        let mut cats: Vec<(usize, f32)> = want[2].iter().copied().enumerate().collect();
        cats.sort_by(|a, b| b.1.total_cmp(&a.1));
        for (t, c) in out.categories.iter().zip(&cats) {
            assert!(
                (t.score - c.1).abs() < 1e-4,
                "category score {} vs {}",
                t.score,
                c.1
            );
        }
        // Matches: the table's own search with tract's embedding.
        let expect = table.inner().search(&want[4], 10);
        assert_eq!(out.matches.len(), 10);
        for (m, e) in out.matches.iter().zip(&expect) {
            assert!((m.score - e.score).abs() < 1e-3, "{m:?} vs {e:?}");
        }
        let same = out
            .matches
            .iter()
            .zip(&expect)
            .filter(|(m, e)| m.index == e.index)
            .count();
        assert!(
            same >= 9,
            "match indices differ: {:?} vs {:?}",
            out.matches,
            expect
        );
    }
    assert_eq!(n, 3);

    // A table built for another model is refused, naming both files.
    let other = export_model(dir.path(), 2);
    let e = Engine::load(&other, EngineOptions::default()).unwrap();
    let err = Pipeline::new(e, Some(table), RoiConfig::default(), results)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("shop.table") && err.contains("tiny2.onnx"),
        "{err}"
    );
    let out = common::runtime_command()
        .args(["info", "--model"])
        .arg(&other)
        .arg("--table")
        .arg(&table_path)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("rebuild the table"), "{stderr}");
}
