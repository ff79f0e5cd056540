//! An MJPEG byte stream (concatenated JPEG images) from stdin, a file or a
//! FIFO: how Pi CSI cameras (`rpicam-vid --codec mjpeg -o -`) and Jetson CSI
//! cameras (GStreamer `jpegenc ! fdsink`) reach the runtime.
//!
//! Images are split by walking JPEG marker segments (not by searching for
//! the first `FF D9`, which also ends embedded EXIF thumbnails): SOI, the
//! header segments by their lengths, entropy-coded data up to the next real
//! marker, and so on until EOI. Bytes before an SOI are skipped; an image
//! interrupted by a new SOI is reported corrupt and the new one is parsed; a
//! stream that ends mid-image reports that image corrupt once, then ends.

use super::{jpeg, now_ms, Frame, FrameSource, FrameStatus, SourceError};
use std::io::Read;

/// Most bytes one image may take before it is declared corrupt.
pub const MAX_IMAGE_BYTES: usize = 32 << 20;
const READ_CHUNK: usize = 64 << 10;

/// What [`scan_image`] found at the start of a buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scan {
    /// A complete image in `buf[..end]`.
    Complete(usize),
    /// More bytes are needed.
    NeedMore,
    /// The image is broken; the next SOI candidate is at this offset (or
    /// none is in the buffer yet).
    Broken(Option<usize>),
}

/// Offset of the next `FF D8 FF` (SOI followed by a marker) at or after `from`.
pub fn find_soi(buf: &[u8], from: usize) -> Option<usize> {
    if buf.len() < 3 || from > buf.len() - 3 {
        return None;
    }
    buf[from..]
        .windows(3)
        .position(|w| w == [0xFF, 0xD8, 0xFF])
        .map(|p| p + from)
}

/// Walk the JPEG starting at `buf[0]` (which must be an SOI).
pub fn scan_image(buf: &[u8]) -> Scan {
    let broken = || Scan::Broken(find_soi(buf, 2));
    let n = buf.len();
    let mut pos = 2;
    loop {
        if pos + 2 > n {
            return Scan::NeedMore;
        }
        if buf[pos] != 0xFF {
            return broken();
        }
        let marker = buf[pos + 1];
        match marker {
            0xFF => {
                pos += 1; // fill byte
                continue;
            }
            0xD9 => return Scan::Complete(pos + 2),
            0xD8 => return Scan::Broken(Some(pos)),
            0x00 => return broken(),
            0x01 | 0xD0..=0xD7 => {
                pos += 2;
                continue;
            }
            _ => {}
        }
        if pos + 4 > n {
            return Scan::NeedMore;
        }
        let len = u16::from_be_bytes([buf[pos + 2], buf[pos + 3]]) as usize;
        if len < 2 {
            return broken();
        }
        pos += 2 + len;
        if marker != 0xDA {
            continue;
        }
        // Entropy-coded data: up to the next marker that is not a stuffed
        // zero, a restart marker or a fill byte.
        loop {
            if pos + 2 > n {
                return Scan::NeedMore;
            }
            if buf[pos] == 0xFF {
                match buf[pos + 1] {
                    0x00 | 0xD0..=0xD7 => pos += 2,
                    0xFF => pos += 1,
                    _ => break,
                }
            } else {
                pos += 1;
            }
        }
    }
}

/// Splits a byte stream into JPEG images, reusing one buffer.
pub struct JpegSplitter<R> {
    reader: R,
    buf: Vec<u8>,
    start: usize,
    end: usize,
    eof: bool,
    reported_truncation: bool,
}

