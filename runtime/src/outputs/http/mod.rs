//! The live preview web server: `std::net` and one thread per connection,
//! bounded in connections, request size and time.
//!
//! Routes (everything else is 404; only `GET` and `HEAD`):
//! - `/`: the preview page (`runtime/assets/preview.html`);
//! - `/stream.mjpg`: annotated frames as a `multipart/x-mixed-replace`
//!   MJPEG stream;
//! - `/frame.jpg`: the latest annotated frame;
//! - `/state.json`: camera status, FPS and the latest result.
//!
//! With a token configured every route needs it, as `?token=` or
//! `Authorization: Bearer`. The frame loop publishes into a shared slot
//! ([`PreviewServer::publish`]) under a short lock and never waits for a
//! client; each client copies what it needs and writes with a timeout.

mod request;
mod state;

use std::fmt;
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::Duration;

use serde::Deserialize;

pub use state::CameraStatus;
use state::Shared;

use super::OwnedNames;
use crate::result::FrameResult;
use request::{constant_time_eq, parse_head, read_head, ReadError, Request};

/// The preview page, served at `/`.
pub const PREVIEW_PAGE: &str = include_str!("../../../assets/preview.html");

/// Minimum length of an access token.
pub const MIN_TOKEN_LEN: usize = 16;

/// Configuration of the preview server (`[http]` in the device config).
#[derive(Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct HttpConfig {
    /// Address to listen on. Anything but a loopback address requires
    /// `token`.
    pub addr: SocketAddr,
    /// Access token (at least 16 characters) required on every request as
    /// `?token=...` or `Authorization: Bearer ...`. Never logged.
    pub token: Option<String>,
    /// Maximum simultaneous connections; more are answered 503 and closed.
    pub max_connections: usize,
    /// Maximum size of a request head (request line and headers), bytes;
    /// larger requests are answered 431.
    pub max_header_bytes: usize,
    /// Read/write timeout per connection, milliseconds: a client slower
    /// than this is disconnected.
    pub io_timeout_ms: u64,
    /// Maximum frames per second encoded for the preview (the frame loop
    /// skips the JPEG encoding of the other frames).
    pub max_fps: f32,
    /// JPEG quality of preview frames (1..=100).
    pub jpeg_quality: u8,
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            addr: SocketAddr::from(([127, 0, 0, 1], 8080)),
            token: None,
            max_connections: 8,
            max_header_bytes: 8 * 1024,
            io_timeout_ms: 10_000,
            max_fps: 10.0,
            jpeg_quality: 75,
        }
    }
}

impl fmt::Debug for HttpConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpConfig")
            .field("addr", &self.addr)
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .field("max_connections", &self.max_connections)
            .field("max_header_bytes", &self.max_header_bytes)
            .field("io_timeout_ms", &self.io_timeout_ms)
            .field("max_fps", &self.max_fps)
            .field("jpeg_quality", &self.jpeg_quality)
            .finish()
    }
}

/// Errors of the preview server.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    /// Listening beyond loopback without a token.
    #[error(
        "refusing to serve the preview on {addr} without an access token: set `token` \
         (at least {MIN_TOKEN_LEN} characters) in the [http] config, or listen on 127.0.0.1"
    )]
    TokenRequired {
        /// The configured address.
        addr: SocketAddr,
    },
    /// A token that is too short or has unusable characters.
    #[error(
        "[http] token must be at least {MIN_TOKEN_LEN} printable ASCII characters without spaces"
    )]
    WeakToken,
    /// Another field is out of range.
    #[error("[http] {field}: {reason}")]
    Invalid {
        /// The field.
        field: &'static str,
        /// What is wrong.
        reason: &'static str,
    },
    /// The address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The configured address.
        addr: SocketAddr,
        /// The cause.
        source: io::Error,
    },
}

