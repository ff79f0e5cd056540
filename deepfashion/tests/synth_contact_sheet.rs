//! A visual check, run by hand: render a small synthetic set and write a
//! contact sheet PNG with the annotated bbox (yellow) and landmarks (green
//! visible, red occluded, blue truncated) drawn over the images.
//!
//! `SYNTH_SHEET=/tmp/sheet.png cargo test -p deepfashion --test synth_contact_sheet -- --ignored`

use std::path::Path;

use deepfashion::synth::{generate, SynthOptions};
use image::{Rgb, RgbImage};

fn mark(img: &mut RgbImage, x: i64, y: i64, c: Rgb<u8>, r: i64) {
    for dy in -r..=r {
        for dx in -r..=r {
            let (px, py) = (x + dx, y + dy);
            if px >= 0 && py >= 0 && (px as u32) < img.width() && (py as u32) < img.height() {
                img.put_pixel(px as u32, py as u32, c);
            }
        }
    }
}

fn annotate(bench: &Path, list: &str, with_variation: bool, n: usize) -> Vec<RgbImage> {
    let text = std::fs::read_to_string(bench.join(list)).unwrap();
    let bbox_text = std::fs::read_to_string(bench.join(if with_variation {
        "Anno/list_bbox.txt"
    } else {
        "Anno_coarse/list_bbox.txt"
    }))
    .unwrap();
    let bboxes: std::collections::BTreeMap<String, Vec<i64>> = bbox_text
        .lines()
        .skip(2)
        .map(|l| {
            let t: Vec<&str> = l.split_whitespace().collect();
            (
                t[0].to_string(),
                t[1..].iter().map(|v| v.parse().unwrap()).collect(),
            )
        })
        .collect();
    let mut out = Vec::new();
    for line in text.lines().skip(2).take(n) {
        let t: Vec<&str> = line.split_whitespace().collect();
        let mut img = image::open(bench.join("Img").join(t[0])).unwrap().to_rgb8();
        let b = &bboxes[t[0]];
        for x in b[0]..=b[2] {
            mark(&mut img, x, b[1], Rgb([255, 230, 0]), 0);
            mark(&mut img, x, b[3], Rgb([255, 230, 0]), 0);
        }
        for y in b[1]..=b[3] {
            mark(&mut img, b[0], y, Rgb([255, 230, 0]), 0);
            mark(&mut img, b[2], y, Rgb([255, 230, 0]), 0);
        }
        let start = if with_variation { 3 } else { 2 };
        for tr in t[start..].chunks(3) {
            let c = match tr[0] {
                "0" => Rgb([0, 255, 0]),
                "1" => Rgb([255, 0, 0]),
                _ => Rgb([0, 80, 255]),
            };
            mark(
                &mut img,
                tr[1].parse().unwrap(),
                tr[2].parse().unwrap(),
                c,
                2,
            );
        }
        out.push(img);
    }
    out
}

#[test]
#[ignore = "writes a PNG for a human to look at"]
fn contact_sheet() {
    let target = std::env::var("SYNTH_SHEET").unwrap_or_else(|_| "/tmp/synth_sheet.png".into());
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("ds");
    let size = 160;
    let opts = SynthOptions {
        seed: 1,
        images: 40,
        size,
        overwrite: false,
    };
    generate(&out, &opts, None).unwrap();
    let mut tiles = annotate(
        &out.join("Category and Attribute Prediction Benchmark"),
        "Anno_coarse/list_landmarks.txt",
        false,
        16,
    );
    tiles.extend(annotate(
        &out.join("Fashion Landmark Detection Benchmark"),
        "Anno/list_landmarks.txt",
        true,
        8,
    ));
    // Raw in-shop and consumer images.
    for bench in [
        "In-shop Clothes Retrieval Benchmark",
        "Consumer-to-shop Clothes Retrieval Benchmark",
    ] {
        let b = out.join(bench);
        let part = std::fs::read_to_string(b.join("Eval/list_eval_partition.txt")).unwrap();
        for line in part.lines().skip(2).take(8) {
            let t: Vec<&str> = line.split_whitespace().collect();
            tiles.push(image::open(b.join("Img").join(t[0])).unwrap().to_rgb8());
        }
    }
    let cols = 8u32;
    let rows = (tiles.len() as u32).div_ceil(cols);
    let mut sheet = RgbImage::new(cols * size, rows * size);
    for (i, t) in tiles.iter().enumerate() {
        let (cx, cy) = ((i as u32 % cols) * size, (i as u32 / cols) * size);
        image::imageops::replace(&mut sheet, t, cx as i64, cy as i64);
    }
    sheet.save(&target).unwrap();
    eprintln!("contact sheet: {target}");
}
