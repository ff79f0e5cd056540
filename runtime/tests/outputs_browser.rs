//! The preview page in headless Chromium shows the live image (it changes
//! when a new frame is published) and the current tags.
//!
//! Needs `chromium` (installed by `cargo xtask setup`). Without it the test
//! prints a skip notice, or fails when `FASHION_REQUIRE_SERVICES=1`.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use deepfashion::contract::{AttributeLabel, CategoryLabel, Labels};
use fashion_runtime::outputs::annotate::Annotator;
use fashion_runtime::outputs::http::{HttpConfig, PreviewServer};
use fashion_runtime::outputs::OwnedNames;
use fashion_runtime::result::{FrameResult, Match, ShopNameList, Tag};

const TOKEN: &str = "browser-test-token-0123";

/// Find `names[..]` on PATH; a missing binary skips the test, or fails it
/// when `FASHION_REQUIRE_SERVICES=1`.
fn find_binary(names: &[&str]) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    for dir in std::env::split_paths(&path) {
        for n in names {
            let p = dir.join(n);
            if p.is_file() {
                return Some(p);
            }
        }
    }
    let msg = format!("none of {names:?} found on PATH (install with `cargo xtask setup`)");
    if std::env::var("FASHION_REQUIRE_SERVICES").as_deref() == Ok("1") {
        panic!("{msg}; FASHION_REQUIRE_SERVICES=1 requires it");
    }
    eprintln!("SKIPPED: {msg}");
    None
}

fn run_chromium(bin: &Path, profile: &Path, args: &[String], url: &str) -> Vec<u8> {
    let mut child = Command::new(bin)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-extensions",
            "--hide-scrollbars",
            "--window-size=800,600",
            "--virtual-time-budget=4000",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(args)
        .arg(url)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start chromium");
    let mut stdout = child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut out = Vec::new();
        let _ = std::io::Read::read_to_end(&mut stdout, &mut out);
        out
    });
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        if child.try_wait().unwrap().is_some() {
            break;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("chromium did not finish within 90 s");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    reader.join().unwrap()
}

fn publish(server: &PreviewServer, n: u64, color: [u8; 3], category: u16) {
    let (w, h) = (320u32, 240u32);
    let rgb: Vec<u8> = color
        .iter()
        .copied()
        .cycle()
        .take((w * h * 3) as usize)
        .collect();
    let mut r = FrameResult {
        frame: n,
        width: w,
        height: h,
        ..Default::default()
    };
    r.roi.x0 = 40.0;
    r.roi.side = 240.0;
    for (i, l) in r.landmarks.iter_mut().enumerate() {
        l.x = 200.0 + 10.0 * (i % 2) as f32;
        l.y = 40.0 + 20.0 * i as f32;
        l.visibility = [0.9, 0.05, 0.05];
    }
    r.categories
        .push(Tag {
            index: category,
            score: 0.875,
        })
        .unwrap();
    r.attributes
        .push(Tag {
            index: category,
            score: 0.5,
        })
        .unwrap();
    r.matches
        .push(Match {
            index: category as u32,
            score: 0.75,
        })
        .unwrap();
    let mut a = Annotator::new(95);
    let mut jpeg = a.annotate_jpeg(&rgb, w, h, &r).unwrap().to_vec();
    server.publish(&mut jpeg, &r);
}

/// Mean colour of a 20x20 patch around (60, 120) of the screenshot: inside
/// the image, away from the drawn landmarks and ROI.
fn patch_colour(png: &[u8]) -> [f32; 3] {
    let img = image::load_from_memory(png)
        .expect("screenshot is a PNG")
        .to_rgb8();
    let mut sum = [0f32; 3];
    for y in 110..130 {
        for x in 10..30 {
            let p = img.get_pixel(x, y);
            for c in 0..3 {
                sum[c] += p[c] as f32 / 400.0;
            }
        }
    }
    sum
}

fn close(a: [f32; 3], b: [u8; 3]) -> bool {
    a.iter().zip(b).all(|(x, y)| (x - y as f32).abs() < 25.0)
}

#[test]
fn preview_page_in_headless_chromium_shows_live_image_and_tags() {
    let Some(chromium) = find_binary(&["chromium", "chromium-browser", "google-chrome"]) else {
        return;
    };
    let names = OwnedNames {
        labels: Some(Arc::new(Labels {
            categories: vec![
                CategoryLabel {
                    name: "Anorak".into(),
                    garment_type: 1,
                },
                CategoryLabel {
                    name: "Culottes".into(),
                    garment_type: 2,
                },
            ],
            attributes: vec![
                AttributeLabel {
                    name: "quilted".into(),
                    group: "texture".into(),
                },
                AttributeLabel {
                    name: "pleated".into(),
                    group: "shape".into(),
                },
            ],
        })),
        shop: Some(Arc::new(ShopNameList {
            ids: vec!["id_00000007".into(), "id_00000008".into()],
            names: vec!["Green anorak".into(), "Blue culottes".into()],
        })),
    };
    let cfg = HttpConfig {
        addr: "127.0.0.1:0".parse().unwrap(),
        token: Some(TOKEN.into()),
        ..HttpConfig::default()
    };
    let server = PreviewServer::start(&cfg, names).unwrap();
    let url = format!("http://{}/?token={TOKEN}", server.local_addr());
    let tmp = tempfile::tempdir().unwrap();
    let mut shots = Vec::new();
    for (step, (colour, category, tags)) in [
        ([30u8, 170, 60], 0u16, ["Anorak", "quilted", "Green anorak"]),
        (
            [40u8, 60, 200],
            1u16,
            ["Culottes", "pleated", "Blue culottes"],
        ),
    ]
    .into_iter()
    .enumerate()
    {
        let seq = step as u64 + 1;
        publish(&server, 100 + seq, colour, category);
        let dom = run_chromium(
            &chromium,
            &tmp.path().join(format!("p{step}")),
            &["--dump-dom".into()],
            &url,
        );
        let dom = String::from_utf8_lossy(&dom);
        for t in tags {
            assert!(dom.contains(t), "step {step}: `{t}` not in the DOM:\n{dom}");
        }
        assert!(
            dom.contains(&format!("data-seq=\"{seq}\"")),
            "step {step}: image {seq} not loaded:\n{dom}"
        );
        assert!(dom.contains(">ok<"), "camera status not shown:\n{dom}");
        let shot = tmp.path().join(format!("shot{step}.png"));
        run_chromium(
            &chromium,
            &tmp.path().join(format!("s{step}")),
            &[format!("--screenshot={}", shot.display())],
            &url,
        );
        let png = std::fs::read(&shot).expect("chromium wrote no screenshot");
        let c = patch_colour(&png);
        assert!(
            close(c, colour),
            "step {step}: image shows {c:?}, expected {colour:?}"
        );
        shots.push(c);
    }
    assert!(!close(shots[0], [40, 60, 200]), "image did not change");
    server.shutdown();
}
