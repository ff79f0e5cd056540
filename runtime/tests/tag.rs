//! The frame loop end to end on files: MJPEG streams with corrupt and
//! truncated frames, image folders, results equal to tract on the same
//! crops, reloads (refused when the new model is bad), and the binary's
//! JSON lines, config errors and SIGTERM handling.

mod common;

use common::{demo_jpeg, TestModel};
use fashion_runtime::config::{ResultsConfig, RoiConfig};
use fashion_runtime::engine::EngineOptions;
use fashion_runtime::pipeline::roi_for;
use fashion_runtime::result::{FrameResult, Names};
use fashion_runtime::signals::Signals;
use fashion_runtime::sources::{self, reopen, Frame, FrameSource, SourceSpec};
use fashion_runtime::tag::{self, FrameSink, TagOptions};
use std::path::Path;
use std::time::Duration;

/// Collects results and the frames they came from.
#[derive(Default)]
struct Collect {
    results: Vec<FrameResult>,
    frames: Vec<Frame>,
    finished: bool,
    /// Called after each frame (index): lets a test act mid-run.
    hook: Option<Box<dyn FnMut(usize)>>,
}

impl FrameSink for Collect {
    fn frame(
        &mut self,
        frame: &Frame,
        result: &FrameResult,
        _names: &Names<'_>,
    ) -> anyhow::Result<()> {
        self.results.push(result.clone());
        self.frames.push(frame.clone());
        if let Some(h) = self.hook.as_mut() {
            h(self.results.len());
        }
        Ok(())
    }
    fn finish(&mut self) -> anyhow::Result<()> {
        self.finished = true;
        Ok(())
    }
}

fn options(model: &Path) -> TagOptions {
    TagOptions {
        model: model.to_path_buf(),
        table: None,
        engine: EngineOptions::default(),
        roi: RoiConfig::default(),
        results: ResultsConfig::default(),
        frames: None,
        watch_files: false,
        stats_interval: Duration::from_secs(3600),
    }
}

fn run(
    opts: &TagOptions,
    spec: &SourceSpec,
    sink: &mut Collect,
    signals: &Signals,
) -> tag::TagSummary {
    let state = reopen::shared_state();
    let mut src: Box<dyn FrameSource> = sources::open(
        spec,
        Default::default(),
        state.clone(),
        signals.terminate.clone(),
    )
    .unwrap();
    tag::run(opts, src.as_mut(), &state, signals, sink).unwrap()
}

/// An MJPEG stream: 3 good frames, a corrupt JPEG (valid markers, broken
/// data), 2 good frames, then a truncated frame.
fn mjpeg_stream() -> Vec<u8> {
    let mut s = Vec::new();
    for t in 0..3 {
        s.extend(demo_jpeg(160, 120, t * 5));
    }
    // Markers fine, SOF claims an impossible component count.
    s.extend([
        0xFF, 0xD8, 0xFF, 0xC0, 0x00, 0x0B, 0x08, 0x00, 0x10, 0x00, 0x10, 0x09, 0x01, 0x11, 0x00,
        0xFF, 0xD9,
    ]);
    for t in 3..5 {
        s.extend(demo_jpeg(200, 100, t * 5));
    }
    let last = demo_jpeg(160, 120, 99);
    s.extend(&last[..last.len() / 2]);
    s
}

/// Reference: plain tract on the same crop as the pipeline.
fn reference(model: &Path, frame: &Frame) -> Vec<Vec<f32>> {
    let plan = common::plain_plan(model);
    let s = 64;
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
    common::plain_run(&plan, &input, s)
}

#[test]
fn mjpeg_file_with_corrupt_and_truncated_frames() {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("m.onnx");
    TestModel::small(11).write(&model);
    let stream = dir.path().join("cam.mjpeg");
    std::fs::write(&stream, mjpeg_stream()).unwrap();
    let mut sink = Collect::default();
    let summary = run(
        &options(&model),
        &SourceSpec::MjpegFile(stream),
        &mut sink,
        &Signals::unregistered(),
    );
    assert_eq!(summary.frames, 5);
    assert_eq!(summary.corrupt, 2, "one bad JPEG, one truncated tail");
    assert!(sink.finished && !summary.terminated);

    for (r, f) in sink.results.iter().zip(&sink.frames) {
        assert_eq!((r.width, r.height), (f.width, f.height));
        let want = reference(&model, f);
        let crop = roi_for(&RoiConfig::default(), f.width, f.height);
        assert_eq!(r.roi, crop);
        for (i, lm) in r.landmarks.iter().enumerate() {
            let (x, y) = crop.to_pixels(want[0][2 * i], want[0][2 * i + 1]);
            assert!(
                (lm.x - x).abs() < 1e-3 && (lm.y - y).abs() < 1e-3,
                "landmark {i}"
            );
            for c in 0..3 {
                assert!((lm.visibility[c] - want[1][3 * i + c]).abs() < 1e-4);
            }
        }
        let mut cats: Vec<(usize, f32)> = want[2].iter().copied().enumerate().collect();
        cats.sort_by(|a, b| b.1.total_cmp(&a.1));
        let got: Vec<u16> = r.categories.iter().map(|t| t.index).collect();
        let expect: Vec<u16> = cats[..3].iter().map(|c| c.0 as u16).collect();
        assert_eq!(got, expect);
        for t in &r.categories {
            assert!((t.score - want[2][t.index as usize]).abs() < 1e-5);
        }
        assert_eq!(r.attributes.len(), 5);
        assert!(r.matches.is_empty());
        assert!(r.latency.total_us >= r.latency.inference_us);
    }
    // Frames change, so results do too.
    assert_ne!(sink.results[0].landmarks, sink.results[4].landmarks);
}