impl HttpConfig {
    /// Check the config: limits in range, and a token whenever the address
    /// is not loopback.
    pub fn validate(&self) -> Result<(), HttpError> {
        if let Some(t) = &self.token {
            let printable = t.bytes().all(|b| b.is_ascii_graphic());
            if t.len() < MIN_TOKEN_LEN || !printable {
                return Err(HttpError::WeakToken);
            }
        } else if !self.addr.ip().is_loopback() {
            return Err(HttpError::TokenRequired { addr: self.addr });
        }
        let invalid = |field, reason| Err(HttpError::Invalid { field, reason });
        if !(1..=1024).contains(&self.max_connections) {
            return invalid("max_connections", "must be in 1..=1024");
        }
        if !(256..=1024 * 1024).contains(&self.max_header_bytes) {
            return invalid("max_header_bytes", "must be in 256..=1048576");
        }
        if !(100..=600_000).contains(&self.io_timeout_ms) {
            return invalid("io_timeout_ms", "must be in 100..=600000");
        }
        if !(self.max_fps > 0.0 && self.max_fps <= 120.0) {
            return invalid("max_fps", "must be in (0, 120]");
        }
        if !(1..=100).contains(&self.jpeg_quality) {
            return invalid("jpeg_quality", "must be in 1..=100");
        }
        Ok(())
    }
}

/// The running preview server. Dropping it stops accepting connections.
pub struct PreviewServer {
    shared: Arc<Shared>,
    local_addr: SocketAddr,
    stop: Arc<AtomicBool>,
    accept: Option<JoinHandle<()>>,
}

impl fmt::Debug for PreviewServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PreviewServer")
            .field("local_addr", &self.local_addr)
            .finish()
    }
}

impl PreviewServer {
    /// Validate `config`, bind and start serving. `names` is used to write
    /// names into `/state.json`.
    pub fn start(config: &HttpConfig, names: OwnedNames) -> Result<Self, HttpError> {
        config.validate()?;
        let listener = TcpListener::bind(config.addr).map_err(|source| HttpError::Bind {
            addr: config.addr,
            source,
        })?;
        let local_addr = listener.local_addr().map_err(|source| HttpError::Bind {
            addr: config.addr,
            source,
        })?;
        let shared = Arc::new(Shared::new(names));
        let stop = Arc::new(AtomicBool::new(false));
        let ctx = Arc::new(ConnCtx {
            config: config.clone(),
            shared: shared.clone(),
            stop: stop.clone(),
            active: AtomicUsize::new(0),
        });
        let accept = thread::Builder::new()
            .name("preview-http".into())
            .spawn(move || accept_loop(listener, ctx))
            .map_err(|source| HttpError::Bind {
                addr: config.addr,
                source,
            })?;
        tracing::info!(
            "preview on http://{local_addr}/{}",
            if config.token.is_some() {
                " (token required)"
            } else {
                ""
            }
        );
        Ok(Self {
            shared,
            local_addr,
            stop,
            accept: Some(accept),
        })
    }

    /// The bound address (useful with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Publish the latest annotated JPEG and result. `jpeg` is swapped
    /// with the slot's previous buffer (so the caller gets a buffer back to
    /// reuse, cleared). Never blocks on clients. Sets the camera status to
    /// `ok`.
    pub fn publish(&self, jpeg: &mut Vec<u8>, result: &FrameResult) {
        self.shared.publish(jpeg, result);
    }

    /// Set the camera status shown on the page (e.g. `Reconnecting` while
    /// the pipeline reopens a camera).
    pub fn set_camera_status(&self, status: CameraStatus) {
        self.shared.set_camera_status(status);
    }

    /// Stop accepting connections and end the streams.
    pub fn shutdown(mut self) {
        self.stop_now();
    }

    fn stop_now(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        self.shared.wake_all();
        // Wake the blocking accept with a connection of our own.
        let mut wake = self.local_addr;
        if wake.ip().is_unspecified() {
            wake.set_ip(if wake.is_ipv4() {
                [127, 0, 0, 1].into()
            } else {
                std::net::Ipv6Addr::LOCALHOST.into()
            });
        }
        let _ = TcpStream::connect_timeout(&wake, Duration::from_secs(1));
        if let Some(t) = self.accept.take() {
            let _ = t.join();
        }
    }
}

