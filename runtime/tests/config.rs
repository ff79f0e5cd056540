//! The device config: parsing, unknown keys, the atomic engine choice.

use fashion_runtime::config::{write_engine_choice, DeviceConfig, EngineConfig};
use fashion_runtime::sources::SourceSpec;
use std::path::Path;

#[test]
fn parses_a_full_config() {
    let text = r#"
        model = "/opt/m.onnx"
        table = "/opt/t.table"
        source = "v4l:/dev/v4l/by-id/usb-cam-video-index0"
        jsonl = "-"
        frames = 10
        [camera]
        width = 1280
        height = 720
        max_fps = 30
        [engine]
        threads = 2
        [roi]
        centre_scale = 0.8
        [results]
        top_matches = 10
    "#;
    let c = DeviceConfig::from_toml(text, Path::new("d.toml")).unwrap();
    assert_eq!(
        c.source,
        Some(SourceSpec::V4l(
            "/dev/v4l/by-id/usb-cam-video-index0".into()
        ))
    );
    assert_eq!(c.camera.width, 1280);
    assert_eq!(c.engine.threads, 2);
    assert_eq!(c.threads(), 2);
    assert_eq!(c.results.top_matches, 10);
    assert_eq!(c.results.top_categories, 3);
}

#[test]
fn unknown_keys_are_named_with_the_allowed_ones() {
    let e = DeviceConfig::from_toml("modle = \"m.onnx\"\n", Path::new("dev.toml"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("dev.toml") && e.contains("modle"), "{e}");
    assert!(e.contains("`model`") && e.contains("`source`"), "{e}");
    let e = DeviceConfig::from_toml("[engine]\nthreds = 2\n", Path::new("dev.toml"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("threds") && e.contains("`threads`"), "{e}");
    let e = DeviceConfig::from_toml("source = \"rtsp:x\"\n", Path::new("dev.toml"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("rtsp"), "{e}");
    let e = DeviceConfig::from_toml("[results]\ntop_matches = 50\n", Path::new("dev.toml"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("results.top_matches"), "{e}");
}

#[test]
fn engine_choice_is_written_atomically_and_keeps_other_keys() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("device.toml");
    std::fs::write(&p, "source = \"demo\"\n[engine]\nthreads = 1\n").unwrap();
    write_engine_choice(
        &p,
        Path::new("/opt/edge.int8.onnx"),
        EngineConfig {
            threads: 3,
            disable_direct_spatial: true,
        },
    )
    .unwrap();
    let c = DeviceConfig::load(&p).unwrap();
    assert_eq!(c.source, Some(SourceSpec::Demo));
    assert_eq!(c.model.as_deref(), Some(Path::new("/opt/edge.int8.onnx")));
    assert_eq!(c.engine.threads, 3);
    assert!(c.engine.disable_direct_spatial);
    // No temporary files left behind.
    let names: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names.len(), 1, "{names:?}");
    // A broken file is refused, not overwritten.
    std::fs::write(&p, "engine = 3\n").unwrap();
    assert!(write_engine_choice(&p, Path::new("m.onnx"), EngineConfig::default()).is_err());
    assert_eq!(std::fs::read_to_string(&p).unwrap(), "engine = 3\n");
}