#[test]
fn image_folder_skips_bad_files_and_frames_limit() {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("m.onnx");
    TestModel::small(12).write(&model);
    let imgs = dir.path().join("imgs");
    std::fs::create_dir(&imgs).unwrap();
    std::fs::write(imgs.join("a.jpg"), demo_jpeg(96, 96, 1)).unwrap();
    std::fs::write(imgs.join("b.jpg"), b"\xff\xd8\xff\xe0 not really").unwrap();
    let mut png = Vec::new();
    let mut f = Frame::default();
    sources::demo::draw(&mut f, 50, 70, 3);
    image::ImageEncoder::write_image(
        image::codecs::png::PngEncoder::new(&mut png),
        f.pixels(),
        50,
        70,
        image::ExtendedColorType::Rgb8,
    )
    .unwrap();
    std::fs::write(imgs.join("c.png"), png).unwrap();
    std::fs::write(imgs.join("notes.txt"), b"ignored").unwrap();
    let mut sink = Collect::default();
    let s = run(
        &options(&model),
        &SourceSpec::Images(imgs.clone()),
        &mut sink,
        &Signals::unregistered(),
    );
    assert_eq!((s.frames, s.corrupt), (2, 1));
    assert_eq!((sink.results[1].width, sink.results[1].height), (50, 70));
    assert_eq!(
        sink.frames[1].pixels(),
        f.pixels(),
        "PNG decoded losslessly"
    );

    let mut opts = options(&model);
    opts.frames = Some(1);
    let mut sink = Collect::default();
    let s = run(
        &opts,
        &SourceSpec::Images(imgs),
        &mut sink,
        &Signals::unregistered(),
    );
    assert_eq!(s.frames, 1);
}

#[test]
fn reload_swaps_a_good_model_and_refuses_a_bad_one() {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("m.onnx");
    TestModel::small(20).write(&model);
    let signals = Signals::unregistered();
    let reload = signals.reload.clone();
    let terminate = signals.terminate.clone();
    let m2 = model.clone();
    let mut sink = Collect {
        hook: Some(Box::new(move |n| {
            match n {
                // Replace with a model lacking outputs: refused.
                3 => {
                    let mut bad = TestModel::small(21);
                    bad.drop_outputs = vec!["embedding"];
                    write_atomically(&bad.encode(), &m2);
                    reload.store(true, std::sync::atomic::Ordering::SeqCst);
                }
                // Replace with another good model: swapped in.
                6 => {
                    write_atomically(&TestModel::small(22).encode(), &m2);
                    reload.store(true, std::sync::atomic::Ordering::SeqCst);
                }
                9 => terminate.store(true, std::sync::atomic::Ordering::SeqCst),
                _ => {}
            }
        })),
        ..Default::default()
    };
    let s = run(&options(&model), &SourceSpec::Demo, &mut sink, &signals);
    assert!(s.terminated);
    assert_eq!(s.frames, 9);
    assert_eq!(s.reloads, 1);
    assert!(sink.finished);
    // Frames 4..6 still ran the first model; 7.. the third. Same input
    // rendering differs per frame, so compare against plain tract.
    let first = dir.path().join("first.onnx");
    TestModel::small(20).write(&first);
    let third = dir.path().join("third.onnx");
    TestModel::small(22).write(&third);
    for (i, want_model) in [(4usize, &first), (8, &third)] {
        let want = reference(want_model, &sink.frames[i]);
        let r = &sink.results[i];
        assert!(
            (r.categories[0].score - want[2][r.categories[0].index as usize]).abs() < 1e-5,
            "frame {i}"
        );
    }
}

fn write_atomically(bytes: &[u8], path: &Path) {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, bytes).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