impl Drop for PreviewServer {
    fn drop(&mut self) {
        if self.accept.is_some() {
            self.stop_now();
        }
    }
}

struct ConnCtx {
    config: HttpConfig,
    shared: Arc<Shared>,
    stop: Arc<AtomicBool>,
    active: AtomicUsize,
}

/// Decrements the connection count when a connection thread ends.
struct Slot(Arc<ConnCtx>);

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.active.fetch_sub(1, Ordering::SeqCst);
    }
}

fn accept_loop(listener: TcpListener, ctx: Arc<ConnCtx>) {
    let timeout = Duration::from_millis(ctx.config.io_timeout_ms);
    for conn in listener.incoming() {
        if ctx.stop.load(Ordering::SeqCst) {
            break;
        }
        let mut stream = match conn {
            Ok(s) => s,
            Err(e) => {
                tracing::debug!("preview accept failed: {e}");
                // E.g. out of file descriptors: do not spin.
                thread::sleep(Duration::from_millis(50));
                continue;
            }
        };
        let _ = stream.set_read_timeout(Some(timeout));
        let _ = stream.set_write_timeout(Some(timeout));
        let _ = stream.set_nodelay(true);
        if ctx.active.fetch_add(1, Ordering::SeqCst) >= ctx.config.max_connections {
            ctx.active.fetch_sub(1, Ordering::SeqCst);
            let _ = stream.set_write_timeout(Some(Duration::from_millis(200)));
            let _ = respond(
                &mut stream,
                "503 Service Unavailable",
                "text/plain",
                b"too many connections\n",
                false,
            );
            let _ = stream.shutdown(Shutdown::Both);
            continue;
        }
        let slot = Slot(ctx.clone());
        let spawned = thread::Builder::new()
            .name("preview-conn".into())
            .spawn(move || {
                let ctx = slot.0.clone();
                if let Err(e) = handle(&mut stream, &ctx) {
                    tracing::debug!("preview connection ended: {e}");
                }
                linger_close(&mut stream);
                drop(slot);
            });
        if let Err(e) = spawned {
            tracing::warn!("cannot start a preview connection thread: {e}");
        }
    }
}

/// Close after the answer: stop writing, then read (and discard) what the
/// client still sends for a moment, so that an early answer (431, 400) is
/// not destroyed by a reset caused by unread input. Bounded in time and
/// bytes.
fn linger_close(stream: &mut TcpStream) {
    let _ = stream.shutdown(Shutdown::Write);
    let _ = stream.set_read_timeout(Some(Duration::from_millis(200)));
    let mut sink = [0u8; 4096];
    let mut total = 0usize;
    let until = std::time::Instant::now() + Duration::from_secs(1);
    while total < 256 * 1024 && std::time::Instant::now() < until {
        match stream.read(&mut sink) {
            Ok(0) | Err(_) => break,
            Ok(n) => total += n,
        }
    }
    let _ = stream.shutdown(Shutdown::Both);
}

