//! YUYV 4:2:2 (V4L2 `YUYV`) to interleaved RGB8, BT.601 limited range, as
//! USB UVC cameras deliver it. A pure function so it is tested without a
//! camera.

/// Convert `width x height` YUYV pixels (`stride` bytes per row, at least
/// `width * 2`) into `rgb` (`width * height * 3` bytes). Returns `false`
/// (and writes nothing) when the buffers are too small or the width is odd.
pub fn yuyv_to_rgb(
    yuyv: &[u8],
    width: usize,
    height: usize,
    stride: usize,
    rgb: &mut [u8],
) -> bool {
    if !width.is_multiple_of(2)
        || stride < width * 2
        || rgb.len() < width * height * 3
        || height == 0
        || yuyv.len() < stride * (height - 1) + width * 2
    {
        return false;
    }
    for y in 0..height {
        let src = &yuyv[y * stride..y * stride + width * 2];
        let dst = &mut rgb[y * width * 3..(y + 1) * width * 3];
        for (quad, out) in src.chunks_exact(4).zip(dst.chunks_exact_mut(6)) {
            let (y0, u, y1, v) = (quad[0], quad[1], quad[2], quad[3]);
            write_rgb(y0, u, v, &mut out[..3]);
            write_rgb(y1, u, v, &mut out[3..]);
        }
    }
    true
}

#[inline]
fn write_rgb(y: u8, u: u8, v: u8, out: &mut [u8]) {
    // Fixed-point BT.601 (limited range), as in libyuv.
    let c = (y as i32 - 16).max(0) * 298;
    let d = u as i32 - 128;
    let e = v as i32 - 128;
    let clamp = |x: i32| ((x + 128) >> 8).clamp(0, 255) as u8;
    out[0] = clamp(c + 409 * e);
    out[1] = clamp(c - 100 * d - 208 * e);
    out[2] = clamp(c + 516 * d);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_colours() {
        // Black, white, and BT.601 red (Y=81, U=90, V=240).
        let yuyv = [16, 128, 235, 128, 81, 90, 81, 240];
        let mut rgb = [0u8; 12];
        assert!(yuyv_to_rgb(&yuyv, 4, 1, 8, &mut rgb));
        assert_eq!(&rgb[0..3], &[0, 0, 0]);
        assert_eq!(&rgb[3..6], &[255, 255, 255]);
        let red = &rgb[6..9];
        assert!(red[0] >= 250 && red[1] <= 5 && red[2] <= 5, "{red:?}");
        assert_eq!(&rgb[6..9], &rgb[9..12]);
    }

    #[test]
    fn honours_stride_and_rejects_short_buffers() {
        // 2x2 image with 8-byte rows (4 bytes padding).
        let yuyv = [235, 128, 235, 128, 0, 0, 0, 0, 16, 128, 16, 128, 9, 9, 9, 9];
        let mut rgb = [7u8; 12];
        assert!(yuyv_to_rgb(&yuyv, 2, 2, 8, &mut rgb));
        assert_eq!(&rgb[..6], &[255; 6]);
        assert_eq!(&rgb[6..], &[0; 6]);
        assert!(!yuyv_to_rgb(&yuyv[..10], 2, 2, 8, &mut rgb));
        assert!(!yuyv_to_rgb(&yuyv, 3, 1, 8, &mut rgb));
        assert!(!yuyv_to_rgb(&yuyv, 2, 2, 8, &mut rgb[..5]));
    }
}
