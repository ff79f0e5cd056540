//! The JSON-lines schema of `runtime/OUTPUTS.md`: written by
//! `FrameResult::write_json` / `JsonlSink`, parsed back by serde_json.

use std::sync::Arc;

use deepfashion::contract::{AttributeLabel, CategoryLabel, Labels, LANDMARK_SLOTS};
use deepfashion::preprocess::CropBox;
use fashion_runtime::outputs::jsonl::JsonlSink;
use fashion_runtime::outputs::OwnedNames;
use fashion_runtime::result::{
    FrameResult, LandmarkOut, Match, Names, ShopNameList, StageLatency, Tag,
};
use serde_json::Value;

fn labels() -> Labels {
    Labels {
        categories: ["Blouse", "Tee", "Jeans \"slim\""]
            .iter()
            .enumerate()
            .map(|(i, n)| CategoryLabel {
                name: n.to_string(),
                garment_type: 1 + i as u8 % 3,
            })
            .collect(),
        attributes: ["floral", "striped", "denim"]
            .iter()
            .map(|n| AttributeLabel {
                name: n.to_string(),
                group: "texture".into(),
            })
            .collect(),
    }
}

fn shop() -> ShopNameList {
    ShopNameList {
        ids: vec!["id_00000001".into(), "id_00000002".into()],
        names: vec!["Red blouse".into()],
    }
}

fn sample(frame: u64) -> FrameResult {
    let mut r = FrameResult {
        frame,
        timestamp_ms: 1_764_000_000_123 + frame,
        width: 640,
        height: 480,
        roi: CropBox {
            x0: 80.0,
            y0: 0.0,
            side: 480.0,
        },
        latency: StageLatency {
            capture_us: 1,
            preprocess_us: 2,
            inference_us: 30_000,
            decode_us: 4,
            search_us: 5,
            total_us: 30_012,
        },
        ..Default::default()
    };
    for (i, l) in r.landmarks.iter_mut().enumerate() {
        *l = LandmarkOut {
            x: 100.5 + i as f32,
            y: 200.25,
            visibility: if i % 2 == 0 {
                [0.7, 0.2, 0.1]
            } else {
                [0.1, 0.3, 0.6]
            },
        };
    }
    r.categories
        .push(Tag {
            index: 2,
            score: 0.75,
        })
        .unwrap();
    r.categories
        .push(Tag {
            index: 0,
            score: 0.125,
        })
        .unwrap();
    r.categories
        .push(Tag {
            index: 9,
            score: 0.01,
        })
        .unwrap(); // unknown label
    r.attributes
        .push(Tag {
            index: 1,
            score: 0.5,
        })
        .unwrap();
    r.matches
        .push(Match {
            index: 0,
            score: 0.9,
        })
        .unwrap();
    r.matches
        .push(Match {
            index: 1,
            score: 0.8,
        })
        .unwrap();
    r.matches
        .push(Match {
            index: 7,
            score: 0.1,
        })
        .unwrap();
    r
}

fn approx(v: &Value, want: f64) {
    let got = v.as_f64().unwrap_or_else(|| panic!("not a number: {v}"));
    assert!((got - want).abs() < 1e-6, "{got} != {want}");
}

fn check(v: &Value, r: &FrameResult) {
    assert_eq!(v["ts"], r.timestamp_ms);
    assert_eq!(v["frame"], r.frame);
    assert_eq!(v["width"], 640);
    assert_eq!(v["height"], 480);
    let roi = v["roi"].as_array().unwrap();
    approx(&roi[0], 80.0);
    approx(&roi[1], 0.0);
    approx(&roi[2], 480.0);
    let lms = v["landmarks"].as_array().unwrap();
    assert_eq!(lms.len(), 8);
    for (i, lm) in lms.iter().enumerate() {
        assert_eq!(lm["slot"], LANDMARK_SLOTS[i]);
        approx(&lm["x"], 100.5 + i as f64);
        approx(&lm["y"], 200.25);
        assert_eq!(lm["visible"], i % 2 == 0);
        let p = lm["p"].as_array().unwrap();
        approx(&p[0], r.landmarks[i].visibility[0] as f64);
        approx(&p[2], r.landmarks[i].visibility[2] as f64);
    }
    let cats = v["categories"].as_array().unwrap();
    assert_eq!(cats.len(), 3);
    assert_eq!(cats[0]["name"], "Jeans \"slim\"");
    assert_eq!(cats[0]["index"], 2);
    approx(&cats[0]["score"], 0.75);
    assert_eq!(cats[1]["name"], "Blouse");
    assert!(cats[2]["name"].is_null());
    assert_eq!(v["attributes"][0]["name"], "striped");
    approx(&v["attributes"][0]["score"], 0.5);
    let m = v["matches"].as_array().unwrap();
    assert_eq!(m[0]["id"], "id_00000001");
    assert_eq!(m[0]["name"], "Red blouse");
    approx(&m[0]["score"], 0.9);
    assert_eq!(m[1]["id"], "id_00000002");
    assert!(m[1]["name"].is_null());
    assert!(m[2]["id"].is_null());
    assert_eq!(m[2]["index"], 7);
    let l = &v["latency_us"];
    assert_eq!(l["capture"], 1);
    assert_eq!(l["preprocess"], 2);
    assert_eq!(l["inference"], 30_000);
    assert_eq!(l["decode"], 4);
    assert_eq!(l["search"], 5);
    assert_eq!(l["total"], 30_012);
}

