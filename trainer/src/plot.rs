//! Training curves as a PNG, drawn with the `image` crate (no fonts): one
//! panel per series, stacked top to bottom in the order given, each scaled
//! to its own range, with a grey frame and a zero/min baseline. The panel
//! order and ranges are also written as a sidecar `.txt`.

use anyhow::Result;
use image::{Rgb, RgbImage};
use std::path::Path;

const W: u32 = 800;
const PANEL_H: u32 = 120;
const PAD: u32 = 8;
const COLORS: [[u8; 3]; 7] = [
    [31, 119, 180],
    [255, 127, 14],
    [44, 160, 44],
    [214, 39, 40],
    [148, 103, 189],
    [140, 86, 75],
    [227, 119, 194],
];

/// One named series of `(step, value)` points.
#[derive(Debug, Clone)]
pub struct Series {
    /// Name (written in the sidecar legend).
    pub name: String,
    /// Points in step order.
    pub points: Vec<(f64, f64)>,
}

fn line(img: &mut RgbImage, (x0, y0): (i64, i64), (x1, y1): (i64, i64), c: Rgb<u8>) {
    let steps = (x1 - x0).abs().max((y1 - y0).abs()).max(1);
    for i in 0..=steps {
        let x = x0 + (x1 - x0) * i / steps;
        let y = y0 + (y1 - y0) * i / steps;
        if x >= 0 && y >= 0 && (x as u32) < img.width() && (y as u32) < img.height() {
            img.put_pixel(x as u32, y as u32, c);
        }
    }
}

/// Draw the series into `path` (PNG, written atomically) and a legend
/// `path.txt`.
pub fn plot(path: &Path, series: &[Series]) -> Result<()> {
    let panels = series.len().max(1) as u32;
    let mut img = RgbImage::from_pixel(W, panels * PANEL_H, Rgb([255, 255, 255]));
    let mut legend =
        String::from("panels top to bottom: name [min, max] over steps [first, last]\n");
    let (smin, smax) = series
        .iter()
        .flat_map(|s| s.points.iter().map(|p| p.0))
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), x| {
            (a.min(x), b.max(x))
        });
    for (k, s) in series.iter().enumerate() {
        let top = k as u32 * PANEL_H;
        let grey = Rgb([180, 180, 180]);
        let (l, r) = (PAD as i64, (W - PAD) as i64);
        let (t, b) = ((top + PAD) as i64, (top + PANEL_H - PAD) as i64);
        line(&mut img, (l, t), (r, t), grey);
        line(&mut img, (l, b), (r, b), grey);
        line(&mut img, (l, t), (l, b), grey);
        line(&mut img, (r, t), (r, b), grey);
        let finite: Vec<(f64, f64)> = s
            .points
            .iter()
            .copied()
            .filter(|p| p.1.is_finite())
            .collect();
        let (vmin, vmax) = finite
            .iter()
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b2), p| {
                (a.min(p.1), b2.max(p.1))
            });
        legend.push_str(&format!(
            "{}: {} [{vmin:.5}, {vmax:.5}] steps [{smin}, {smax}]\n",
            k + 1,
            s.name
        ));
        if finite.len() < 2 || !vmin.is_finite() {
            continue;
        }
        let span_v = (vmax - vmin).max(1e-12);
        let span_s = (smax - smin).max(1e-12);
        let to_px = |p: (f64, f64)| {
            let x = l + ((p.0 - smin) / span_s * (r - l) as f64) as i64;
            let y = b - ((p.1 - vmin) / span_v * (b - t) as f64) as i64;
            (x, y)
        };
        let c = Rgb(COLORS[k % COLORS.len()]);
        for w in finite.windows(2) {
            line(&mut img, to_px(w[0]), to_px(w[1]), c);
        }
    }
    let mut bytes = Vec::new();
    img.write_to(
        &mut std::io::Cursor::new(&mut bytes),
        image::ImageFormat::Png,
    )?;
    crate::checkpoint::write_atomic(path, &bytes)?;
    crate::checkpoint::write_atomic(&path.with_extension("txt"), legend.as_bytes())?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draws_a_png_with_one_panel_per_series() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("curves.png");
        let s = |n: &str| Series {
            name: n.into(),
            points: (0..50)
                .map(|i| (i as f64, (-(i as f64) / 10.0).exp()))
                .collect(),
        };
        plot(&p, &[s("loss"), s("lr")]).unwrap();
        let img = image::open(&p).unwrap().to_rgb8();
        assert_eq!(img.dimensions(), (W, 2 * PANEL_H));
        let coloured = img.pixels().filter(|px| px.0 == COLORS[0]).count();
        assert!(coloured > 50);
        assert!(std::fs::read_to_string(p.with_extension("txt"))
            .unwrap()
            .contains("lr"));
    }
}
