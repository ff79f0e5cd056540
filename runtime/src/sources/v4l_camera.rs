//! V4L2 cameras (USB UVC) through the `v4l` crate: open by path (including
//! the udev-stable `/dev/v4l/by-id/...` links), negotiate size and frame
//! rate with [`super::camera_format::choose_mode`], capture through mmap
//! buffers, decode MJPEG (cut to `bytesused`) or convert YUYV, and count
//! dropped frames from the driver's sequence numbers.

use super::camera_format::{choose_mode, dropped_between, CameraMode, PixelFormat};
use super::{jpeg, now_ms, yuyv, CameraRequest, Frame, FrameSource, FrameStatus, SourceError};
use std::path::Path;
use v4l::buffer::Type;
use v4l::frameinterval::FrameIntervalEnum;
use v4l::framesize::FrameSizeEnum;
use v4l::io::mmap::Stream;
use v4l::io::traits::CaptureStream;
use v4l::video::Capture;
use v4l::{Device, FourCC, Fraction};

/// An open camera.
pub struct V4lCamera {
    // Field order matters: the stream unmaps before the device closes.
    stream: Stream<'static>,
    _device: Device,
    mode: CameraMode,
    stride: usize,
    name: String,
    last_sequence: Option<u32>,
    count: u64,
}

/// The modes (format x size x interval) a device offers, for the formats
/// the runtime decodes.
fn list_modes(dev: &Device) -> std::io::Result<Vec<CameraMode>> {
    let mut modes = Vec::new();
    for desc in dev.enum_formats()? {
        let Some(format) = PixelFormat::from_fourcc(&desc.fourcc.repr) else {
            continue;
        };
        for size in dev.enum_framesizes(desc.fourcc)? {
            let sizes: Vec<(u32, u32)> = match size.size {
                FrameSizeEnum::Discrete(d) => vec![(d.width, d.height)],
                FrameSizeEnum::Stepwise(s) => {
                    vec![(s.min_width, s.min_height), (s.max_width, s.max_height)]
                }
            };
            for (width, height) in sizes {
                for iv in dev.enum_frameintervals(desc.fourcc, width, height)? {
                    let fr = match iv.interval {
                        FrameIntervalEnum::Discrete(f) => f,
                        FrameIntervalEnum::Stepwise(s) => s.min,
                    };
                    modes.push(CameraMode {
                        format,
                        width,
                        height,
                        interval_num: fr.numerator,
                        interval_den: fr.denominator,
                    });
                }
            }
        }
    }
    Ok(modes)
}

impl V4lCamera {
    /// Open `path` and negotiate the best mode for `request`.
    pub fn open(path: &Path, request: CameraRequest) -> Result<Self, SourceError> {
        let name = path.display().to_string();
        let io = |source| SourceError::Io {
            what: name.clone(),
            source,
        };
        let dev = Device::with_path(path).map_err(io)?;
        let modes = list_modes(&dev).map_err(io)?;
        let mode = choose_mode(&modes, request.width, request.height, request.max_fps).ok_or_else(
            || SourceError::Format {
                device: name.clone(),
                reason: "offers neither MJPEG nor YUYV".into(),
            },
        )?;
        let mut fmt = dev.format().map_err(io)?;
        fmt.width = mode.width;
        fmt.height = mode.height;
        fmt.fourcc = FourCC::new(&mode.format.fourcc());
        let fmt = dev.set_format(&fmt).map_err(io)?;
        if fmt.fourcc != FourCC::new(&mode.format.fourcc()) {
            return Err(SourceError::Format {
                device: name,
                reason: format!("asked for {:?}, driver set {}", mode.format, fmt.fourcc),
            });
        }
        let mode = CameraMode {
            width: fmt.width,
            height: fmt.height,
            ..mode
        };
        if mode.interval_num > 0 {
            let params = v4l::video::capture::Parameters::new(Fraction::new(
                mode.interval_num,
                mode.interval_den,
            ));
            if let Err(e) = dev.set_params(&params) {
                tracing::warn!(device = %name, error = %e, "could not set the frame rate");
            }
        }
        let mut stream = Stream::with_buffers(&dev, Type::VideoCapture, 4).map_err(io)?;
        stream.set_timeout(std::time::Duration::from_secs(5));
        tracing::info!(device = %name, format = ?mode.format, width = mode.width, height = mode.height, fps = mode.fps(), "camera opened");
        Ok(Self {
            stream,
            _device: dev,
            mode,
            stride: fmt.stride as usize,
            name,
            last_sequence: None,
            count: 0,
        })
    }
}

impl FrameSource for V4lCamera {
    fn next_frame(&mut self, frame: &mut Frame) -> Result<FrameStatus, SourceError> {
        let (buf, meta) = self.stream.next().map_err(|source| SourceError::Io {
            what: self.name.clone(),
            source,
        })?;
        let used = (meta.bytesused as usize).min(buf.len());
        let data = &buf[..used];
        let dropped = dropped_between(self.last_sequence, meta.sequence);
        self.last_sequence = Some(meta.sequence);
        let (w, h) = (self.mode.width, self.mode.height);
        let decoded = match self.mode.format {
            PixelFormat::Mjpeg => jpeg::decode_into_frame(data, frame),
            PixelFormat::Yuyv => {
                frame.reshape(w, h);
                if yuyv::yuyv_to_rgb(
                    data,
                    w as usize,
                    h as usize,
                    self.stride.max(w as usize * 2),
                    &mut frame.rgb,
                ) {
                    Ok(())
                } else {
                    Err(format!("short YUYV buffer ({used} bytes for {w}x{h})"))
                }
            }
        };
        self.count += 1;
        match decoded {
            Err(e) => Ok(FrameStatus::Corrupt(e)),
            Ok(()) => {
                frame.sequence = self.count;
                frame.timestamp_ms = now_ms();
                Ok(if dropped > 0 {
                    FrameStatus::FrameAfterDrop(dropped)
                } else {
                    FrameStatus::Frame
                })
            }
        }
    }

    fn describe(&self) -> String {
        format!(
            "v4l:{} {}x{} {:?} {:.0}fps",
            self.name,
            self.mode.width,
            self.mode.height,
            self.mode.format,
            self.mode.fps()
        )
    }
}