#[test]
fn json_round_trips_through_serde_json() {
    let labels = labels();
    let shop = shop();
    let names = Names::new(&labels, Some(&shop));
    let r = sample(42);
    let mut buf = String::new();
    r.write_json(&names, &mut buf);
    assert!(!buf.contains('\n'));
    let v: Value = serde_json::from_str(&buf).unwrap();
    check(&v, &r);
}

#[test]
fn buffer_is_reused_without_growing_once_warm() {
    let labels = labels();
    let shop = shop();
    let names = Names::new(&labels, Some(&shop));
    let mut buf = String::new();
    sample(1).write_json(&names, &mut buf);
    let (cap, ptr) = (buf.capacity(), buf.as_ptr());
    for n in 2..200 {
        sample(n).write_json(&names, &mut buf);
        assert_eq!(
            (buf.capacity(), buf.as_ptr()),
            (cap, ptr),
            "frame {n} reallocated"
        );
    }
    let v: Value = serde_json::from_str(&buf).unwrap();
    assert_eq!(v["frame"], 199);
}

#[test]
fn default_and_nameless_results_are_valid_json() {
    let mut buf = String::new();
    let mut r = FrameResult::default();
    r.landmarks[0].x = f32::NAN;
    r.write_json(&Names::default(), &mut buf);
    let v: Value = serde_json::from_str(&buf).unwrap();
    assert!(v["landmarks"][0]["x"].is_null());
    assert_eq!(v["categories"].as_array().unwrap().len(), 0);
}

#[test]
fn jsonl_file_holds_one_object_per_line_and_appends() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("out.jsonl");
    let names = OwnedNames {
        labels: Some(Arc::new(labels())),
        shop: Some(Arc::new(shop())),
    };
    for round in 0..2u64 {
        let mut sink = JsonlSink::append_to(&path).unwrap();
        for n in 1..=3 {
            sink.write(&sample(round * 10 + n), &names.view()).unwrap();
        }
        sink.finish().unwrap();
    }
    let text = std::fs::read_to_string(&path).unwrap();
    let frames: Vec<u64> = text
        .lines()
        .map(|l| {
            let v: Value = serde_json::from_str(l).unwrap();
            check(&v, &sample(v["frame"].as_u64().unwrap()));
            v["frame"].as_u64().unwrap()
        })
        .collect();
    assert_eq!(frames, [1, 2, 3, 11, 12, 13]);
    assert!(text.ends_with('\n'));
}

/// A `Write` into a shared buffer, to look at what a sink wrote.
#[derive(Clone, Default)]
struct SharedBuf(Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for SharedBuf {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn outputs_fan_one_frame_out_to_jsonl_folder_and_preview() {
    use fashion_runtime::outputs::folder::FrameFolderSink;
    use fashion_runtime::outputs::http::{HttpConfig, PreviewServer};
    use fashion_runtime::outputs::Outputs;
    use std::io::{Read, Write};

    let names = OwnedNames {
        labels: Some(Arc::new(labels())),
        shop: Some(Arc::new(shop())),
    };
    let dir = tempfile::tempdir().unwrap();
    let buf = SharedBuf::default();
    let cfg = HttpConfig {
        addr: "127.0.0.1:0".parse().unwrap(),
        ..HttpConfig::default()
    };
    let server = PreviewServer::start(&cfg, names.clone()).unwrap();
    let addr = server.local_addr();
    let mut outputs = Outputs::new(names)
        .with_jsonl(JsonlSink::from_writer(
            Box::new(buf.clone()),
            "buffer".into(),
        ))
        .with_folder(FrameFolderSink::create(dir.path(), None).unwrap())
        .with_preview(server, 1000.0, 80);
    let rgb = vec![128u8; 640 * 480 * 3];
    for n in 1..=3 {
        // The preview takes at most 120 frames a second (`with_preview`
        // clamps the rate): wait longer than that between frames, so that
        // each one reaches it whatever the speed of the machine.
        std::thread::sleep(std::time::Duration::from_millis(20));
        outputs.emit(&rgb, &sample(n)).unwrap();
    }
    // A frame buffer of the wrong size is an error, not a panic.
    assert!(outputs.emit(&rgb[1..], &sample(4)).is_err());
    let text = String::from_utf8(buf.0.lock().unwrap().clone()).unwrap();
    assert_eq!(text.lines().count(), 4);
    for n in 1..=3 {
        let jpeg = std::fs::read(dir.path().join(format!("frame_{n:06}.jpg"))).unwrap();
        assert_eq!(&jpeg[..2], &[0xFF, 0xD8]);
    }
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.write_all(b"GET /state.json HTTP/1.1\r\n\r\n").unwrap();
    let mut resp = String::new();
    s.read_to_string(&mut resp).unwrap();
    let body = resp.split("\r\n\r\n").nth(1).unwrap();
    let v: Value = serde_json::from_str(body).unwrap();
    assert_eq!(v["result"]["frame"], 3);
    assert_eq!(v["camera"], "ok");
    outputs
        .finish(std::time::Duration::from_millis(100))
        .unwrap();
}
