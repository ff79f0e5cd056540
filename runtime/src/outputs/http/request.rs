//! Reading and parsing one HTTP/1.x request head, bounded in size and time.

use std::io::{self, Read};

/// Why a request head could not be read.
#[derive(Debug)]
pub(crate) enum ReadError {
    /// The head did not end within the size limit (answer 431).
    TooLarge,
    /// Not a parseable HTTP/1.x request (answer 400).
    Malformed,
    /// The client went away or was too slow (no answer).
    Io(io::Error),
}

/// The parts of a request the preview server looks at.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Request {
    /// `GET`, `HEAD`, ...
    pub method: String,
    /// Path without the query, not decoded (our routes are plain ASCII).
    pub path: String,
    /// The `token` query parameter, percent-decoded.
    pub query_token: Option<String>,
    /// The `Authorization: Bearer` token.
    pub bearer: Option<String>,
}

/// Read bytes until the end of the head (`\r\n\r\n`), at most `max` bytes,
/// into `buf` (cleared first). Returns the head length.
pub(crate) fn read_head(
    r: &mut impl Read,
    buf: &mut Vec<u8>,
    max: usize,
) -> Result<usize, ReadError> {
    buf.clear();
    let mut chunk = [0u8; 1024];
    loop {
        let n = match r.read(&mut chunk) {
            Ok(0) => {
                return Err(ReadError::Io(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "client closed before the end of the request head",
                )))
            }
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(ReadError::Io(e)),
        };
        let search_from = buf.len().saturating_sub(3);
        buf.extend_from_slice(&chunk[..n]);
        if let Some(pos) = find_end(&buf[search_from..]) {
            let end = search_from + pos + 4;
            if end > max {
                return Err(ReadError::TooLarge);
            }
            return Ok(end);
        }
        if buf.len() >= max {
            return Err(ReadError::TooLarge);
        }
    }
}

fn find_end(b: &[u8]) -> Option<usize> {
    b.windows(4).position(|w| w == b"\r\n\r\n")
}

/// Parse a request head (request line and headers).
pub(crate) fn parse_head(head: &[u8]) -> Result<Request, ReadError> {
    let text = std::str::from_utf8(head).map_err(|_| ReadError::Malformed)?;
    let mut lines = text.split("\r\n");
    let request_line = lines.next().ok_or(ReadError::Malformed)?;
    let mut parts = request_line.split(' ');
    let (method, target, version) = match (parts.next(), parts.next(), parts.next(), parts.next()) {
        (Some(m), Some(t), Some(v), None) => (m, t, v),
        _ => return Err(ReadError::Malformed),
    };
    let method_ok =
        !method.is_empty() && method.len() <= 16 && method.bytes().all(|b| b.is_ascii_uppercase());
    if !method_ok || !version.starts_with("HTTP/1.") || !target.starts_with('/') {
        return Err(ReadError::Malformed);
    }
    if target.bytes().any(|b| b <= b' ' || b == 0x7f) {
        return Err(ReadError::Malformed);
    }
    let (path, query) = match target.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (target, None),
    };
    let query_token = query.and_then(|q| {
        q.split('&')
            .filter_map(|kv| kv.split_once('='))
            .find(|(k, _)| *k == "token")
            .and_then(|(_, v)| percent_decode(v))
    });
    let mut bearer = None;
    for line in lines {
        if line.is_empty() {
            continue;
        }
        let (name, value) = line.split_once(':').ok_or(ReadError::Malformed)?;
        if name.is_empty() || name.bytes().any(|b| b <= b' ') {
            return Err(ReadError::Malformed);
        }
        if name.eq_ignore_ascii_case("authorization") {
            let value = value.trim();
            if let Some((scheme, tok)) = value.split_once(' ') {
                if scheme.eq_ignore_ascii_case("bearer") {
                    bearer = Some(tok.trim().to_string());
                }
            }
        }
    }
    Ok(Request {
        method: method.to_string(),
        path: path.to_string(),
        query_token,
        bearer,
    })
}

/// Decode `%XX` escapes and `+` (space); `None` on bad escapes or non-UTF-8.
fn percent_decode(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' => {
                let hex = b.get(i + 1..i + 3)?;
                let hex = std::str::from_utf8(hex).ok()?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok()
}

/// Compare two secrets in time independent of where they differ.
pub(crate) fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_path_query_token_and_bearer() {
        let head = b"GET /state.json?a=1&token=s%20e+cret HTTP/1.1\r\nHost: x\r\nauthorization: Bearer abc \r\n\r\n";
        let r = parse_head(head).unwrap();
        assert_eq!(r.method, "GET");
        assert_eq!(r.path, "/state.json");
        assert_eq!(r.query_token.as_deref(), Some("s e cret"));
        assert_eq!(r.bearer.as_deref(), Some("abc"));
    }

    #[test]
    fn rejects_garbage() {
        for head in [
            &b"\xff\xfe\r\n\r\n"[..],
            b"GET\r\n\r\n",
            b"GET / HTTP/1.1 extra\r\n\r\n",
            b"get / HTTP/1.1\r\n\r\n",
            b"GET http://x/ HTTP/1.1\r\n\r\n",
            b"GET / SPDY/3\r\n\r\n",
            b"GET / HTTP/1.1\r\nno colon here\r\n\r\n",
            b"GET /?token=%zz HTTP/1.1\r\n\r\n",
        ] {
            let r = parse_head(head);
            if let Ok(req) = &r {
                assert_eq!(req.query_token, None, "{head:?}");
            } else {
                assert!(matches!(r, Err(ReadError::Malformed)), "{head:?}");
            }
        }
    }

    #[test]
    fn head_size_is_bounded() {
        let mut buf = Vec::new();
        let big = vec![b'a'; 10_000];
        assert!(matches!(
            read_head(&mut &big[..], &mut buf, 8192),
            Err(ReadError::TooLarge)
        ));
        let ok = b"GET / HTTP/1.1\r\n\r\nrest";
        assert_eq!(read_head(&mut &ok[..], &mut buf, 8192).unwrap(), 18);
        assert!(matches!(
            read_head(&mut &b"GET /"[..], &mut buf, 8192),
            Err(ReadError::Io(_))
        ));
    }

    #[test]
    fn constant_time_compare() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"ab"));
    }
}
