//! The MJPEG stream splitter on arbitrary streams, delivered in
//! input-chosen read sizes: it must end (each step consumes input), never
//! panic, and every image it returns must be a slice that starts with SOI
//! and ends with EOI.
#![no_main]

use fashion_runtime::sources::mjpeg::{find_soi, scan_image, JpegSplitter, Split};
use libfuzzer_sys::fuzz_target;
use std::io::Read;

/// A reader that hands out the stream in small, varying pieces.
struct Trickle<'a> {
    data: &'a [u8],
    sizes: &'a [u8],
    turn: usize,
}

impl Read for Trickle<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let want = 1 + self.sizes.get(self.turn % self.sizes.len().max(1)).copied().unwrap_or(255) as usize;
        self.turn += 1;
        let n = want.min(buf.len()).min(self.data.len());
        buf[..n].copy_from_slice(&self.data[..n]);
        self.data = &self.data[n..];
        Ok(n)
    }
}

fuzz_target!(|data: &[u8]| {
    let (sizes, stream) = data.split_at(data.len().min(4));
    if let Some(p) = find_soi(stream, 0) {
        let _ = scan_image(&stream[p..]);
    }
    let mut split = JpegSplitter::new(Trickle {
        data: stream,
        sizes,
        turn: 0,
    });
    // Every step either returns an image, reports a broken one (consuming
    // at least a byte) or ends, so the number of steps is bounded.
    for _ in 0..=2 * stream.len() + 2 {
        match split.next_image().expect("in-memory reads do not fail") {
            Split::Image(img) => {
                assert!(img.starts_with(&[0xFF, 0xD8]), "image without SOI");
                assert!(img.ends_with(&[0xFF, 0xD9]), "image without EOI");
            }
            Split::Broken(_) => {}
            Split::End => return,
        }
    }
    panic!("the splitter did not end on a {}-byte stream", stream.len());
});
