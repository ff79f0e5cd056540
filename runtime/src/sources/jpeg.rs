//! JPEG decoding into a reused RGB frame buffer (zune-jpeg).
//!
//! The pixel buffer of the [`Frame`] is reused: once it has grown to the
//! stream's frame size, decoding writes into it in place. (zune-jpeg keeps
//! its own per-image scratch state, which it allocates per call.)

use super::Frame;
use zune_core::bytestream::ZCursor;
use zune_core::colorspace::ColorSpace;
use zune_core::options::DecoderOptions;
use zune_jpeg::JpegDecoder;

/// Largest frame side accepted (a corrupt header must not make us allocate
/// gigabytes).
pub const MAX_SIDE: usize = 8192;

/// Decode one JPEG image into `frame` (RGB8). On error the frame's pixels
/// are unspecified and the message says what is wrong.
pub fn decode_into_frame(data: &[u8], frame: &mut Frame) -> Result<(), String> {
    let options = DecoderOptions::default()
        .jpeg_set_out_colorspace(ColorSpace::RGB)
        .set_max_width(MAX_SIDE)
        .set_max_height(MAX_SIDE)
        .set_strict_mode(false);
    let mut decoder = JpegDecoder::new_with_options(ZCursor::new(data), options);
    decoder.decode_headers().map_err(|e| format!("{e:?}"))?;
    let (w, h) = decoder
        .dimensions()
        .ok_or_else(|| "no dimensions after headers".to_string())?;
    if w == 0 || h == 0 {
        return Err(format!("empty image {w}x{h}"));
    }
    let need = decoder
        .output_buffer_size()
        .ok_or_else(|| "image size overflows".to_string())?;
    frame.reshape(w as u32, h as u32);
    if need != frame.rgb.len() {
        return Err(format!("decoder wants {need} bytes for {w}x{h} RGB"));
    }
    decoder
        .decode_into(&mut frame.rgb)
        .map_err(|e| format!("{e:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        let mut f = Frame::default();
        for data in [
            &b""[..],
            b"\xff\xd8",
            b"\xff\xd8\xff\xd9",
            b"not a jpeg at all",
        ] {
            assert!(decode_into_frame(data, &mut f).is_err());
        }
    }
}
