//! `deepfashion inspect` and `deepfashion score` as a user runs them.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/DeepFashion")
}

fn run(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_deepfashion"))
        .args(args)
        .env("RUST_LOG", "error")
        .output()
        .unwrap()
}

fn json(out: &Output) -> serde_json::Value {
    assert!(
        out.status.success(),
        "failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn inspect_json_counts() {
    let root = fixtures();
    let r = root.to_str().unwrap();
    let v = json(&run(&[
        "inspect",
        "--root",
        r,
        "--benchmark",
        "category-attribute",
        "--json",
    ]));
    assert_eq!(v["benchmark"], "category-attribute");
    assert_eq!(v["images"], 8);
    assert_eq!(v["splits"]["train"], 3);
    assert_eq!(v["splits"]["test"], 3);
    assert_eq!(v["categories"]["Blouse"], 3);
    assert_eq!(v["categories"]["Jumpsuit"], 1);
    assert_eq!(v["attributes"]["count"], 6);
    // counted by hand from list_attr_img.txt:
    // attr2 (texture) positives: img2, img7 -> 2; attr4 (texture): img4, img7 -> 2
    assert_eq!(v["attributes"]["positives_by_group"]["texture"], 4);
    // attr3 cotton (fabric): img1, img3, img5, img6 -> 4
    assert_eq!(v["attributes"]["positives_by_group"]["fabric"], 4);
    // 8 images x 8 slots = 64; absent: 4 upper x2 + 2 lower x4 = 8 + 8 = 16
    let l = &v["landmarks"];
    assert_eq!(l["absent"], 16);
    assert_eq!(l["truncated"], 2);
    assert_eq!(l["occluded"], 4);
    assert_eq!(l["visible"], 64 - 16 - 2 - 4);
    assert!(v.get("items").is_none());

    let v = json(&run(&[
        "inspect",
        "--root",
        r,
        "--benchmark",
        "inshop",
        "--json",
    ]));
    assert_eq!(v["items"], 5);
    assert_eq!(v["splits"]["gallery"], 4);
    assert!(v.get("categories").is_none());

    let out = run(&["inspect", "--root", r, "--benchmark", "consumer2shop"]);
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("images: 11") && text.contains("items: 4"),
        "{text}"
    );
}

#[test]
fn score_json_and_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let root = fixtures();
    let r = root.to_str().unwrap();
    // Perfect category predictions on the C&A test split: one-hot truth.
    let truth = [
        ("img/Pleated_A-Line_Skirt/img_00000006.jpg", 3),
        ("img/Boho_Jumpsuit/img_00000007.jpg", 5),
        ("img/Sheer_Pleated-Front_Blouse/img_00000008.jpg", 1),
    ];
    let mut lines = String::new();
    for (img, c) in truth {
        let mut s = vec![0.0f32; 6];
        s[c] = 1.0;
        lines += &serde_json::json!({"image": img, "category": s}).to_string();
        lines.push('\n');
    }
    let p = tmp.path().join("p.jsonl");
    std::fs::write(&p, &lines).unwrap();
    let ps = p.to_str().unwrap();
    let args = [
        "score",
        "--root",
        r,
        "--benchmark",
        "category-attribute",
        "--split",
        "test",
        "--predictions",
        ps,
    ];
    let v = json(&run(&[&args[..], &["--json"]].concat()));
    assert_eq!(v["category"]["top1"], 1.0);
    assert_eq!(v["category"]["top5"], 1.0);
    assert!(v.get("attributes").is_none());
    let out = run(&args);
    assert!(String::from_utf8_lossy(&out.stdout).contains("top-1 100.00%"));

    // unknown image on line 2
    std::fs::write(&p, lines.replacen("img_00000007", "img_00000099", 1)).unwrap();
    let out = run(&args);
    assert!(!out.status.success());
    let e = String::from_utf8_lossy(&out.stderr);
    assert!(e.contains("line 2") && e.contains("unknown image"), "{e}");

    // wrong vector length on line 3
    let bad = lines.replacen("[0.0,1.0,0.0,0.0,0.0,0.0]", "[0.0,1.0]", 1);
    std::fs::write(&p, bad).unwrap();
    let e = String::from_utf8_lossy(&run(&args).stderr).to_string();
    assert!(
        e.contains("line 3") && e.contains("`category` has 2 values, expected 6"),
        "{e}"
    );

    // not JSON on line 1
    std::fs::write(&p, "{\"image\": 3\n").unwrap();
    let e = String::from_utf8_lossy(&run(&args).stderr).to_string();
    assert!(e.contains("p.jsonl:1:"), "{e}");

    // missing image of the split (strict) vs --partial
    let two: String = lines.lines().take(2).map(|l| format!("{l}\n")).collect();
    std::fs::write(&p, two).unwrap();
    let e = String::from_utf8_lossy(&run(&args).stderr).to_string();
    assert!(
        e.contains("1 images of split `test` have no `category`"),
        "{e}"
    );
    let v = json(&run(&[&args[..], &["--json", "--partial"]].concat()));
    assert_eq!(v["category"]["images"], 2);
}

#[test]
fn malformed_annotation_exits_nonzero_naming_file_and_line() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("Fashion Landmark Detection Benchmark");
    for sub in ["Anno", "Eval"] {
        std::fs::create_dir_all(dir.join(sub)).unwrap();
        for e in std::fs::read_dir(
            fixtures()
                .join("Fashion Landmark Detection Benchmark")
                .join(sub),
        )
        .unwrap()
        {
            let e = e.unwrap();
            std::fs::copy(e.path(), dir.join(sub).join(e.file_name())).unwrap();
        }
    }
    let bbox = dir.join("Anno/list_bbox.txt");
    let text = std::fs::read_to_string(&bbox)
        .unwrap()
        .replace("075 044 181 290", "075 044 1x1 290");
    std::fs::write(&bbox, text).unwrap();
    let r = tmp.path().to_str().unwrap();
    let out = run(&["inspect", "--root", r, "--benchmark", "landmarks"]);
    assert!(!out.status.success());
    let e = String::from_utf8_lossy(&out.stderr);
    assert!(e.contains("list_bbox.txt:5:") && e.contains("x_2"), "{e}");
    let v = json(&run(&[
        "inspect",
        "--root",
        r,
        "--benchmark",
        "landmarks",
        "--json",
        "--lenient",
    ]));
    assert_eq!(v["skipped_rows"], 1);
}