/// One step of [`JpegSplitter::next_image`].
#[derive(Debug, PartialEq, Eq)]
pub enum Split<'a> {
    /// A complete image.
    Image(&'a [u8]),
    /// A broken image was skipped (the reason).
    Broken(&'static str),
    /// The stream ended.
    End,
}

impl<R: Read> JpegSplitter<R> {
    /// Split `reader`.
    pub fn new(reader: R) -> Self {
        Self {
            reader,
            buf: Vec::with_capacity(2 * READ_CHUNK),
            start: 0,
            end: 0,
            eof: false,
            reported_truncation: false,
        }
    }

    /// The next image, or a broken one, or the end.
    pub fn next_image(&mut self) -> std::io::Result<Split<'_>> {
        loop {
            let window = &self.buf[self.start..self.end];
            match find_soi(window, 0) {
                None => {
                    // Keep the last two bytes: they may begin an SOI.
                    let keep = window.len().min(2);
                    self.start = self.end - keep;
                }
                Some(p) => {
                    self.start += p;
                    let window = &self.buf[self.start..self.end];
                    match scan_image(window) {
                        Scan::Complete(len) => {
                            let s = self.start;
                            self.start += len;
                            return Ok(Split::Image(&self.buf[s..s + len]));
                        }
                        Scan::Broken(next) => {
                            self.start += next.unwrap_or(window.len().max(2) - 2).max(1);
                            return Ok(Split::Broken("malformed JPEG markers"));
                        }
                        Scan::NeedMore if window.len() > MAX_IMAGE_BYTES => {
                            self.start += 2;
                            return Ok(Split::Broken("image larger than the limit"));
                        }
                        Scan::NeedMore => {}
                    }
                }
            }
            if self.eof {
                let partial = find_soi(&self.buf[self.start..self.end], 0).is_some();
                if partial && !self.reported_truncation {
                    self.reported_truncation = true;
                    return Ok(Split::Broken("stream ended inside an image"));
                }
                return Ok(Split::End);
            }
            self.fill()?;
        }
    }

    fn fill(&mut self) -> std::io::Result<()> {
        if self.start > 0 && (self.start == self.end || self.start > self.buf.len() / 2) {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        if self.buf.len() < self.end + READ_CHUNK {
            self.buf.resize(self.end + READ_CHUNK, 0);
        }
        loop {
            match self.reader.read(&mut self.buf[self.end..]) {
                Ok(0) => {
                    self.eof = true;
                    return Ok(());
                }
                Ok(k) => {
                    self.end += k;
                    return Ok(());
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        }
    }
}

/// A [`FrameSource`] over an MJPEG byte stream.
pub struct MjpegSource {
    splitter: JpegSplitter<Box<dyn Read + Send>>,
    name: String,
    sequence: u64,
}

impl MjpegSource {
    /// Read MJPEG from `reader`; `name` is used in logs.
    pub fn new(reader: Box<dyn Read + Send>, name: String) -> Self {
        Self {
            splitter: JpegSplitter::new(reader),
            name,
            sequence: 0,
        }
    }
}

impl FrameSource for MjpegSource {
    fn next_frame(&mut self, frame: &mut Frame) -> Result<FrameStatus, SourceError> {
        let split = self
            .splitter
            .next_image()
            .map_err(|source| SourceError::Io {
                what: self.name.clone(),
                source,
            })?;
        match split {
            Split::End => Ok(FrameStatus::End),
            Split::Broken(why) => {
                self.sequence += 1;
                Ok(FrameStatus::Corrupt(why.to_string()))
            }
            Split::Image(data) => {
                self.sequence += 1;
                match jpeg::decode_into_frame(data, frame) {
                    Ok(()) => {
                        frame.sequence = self.sequence;
                        frame.timestamp_ms = now_ms();
                        Ok(FrameStatus::Frame)
                    }
                    Err(e) => Ok(FrameStatus::Corrupt(e)),
                }
            }
        }
    }

    fn describe(&self) -> String {
        self.name.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A minimal marker-valid JPEG: SOI, APP0 with an embedded thumbnail-like
    /// SOI/EOI inside, SOS with entropy data containing stuffed zeros and a
    /// restart marker, EOI.
    fn fake_jpeg(tag: u8) -> Vec<u8> {
        let mut v = vec![0xFF, 0xD8];
        v.extend([0xFF, 0xE1, 0x00, 0x08, 0xFF, 0xD8, 0xFF, 0xD9, 0x00, tag]);
        v.extend([0xFF, 0xDA, 0x00, 0x04, 0x01, 0x02]);
        v.extend([0x12, 0xFF, 0x00, 0x34, 0xFF, 0xD0, 0x56, tag]);
        v.extend([0xFF, 0xD9]);
        v
    }

    /// A reader that returns at most `n` bytes per read.
    struct Trickle<'a>(&'a [u8], usize);
    impl Read for Trickle<'_> {
        fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
            let k = self.0.len().min(self.1).min(out.len());
            out[..k].copy_from_slice(&self.0[..k]);
            self.0 = &self.0[k..];
            Ok(k)
        }
    }

    fn collect(stream: &[u8], chunk: usize) -> Vec<Result<Vec<u8>, &'static str>> {
        let mut s = JpegSplitter::new(Trickle(stream, chunk));
        let mut out = vec![];
        loop {
            match s.next_image().unwrap() {
                Split::Image(d) => out.push(Ok(d.to_vec())),
                Split::Broken(w) => out.push(Err(w)),
                Split::End => return out,
            }
        }
    }

    #[test]
    fn splits_with_garbage_thumbnails_and_any_chunking() {
        let (a, b) = (fake_jpeg(1), fake_jpeg(2));
        let mut stream = b"garbage\xff".to_vec();
        stream.extend(&a);
        stream.extend(b"\x00\x00");
        stream.extend(&b);
        for chunk in [1, 3, 7, 1 << 16] {
            let got = collect(&stream, chunk);
            assert_eq!(got, vec![Ok(a.clone()), Ok(b.clone())], "chunk {chunk}");
        }
    }

    #[test]
    fn truncated_and_interrupted_images() {
        let (a, b) = (fake_jpeg(1), fake_jpeg(2));
        // a is cut off by the start of b: a broken, b fine.
        let mut stream = a[..a.len() - 5].to_vec();
        stream.extend(&b);
        let got = collect(&stream, 4);
        assert_eq!(got, vec![Err("malformed JPEG markers"), Ok(b.clone())]);
        // The stream ends inside an image: reported once, then the end.
        let mut stream = a.clone();
        stream.extend(&b[..b.len() - 3]);
        let got = collect(&stream, 5);
        assert_eq!(
            got,
            vec![Ok(a.clone()), Err("stream ended inside an image")]
        );
        assert!(collect(b"", 1).is_empty());
        assert!(collect(b"no jpeg here", 2).is_empty());
    }
}
