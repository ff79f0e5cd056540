//! The preview server on loopback: routes, token, limits, malformed
//! requests, the MJPEG stream.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};

use deepfashion::contract::{AttributeLabel, CategoryLabel, Labels};
use fashion_runtime::outputs::annotate::Annotator;
use fashion_runtime::outputs::http::{CameraStatus, HttpConfig, HttpError, PreviewServer};
use fashion_runtime::outputs::OwnedNames;
use fashion_runtime::result::{FrameResult, Tag};
use serde_json::Value;

const TOKEN: &str = "0123456789abcdef-test";

fn names() -> OwnedNames {
    OwnedNames {
        labels: Some(Arc::new(Labels {
            categories: vec![CategoryLabel {
                name: "Anorak".into(),
                garment_type: 1,
            }],
            attributes: vec![AttributeLabel {
                name: "quilted".into(),
                group: "texture".into(),
            }],
        })),
        shop: None,
    }
}

fn config(token: Option<&str>) -> HttpConfig {
    HttpConfig {
        addr: "127.0.0.1:0".parse().unwrap(),
        token: token.map(str::to_string),
        io_timeout_ms: 2_000,
        max_fps: 100.0,
        ..HttpConfig::default()
    }
}

fn frame(n: u64, shade: u8) -> (Vec<u8>, FrameResult) {
    let (w, h) = (64u32, 48u32);
    let rgb = vec![shade; (w * h * 3) as usize];
    let mut r = FrameResult {
        frame: n,
        width: w,
        height: h,
        ..Default::default()
    };
    r.categories
        .push(Tag {
            index: 0,
            score: 0.5,
        })
        .unwrap();
    r.attributes
        .push(Tag {
            index: 0,
            score: 0.25,
        })
        .unwrap();
    (rgb, r)
}

fn publish(server: &PreviewServer, n: u64, shade: u8) {
    let (rgb, r) = frame(n, shade);
    let mut a = Annotator::new(90);
    let mut jpeg = a
        .annotate_jpeg(&rgb, r.width, r.height, &r)
        .unwrap()
        .to_vec();
    server.publish(&mut jpeg, &r);
}

/// Send raw bytes, read the whole answer (the server closes).
fn raw(addr: SocketAddr, request: &[u8]) -> (u16, String, Vec<u8>) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let _ = s.write_all(request);
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    split(&out)
}

fn split(out: &[u8]) -> (u16, String, Vec<u8>) {
    let end = out
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or(out.len());
    let head = String::from_utf8_lossy(&out[..end]).to_string();
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = out.get(end + 4..).unwrap_or_default().to_vec();
    (status, head, body)
}

fn get(addr: SocketAddr, path: &str, extra: &str) -> (u16, String, Vec<u8>) {
    raw(
        addr,
        format!("GET {path} HTTP/1.1\r\nHost: x\r\n{extra}\r\n").as_bytes(),
    )
}

#[test]
fn serves_page_state_and_frame_and_nothing_else() {
    let server = PreviewServer::start(&config(None), names()).unwrap();
    let addr = server.local_addr();
    let (st, head, body) = get(addr, "/", "");
    assert_eq!(st, 200);
    assert!(head.contains("text/html"));
    assert!(String::from_utf8_lossy(&body).contains("/state.json"));
    // Before the first frame.
    assert_eq!(get(addr, "/frame.jpg", "").0, 503);
    let state: Value = serde_json::from_slice(&get(addr, "/state.json", "").2).unwrap();
    assert_eq!(state["camera"], "starting");
    assert!(state["result"].is_null());

    publish(&server, 7, 200);
    let (st, _, jpeg) = get(addr, "/frame.jpg", "");
    assert_eq!(st, 200);
    assert_eq!(&jpeg[..2], &[0xFF, 0xD8]);
    let img = image::load_from_memory(&jpeg).unwrap().to_rgb8();
    assert_eq!(img.dimensions(), (64, 48));
    let state: Value = serde_json::from_slice(&get(addr, "/state.json", "").2).unwrap();
    assert_eq!(state["camera"], "ok");
    assert_eq!(state["seq"], 1);
    assert_eq!(state["result"]["frame"], 7);
    assert_eq!(state["result"]["categories"][0]["name"], "Anorak");
    assert_eq!(state["result"]["attributes"][0]["name"], "quilted");

    server.set_camera_status(CameraStatus::Reconnecting);
    let state: Value = serde_json::from_slice(&get(addr, "/state.json", "").2).unwrap();
    assert_eq!(state["camera"], "reconnecting");

    for path in ["/etc/passwd", "/../", "/state.json/x", "/favicon.ico"] {
        assert_eq!(get(addr, path, "").0, 404, "{path}");
    }
    let (st, _, body) = raw(addr, b"HEAD /state.json HTTP/1.1\r\n\r\n");
    assert_eq!((st, body.len()), (200, 0));
    assert_eq!(
        raw(addr, b"POST / HTTP/1.1\r\nContent-Length: 0\r\n\r\n").0,
        405
    );
    server.shutdown();
}

#[test]
fn token_is_required_when_configured() {
    let server = PreviewServer::start(&config(Some(TOKEN)), names()).unwrap();
    let addr = server.local_addr();
    assert_eq!(get(addr, "/", "").0, 401);
    assert_eq!(get(addr, "/state.json?token=wrong", "").0, 401);
    assert_eq!(get(addr, "/nope", "").0, 401);
    assert_eq!(get(addr, &format!("/?token={TOKEN}"), "").0, 200);
    assert_eq!(
        get(
            addr,
            "/state.json",
            &format!("Authorization: Bearer {TOKEN}\r\n")
        )
        .0,
        200
    );
    assert_eq!(
        get(addr, "/state.json", "Authorization: Bearer nope\r\n").0,
        401
    );
}