#[test]
fn binary_writes_json_lines_and_refuses_bad_input() {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("m.onnx");
    TestModel::small(30).write(&model);
    let stream = dir.path().join("cam.mjpeg");
    std::fs::write(&stream, mjpeg_stream()).unwrap();
    let out = common::runtime_command()
        .args(["tag", "--model"])
        .arg(&model)
        .arg("--source")
        .arg(format!("mjpeg:{}", stream.display()))
        .args(["--jsonl", "-"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<serde_json::Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 5);
    let l = &lines[0];
    assert_eq!(l["landmarks"].as_array().unwrap().len(), 8);
    assert_eq!(l["landmarks"][0]["slot"], "left_collar");
    assert!(l["categories"][0]["name"]
        .as_str()
        .unwrap()
        .starts_with("cat"));
    assert_eq!(l["width"], 160);

    // Config with an unknown key: refused, naming it; no panic.
    let cfg = dir.path().join("dev.toml");
    std::fs::write(&cfg, "source = \"demo\"\nthreads = 2\n").unwrap();
    let out = common::runtime_command()
        .args(["tag", "--model"])
        .arg(&model)
        .arg("--config")
        .arg(&cfg)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("unknown field `threads`") && err.contains("dev.toml"),
        "{err}"
    );
    assert!(!err.contains("panicked"), "{err}");

    // A model without the expected outputs.
    let mut bad = TestModel::small(31);
    bad.drop_outputs = vec!["landmarks"];
    let badp = dir.path().join("bad.onnx");
    bad.write(&badp);
    let out = common::runtime_command()
        .args(["info", "--model"])
        .arg(&badp)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("missing output(s) `landmarks`"), "{err}");

    // info --json on a good model.
    let out = common::runtime_command()
        .args(["info", "--json", "--model"])
        .arg(&model)
        .output()
        .unwrap();
    assert!(out.status.success());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        v["model"]["fingerprint"],
        TestModel::small(30).fingerprint()
    );
    assert_eq!(v["model"]["graph_form"], "fp32");
}

#[test]
fn default_tags_the_demo_clip_with_the_demo_model_and_table() {
    // No --model, no --source: the shipped demo assets (no camera here, or
    // the test would be reading it: skip when /dev/video0 exists).
    if std::path::Path::new("/dev/video0").exists() {
        eprintln!("SKIP: /dev/video0 exists, the default source would be the camera");
        return;
    }
    let out = common::runtime_command()
        .args(["tag", "--frames", "3", "--jsonl", "-"])
        .env(
            "FASHION_DEMO_DIR",
            concat!(env!("CARGO_MANIFEST_DIR"), "/../assets/demo"),
        )
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("demo model"), "{stderr}");
    let lines: Vec<serde_json::Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 3);
    for l in &lines {
        // The clip's frames are 160 x 160; the demo table holds In-shop
        // items, so every frame has matches with item ids.
        assert_eq!(l["width"], 160);
        assert!(!l["categories"][0]["name"].as_str().unwrap().is_empty());
        let m = l["matches"].as_array().expect("matches");
        assert!(!m.is_empty(), "{l}");
        assert!(m[0]["id"].as_str().unwrap().starts_with("id_"), "{l}");
    }
}

#[test]
fn sigterm_flushes_and_exits_zero() {
    use std::io::Read;
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("m.onnx");
    TestModel::small(40).write(&model);
    let out_path = dir.path().join("out.jsonl");
    let mut child = common::runtime_command()
        .args(["tag", "--source", "demo", "--model"])
        .arg(&model)
        .arg("--jsonl")
        .arg(&out_path)
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Wait until the loop runs (its "tagging" log line), then a little.
    let start = std::time::Instant::now();
    let mut stderr = child.stderr.take().unwrap();
    let mut seen = String::new();
    let mut buf = [0u8; 256];
    while !seen.contains("tagging") && start.elapsed() < Duration::from_secs(60) {
        let n = stderr.read(&mut buf).unwrap();
        if n == 0 {
            break;
        }
        seen.push_str(&String::from_utf8_lossy(&buf[..n]));
    }
    std::thread::sleep(Duration::from_millis(800));
    let pid = child.id() as i32;
    // SAFETY: sending a signal to our own child process.
    unsafe { libc_kill(pid, 15) };
    let status = child.wait().unwrap();
    let mut rest = String::new();
    let _ = stderr.read_to_string(&mut rest);
    assert!(status.success(), "exit {status:?}: {seen}{rest}");
    let text = std::fs::read_to_string(&out_path).unwrap();
    let n = text.lines().count();
    assert!(n > 0, "no lines flushed");
    for l in text.lines() {
        serde_json::from_str::<serde_json::Value>(l).expect("every line is complete JSON");
    }
    assert!(text.ends_with('\n'));
}

extern "C" {
    #[link_name = "kill"]
    fn libc_kill(pid: i32, sig: i32) -> i32;
}