fn handle(stream: &mut TcpStream, ctx: &ConnCtx) -> io::Result<()> {
    let mut head = Vec::with_capacity(1024);
    let req = match read_head(stream, &mut head, ctx.config.max_header_bytes) {
        Ok(len) => parse_head(&head[..len]),
        Err(e) => Err(e),
    };
    let req = match req {
        Ok(r) => r,
        Err(ReadError::TooLarge) => {
            return respond(
                stream,
                "431 Request Header Fields Too Large",
                "text/plain",
                b"request head too large\n",
                false,
            )
        }
        Err(ReadError::Malformed) => {
            return respond(
                stream,
                "400 Bad Request",
                "text/plain",
                b"bad request\n",
                false,
            )
        }
        Err(ReadError::Io(e)) => return Err(e),
    };
    let head_only = req.method == "HEAD";
    if req.method != "GET" && !head_only {
        return respond(
            stream,
            "405 Method Not Allowed",
            "text/plain",
            b"only GET\n",
            false,
        );
    }
    if !authorized(&req, ctx.config.token.as_deref()) {
        return respond_with(
            stream,
            "401 Unauthorized",
            "text/plain",
            "WWW-Authenticate: Bearer\r\n",
            b"access token required\n",
            head_only,
        );
    }
    match req.path.as_str() {
        "/" | "/index.html" => respond(
            stream,
            "200 OK",
            "text/html; charset=utf-8",
            PREVIEW_PAGE.as_bytes(),
            head_only,
        ),
        "/state.json" => {
            let body = ctx.shared.state_json();
            respond(
                stream,
                "200 OK",
                "application/json",
                body.as_bytes(),
                head_only,
            )
        }
        "/frame.jpg" => {
            let mut jpeg = Vec::new();
            if ctx.shared.copy_latest(&mut jpeg, 0).is_some() {
                respond(stream, "200 OK", "image/jpeg", &jpeg, head_only)
            } else {
                respond(
                    stream,
                    "503 Service Unavailable",
                    "text/plain",
                    b"no frame yet\n",
                    head_only,
                )
            }
        }
        "/stream.mjpg" if head_only => respond(stream, "200 OK", MJPEG_TYPE, b"", true),
        "/stream.mjpg" => stream_mjpeg(stream, ctx),
        _ => respond(
            stream,
            "404 Not Found",
            "text/plain",
            b"not found\n",
            head_only,
        ),
    }
}

fn authorized(req: &Request, token: Option<&str>) -> bool {
    let Some(token) = token else { return true };
    let ok = |t: &Option<String>| {
        t.as_deref()
            .is_some_and(|t| constant_time_eq(t.as_bytes(), token.as_bytes()))
    };
    ok(&req.bearer) || ok(&req.query_token)
}

const MJPEG_TYPE: &str = "multipart/x-mixed-replace; boundary=fashionframe";

fn stream_mjpeg(stream: &mut TcpStream, ctx: &ConnCtx) -> io::Result<()> {
    write!(
        stream,
        "HTTP/1.1 200 OK\r\nContent-Type: {MJPEG_TYPE}\r\nCache-Control: no-store\r\n\
         Connection: close\r\nX-Content-Type-Options: nosniff\r\n\r\n"
    )?;
    let min_interval = Duration::from_secs_f32(1.0 / ctx.config.max_fps);
    let mut jpeg = Vec::new();
    let mut seen = 0u64;
    let now = std::time::Instant::now();
    let mut last_send = now.checked_sub(min_interval).unwrap_or(now);
    while !ctx.stop.load(Ordering::SeqCst) {
        let Some(seq) = ctx.shared.wait_newer(seen, Duration::from_millis(500)) else {
            continue;
        };
        let wait = min_interval.saturating_sub(last_send.elapsed());
        if !wait.is_zero() {
            thread::sleep(wait);
        }
        let Some(seq) = ctx.shared.copy_latest(&mut jpeg, seq.saturating_sub(1)) else {
            continue;
        };
        seen = seq;
        write!(
            stream,
            "--fashionframe\r\nContent-Type: image/jpeg\r\nContent-Length: {}\r\n\r\n",
            jpeg.len()
        )?;
        stream.write_all(&jpeg)?;
        stream.write_all(b"\r\n")?;
        stream.flush()?;
        last_send = std::time::Instant::now();
    }
    Ok(())
}

fn respond(
    stream: &mut TcpStream,
    status: &str,
    ctype: &str,
    body: &[u8],
    head_only: bool,
) -> io::Result<()> {
    respond_with(stream, status, ctype, "", body, head_only)
}

fn respond_with(
    stream: &mut TcpStream,
    status: &str,
    ctype: &str,
    extra: &str,
    body: &[u8],
    head_only: bool,
) -> io::Result<()> {
    write!(
        stream,
        "HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\nCache-Control: no-store\r\n\
         X-Content-Type-Options: nosniff\r\nConnection: close\r\n{extra}\r\n",
        body.len()
    )?;
    if !head_only {
        stream.write_all(body)?;
    }
    stream.flush()
}