#[test]
fn refuses_public_address_without_token_and_weak_tokens() {
    let cfg = HttpConfig {
        addr: "0.0.0.0:0".parse().unwrap(),
        ..config(None)
    };
    let err = PreviewServer::start(&cfg, names()).unwrap_err();
    assert!(matches!(err, HttpError::TokenRequired { .. }), "{err}");
    assert!(err.to_string().contains("token"), "{err}");
    let weak = HttpConfig {
        token: Some("short".into()),
        ..config(None)
    };
    assert!(matches!(weak.validate(), Err(HttpError::WeakToken)));
    // The token never shows in Debug output.
    let dbg = format!("{:?}", config(Some(TOKEN)));
    assert!(!dbg.contains(TOKEN) && dbg.contains("redacted"), "{dbg}");
    let parsed: Result<HttpConfig, _> = toml::from_str("adress = \"127.0.0.1:1\"");
    assert!(parsed.is_err());
}

#[test]
fn malformed_and_oversized_requests_get_errors_not_panics() {
    let server = PreviewServer::start(&config(None), names()).unwrap();
    let addr = server.local_addr();
    let garbage: Vec<&[u8]> = vec![
        b"\x00\x01\x02\xff\xfe\r\n\r\n",
        b"GET\r\n\r\n",
        b"GET / HTTP/9\r\n\r\n",
        b"GET  /  HTTP/1.1\r\n\r\n",
        b"GET / HTTP/1.1\r\nbad header line\r\n\r\n",
        b"\r\n\r\n",
    ];
    for g in garbage {
        let (st, _, _) = raw(addr, g);
        assert_eq!(st, 400, "{:?}", String::from_utf8_lossy(g));
    }
    // Oversized head: 431.
    let mut big = b"GET / HTTP/1.1\r\nX-Pad: ".to_vec();
    big.extend(std::iter::repeat_n(b'a', 20_000));
    big.extend_from_slice(b"\r\n\r\n");
    assert_eq!(raw(addr, &big).0, 431);
    // A client that sends half a request and disappears.
    {
        let mut s = TcpStream::connect(addr).unwrap();
        s.write_all(b"GET / HT").unwrap();
    }
    // Still serving.
    assert_eq!(get(addr, "/", "").0, 200);
}

#[test]
fn excess_connections_get_503_and_slots_are_released() {
    let cfg = HttpConfig {
        max_connections: 3,
        ..config(None)
    };
    let server = PreviewServer::start(&cfg, names()).unwrap();
    let addr = server.local_addr();
    // Three idle connections fill the limit.
    let idle: Vec<TcpStream> = (0..3).map(|_| TcpStream::connect(addr).unwrap()).collect();
    std::thread::sleep(Duration::from_millis(200));
    let (st, _, body) = get(addr, "/", "");
    assert_eq!(st, 503, "{}", String::from_utf8_lossy(&body));
    drop(idle);
    // Slots come back once the server notices the closed connections.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        if get(addr, "/", "").0 == 200 {
            break;
        }
        assert!(Instant::now() < deadline, "slots were not released");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Read one multipart part from the MJPEG stream.
fn read_part(s: &mut TcpStream, buf: &mut Vec<u8>) -> Vec<u8> {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        if let Some(start) = buf.windows(14).position(|w| w == b"--fashionframe") {
            if let Some(hend) = buf[start..].windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&buf[start..start + hend]).to_string();
                let len: usize = head
                    .lines()
                    .find_map(|l| l.strip_prefix("Content-Length: "))
                    .unwrap()
                    .trim()
                    .parse()
                    .unwrap();
                let body_start = start + hend + 4;
                if buf.len() >= body_start + len {
                    let part = buf[body_start..body_start + len].to_vec();
                    buf.drain(..body_start + len);
                    return part;
                }
            }
        }
        assert!(Instant::now() < deadline, "no MJPEG part in time");
        let mut chunk = [0u8; 8192];
        let n = s.read(&mut chunk).unwrap();
        assert!(n > 0, "stream closed");
        buf.extend_from_slice(&chunk[..n]);
    }
}

#[test]
fn mjpeg_stream_sends_each_new_frame() {
    let server = PreviewServer::start(&config(None), names()).unwrap();
    let addr = server.local_addr();
    publish(&server, 1, 30);
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.write_all(b"GET /stream.mjpg HTTP/1.1\r\n\r\n").unwrap();
    let mut buf = Vec::new();
    while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
        let mut chunk = [0u8; 1];
        assert_eq!(
            s.read(&mut chunk).unwrap(),
            1,
            "stream closed before its head"
        );
        buf.push(chunk[0]);
    }
    let head = String::from_utf8_lossy(&buf).to_string();
    assert!(
        head.starts_with(
            "HTTP/1.1 200 OK\r\nContent-Type: multipart/x-mixed-replace; boundary=fashionframe"
        ),
        "{head}"
    );
    buf.clear();
    let first = read_part(&mut s, &mut buf);
    let a = image::load_from_memory(&first).unwrap().to_rgb8();
    assert!(a.get_pixel(40, 30)[0].abs_diff(30) < 8);
    publish(&server, 2, 220);
    let second = read_part(&mut s, &mut buf);
    let b = image::load_from_memory(&second).unwrap().to_rgb8();
    assert!(b.get_pixel(40, 30)[0].abs_diff(220) < 8);
    drop(s);
    server.shutdown();
}
