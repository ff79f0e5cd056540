//! Choosing a camera format: among what the camera offers (pixel format,
//! size, frame intervals), pick the size nearest the request and, at that
//! size, the highest frame rate; between YUYV and MJPEG at equal rate prefer
//! MJPEG (less USB bandwidth). A pure function, tested without a camera.

/// Pixel formats the runtime can decode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PixelFormat {
    /// Motion JPEG (each buffer one JPEG image).
    Mjpeg,
    /// YUYV 4:2:2 packed.
    Yuyv,
}

impl PixelFormat {
    /// From a V4L2 fourcc (`MJPG`, `JPEG`, `YUYV`).
    pub fn from_fourcc(fourcc: &[u8; 4]) -> Option<Self> {
        match fourcc {
            b"MJPG" | b"JPEG" => Some(PixelFormat::Mjpeg),
            b"YUYV" => Some(PixelFormat::Yuyv),
            _ => None,
        }
    }

    /// The V4L2 fourcc.
    pub fn fourcc(self) -> [u8; 4] {
        match self {
            PixelFormat::Mjpeg => *b"MJPG",
            PixelFormat::Yuyv => *b"YUYV",
        }
    }
}

/// One mode the camera offers: a format at a size with a frame interval.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CameraMode {
    /// Pixel format.
    pub format: PixelFormat,
    /// Width.
    pub width: u32,
    /// Height.
    pub height: u32,
    /// Frame interval numerator (seconds).
    pub interval_num: u32,
    /// Frame interval denominator.
    pub interval_den: u32,
}

impl CameraMode {
    /// Frames per second.
    pub fn fps(&self) -> f64 {
        if self.interval_num == 0 {
            0.0
        } else {
            self.interval_den as f64 / self.interval_num as f64
        }
    }
}

/// Pick the best mode for a `width x height` request, capped at `max_fps`
/// (0 = no cap): exact size if offered, otherwise the smallest size that
/// covers the request, otherwise the largest; then the highest frame rate
/// within the cap (or the lowest above it if none is under the cap); then
/// MJPEG over YUYV.
pub fn choose_mode(
    modes: &[CameraMode],
    width: u32,
    height: u32,
    max_fps: u32,
) -> Option<CameraMode> {
    if modes.is_empty() {
        return None;
    }
    let area = |m: &CameraMode| m.width as u64 * m.height as u64;
    let size = if modes.iter().any(|m| m.width == width && m.height == height) {
        (width, height)
    } else if let Some(m) = modes
        .iter()
        .filter(|m| m.width >= width && m.height >= height)
        .min_by_key(|m| area(m))
    {
        (m.width, m.height)
    } else {
        let m = modes.iter().max_by_key(|m| area(m))?;
        (m.width, m.height)
    };
    let at_size = modes.iter().filter(|m| (m.width, m.height) == size);
    let cap = if max_fps == 0 {
        f64::INFINITY
    } else {
        max_fps as f64 + 1e-6
    };
    let rank = |m: &CameraMode| (m.format == PixelFormat::Mjpeg) as u8;
    let under: Vec<&CameraMode> = at_size.clone().filter(|m| m.fps() <= cap).collect();
    let best = if !under.is_empty() {
        under.into_iter().max_by(|a, b| {
            a.fps()
                .partial_cmp(&b.fps())
                .unwrap_or(std::cmp::Ordering::Equal)
                .then(rank(a).cmp(&rank(b)))
        })
    } else {
        at_size.min_by(|a, b| {
            a.fps()
                .partial_cmp(&b.fps())
                .unwrap_or(std::cmp::Ordering::Equal)
                .then(rank(b).cmp(&rank(a)))
        })
    };
    best.copied()
}

/// Frames lost between two V4L2 sequence numbers (wrapping u32).
pub fn dropped_between(previous: Option<u32>, current: u32) -> u64 {
    match previous {
        Some(p) => current.wrapping_sub(p).saturating_sub(1) as u64,
        None => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(format: PixelFormat, width: u32, height: u32, fps: u32) -> CameraMode {
        CameraMode {
            format,
            width,
            height,
            interval_num: 1,
            interval_den: fps,
        }
    }

    #[test]
    fn prefers_highest_rate_at_requested_size() {
        use PixelFormat::*;
        // A typical UVC webcam: YUYV is slow at 640x480, MJPEG is fast.
        let modes = [
            m(Yuyv, 640, 480, 30),
            m(Yuyv, 1280, 720, 10),
            m(Mjpeg, 640, 480, 30),
            m(Mjpeg, 640, 480, 60),
            m(Mjpeg, 1280, 720, 30),
        ];
        let c = choose_mode(&modes, 640, 480, 0).unwrap();
        assert_eq!((c.format, c.width, c.fps() as u32), (Mjpeg, 640, 60));
        // Capped at 30: equal rates, MJPEG preferred.
        let c = choose_mode(&modes, 640, 480, 30).unwrap();
        assert_eq!((c.format, c.fps() as u32), (Mjpeg, 30));
        // YUYV faster than MJPEG at a size: YUYV wins.
        let modes2 = [m(Yuyv, 320, 240, 60), m(Mjpeg, 320, 240, 30)];
        assert_eq!(choose_mode(&modes2, 320, 240, 0).unwrap().format, Yuyv);
    }

    #[test]
    fn nearest_covering_size_then_largest() {
        use PixelFormat::*;
        let modes = [
            m(Yuyv, 320, 240, 30),
            m(Yuyv, 1280, 720, 10),
            m(Yuyv, 800, 600, 20),
        ];
        let c = choose_mode(&modes, 640, 480, 0).unwrap();
        assert_eq!((c.width, c.height), (800, 600));
        let c = choose_mode(&modes, 4000, 3000, 0).unwrap();
        assert_eq!((c.width, c.height), (1280, 720));
        assert!(choose_mode(&[], 640, 480, 0).is_none());
        // Only rates above the cap: the slowest one.
        let modes = [m(Mjpeg, 640, 480, 60), m(Mjpeg, 640, 480, 90)];
        assert_eq!(choose_mode(&modes, 640, 480, 15).unwrap().fps() as u32, 60);
    }

    #[test]
    fn sequence_gaps() {
        assert_eq!(dropped_between(None, 5), 0);
        assert_eq!(dropped_between(Some(5), 6), 0);
        assert_eq!(dropped_between(Some(5), 9), 3);
        assert_eq!(dropped_between(Some(u32::MAX), 1), 1);
        assert_eq!(dropped_between(Some(5), 5), 0);
    }
}
