//! The built-in demo sources. [`demo_clip`]: the shipped demo clip
//! (`assets/demo/demo.mjpeg`, synthetic garments the demo model was trained
//! on), looped endlessly at a camera-like pace. [`DemoSource`]: a generated
//! scene (no file needed): a garment-like shape (torso, sleeves, hem) that
//! sways and drifts over a textured background, with a colour that changes
//! slowly; the tags it gets are whatever the model says about a cartoon
//! shirt.

use super::mjpeg::MjpegSource;
use super::{now_ms, Frame, FrameSource, FrameStatus, SourceError};
use std::io::Read;
use std::path::Path;
use std::time::{Duration, Instant};

/// Frame rate the demo clip plays at.
pub const CLIP_FPS: u32 = 10;

/// Reads a byte buffer over and over (an endless MJPEG stream from a clip).
struct Looping {
    data: Vec<u8>,
    pos: usize,
}

impl Read for Looping {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        if self.data.is_empty() {
            return Ok(0);
        }
        if self.pos == self.data.len() {
            self.pos = 0;
        }
        let n = out.len().min(self.data.len() - self.pos);
        out[..n].copy_from_slice(&self.data[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

/// Hands out the frames of `inner` no faster than `fps` (a file would
/// otherwise play as fast as inference goes).
pub struct Paced {
    inner: Box<dyn FrameSource>,
    period: Duration,
    next: Option<Instant>,
}

impl Paced {
    /// Pace `inner` at `fps` frames per second.
    pub fn new(inner: Box<dyn FrameSource>, fps: u32) -> Self {
        Self {
            inner,
            period: Duration::from_secs_f64(1.0 / fps.max(1) as f64),
            next: None,
        }
    }
}

impl FrameSource for Paced {
    fn next_frame(&mut self, frame: &mut Frame) -> Result<FrameStatus, SourceError> {
        let now = Instant::now();
        if let Some(due) = self.next {
            if due > now {
                std::thread::sleep(due - now);
            }
        }
        let status = self.inner.next_frame(frame)?;
        // When inference is slower than the pace, do not try to catch up.
        self.next = Some(Instant::now().max(self.next.unwrap_or(now)) + self.period);
        Ok(status)
    }

    fn describe(&self) -> String {
        format!(
            "{} at {:.0} fps",
            self.inner.describe(),
            1.0 / self.period.as_secs_f64()
        )
    }
}

/// The demo clip at `path`, looped endlessly, at [`CLIP_FPS`].
pub fn demo_clip(path: &Path) -> Result<Box<dyn FrameSource>, SourceError> {
    let data = std::fs::read(path).map_err(|source| SourceError::Io {
        what: path.display().to_string(),
        source,
    })?;
    let mjpeg = MjpegSource::new(
        Box::new(Looping { data, pos: 0 }),
        format!("demo clip {} (looped)", path.display()),
    );
    Ok(Box::new(Paced::new(Box::new(mjpeg), CLIP_FPS)))
}

/// Frames of the synthetic scene, endless (the caller limits `--frames`).
pub struct DemoSource {
    width: u32,
    height: u32,
    t: u64,
}

impl DemoSource {
    /// A `width x height` scene.
    pub fn new(width: u32, height: u32) -> Self {
        Self {
            width: width.max(16),
            height: height.max(16),
            t: 0,
        }
    }
}

/// Draw frame `t` of the scene into `frame`.
pub fn draw(frame: &mut Frame, width: u32, height: u32, t: u64) {
    frame.reshape(width, height);
    let (w, h) = (width as f32, height as f32);
    let phase = t as f32 * 0.08;
    let cx = w * 0.5 + phase.sin() * w * 0.12;
    let cy = h * 0.52 + (phase * 0.7).cos() * h * 0.05;
    let s = h.min(w) * 0.32;
    let sway = (phase * 1.3).sin() * 0.25;
    let hue = (t as f32 * 0.01) % 1.0;
    let colour = [
        (128.0 + 100.0 * (hue * std::f32::consts::TAU).sin()) as u8,
        (90.0 + 60.0 * (hue * std::f32::consts::TAU + 2.0).sin()) as u8,
        (140.0 + 90.0 * (hue * std::f32::consts::TAU + 4.0).sin()) as u8,
    ];
    for y in 0..height {
        for x in 0..width {
            let (fx, fy) = (x as f32 - cx, y as f32 - cy);
            // Torso: a trapezoid; sleeves: two tilted bars; collar notch.
            let torso = fy.abs() < s && fx.abs() < s * (0.55 + 0.1 * (fy / s));
            let sleeve_y = fy + s * 0.7 - fx.abs() * sway;
            let sleeves = fx.abs() >= s * 0.5 && fx.abs() < s * 1.1 && sleeve_y.abs() < s * 0.18;
            let collar = fy < -s * 0.8 && fx.abs() < s * 0.18;
            let i = (y as usize * width as usize + x as usize) * 3;
            let px = if (torso || sleeves) && !collar {
                let stripe = ((fy / (s * 0.15)).floor() as i32 & 1) as u8 * 25;
                [
                    colour[0].saturating_sub(stripe),
                    colour[1].saturating_sub(stripe),
                    colour[2].saturating_sub(stripe),
                ]
            } else {
                let check = (((x / 24) + (y / 24)) & 1) as u8 * 18;
                [200 + check / 2, 196 + check / 3, 188 + check / 2]
            };
            frame.rgb[i..i + 3].copy_from_slice(&px);
        }
    }
}

impl FrameSource for DemoSource {
    fn next_frame(&mut self, frame: &mut Frame) -> Result<FrameStatus, SourceError> {
        self.t += 1;
        draw(frame, self.width, self.height, self.t);
        frame.sequence = self.t;
        frame.timestamp_ms = now_ms();
        Ok(FrameStatus::Frame)
    }

    fn describe(&self) -> String {
        format!("demo (synthetic scene {}x{})", self.width, self.height)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clip_loops_past_its_end_at_the_pace() {
        let mut jpeg = Vec::new();
        let img = image::RgbImage::from_pixel(32, 24, image::Rgb([10, 200, 30]));
        image::codecs::jpeg::JpegEncoder::new(&mut jpeg)
            .encode_image(&img)
            .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("clip.mjpeg");
        std::fs::write(&path, [jpeg.clone(), jpeg].concat()).unwrap();
        let mut src = demo_clip(&path).unwrap();
        let mut frame = Frame::default();
        let start = Instant::now();
        for _ in 0..5 {
            assert!(matches!(
                src.next_frame(&mut frame).unwrap(),
                FrameStatus::Frame
            ));
            assert_eq!((frame.width, frame.height), (32, 24));
        }
        // Five frames at 10 fps: four periods of waiting.
        assert!(start.elapsed() >= Duration::from_millis(390));
        assert!(src.describe().contains("looped"));
        assert!(demo_clip(&dir.path().join("missing.mjpeg")).is_err());
    }

    #[test]
    fn frames_move() {
        let mut s = DemoSource::new(64, 48);
        let (mut a, mut b) = (Frame::default(), Frame::default());
        assert_eq!(s.next_frame(&mut a).unwrap(), FrameStatus::Frame);
        s.next_frame(&mut b).unwrap();
        for _ in 0..10 {
            s.next_frame(&mut b).unwrap();
        }
        assert_eq!(a.pixels().len(), 64 * 48 * 3);
        assert_ne!(a.pixels(), b.pixels());
    }
}
