//! The publisher thread: connect (TCP, optionally TLS), publish queued
//! results, keep the connection alive, reconnect with backoff.

use std::io::{self, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::config::Settings;
use super::packet::{self, kind, DecodeError, Incoming};
use super::MqttStats;
use crate::outputs::OwnedNames;
use crate::result::FrameResult;

/// How long to wait for the TCP connection, the CONNACK and each ack.
const IO_TIMEOUT: Duration = Duration::from_secs(5);
/// First reconnection wait.
const MIN_BACKOFF: Duration = Duration::from_millis(500);
/// Incoming packets are tiny; anything bigger is a protocol error.
const MAX_INCOMING: usize = 64 * 1024;

enum Transport {
    Plain(TcpStream),
    Tls(Box<rustls::StreamOwned<rustls::ClientConnection, TcpStream>>),
}

impl Transport {
    fn tcp(&self) -> &TcpStream {
        match self {
            Self::Plain(s) => s,
            Self::Tls(s) => &s.sock,
        }
    }
}

impl Read for Transport {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Self::Plain(s) => s.read(buf),
            Self::Tls(s) => s.read(buf),
        }
    }
}

impl Write for Transport {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Self::Plain(s) => s.write(buf),
            Self::Tls(s) => s.write(buf),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        match self {
            Self::Plain(s) => s.flush(),
            Self::Tls(s) => s.flush(),
        }
    }
}

/// One connection to the broker.
struct Session {
    io: Transport,
    inbuf: Vec<u8>,
    last_sent: Instant,
    next_id: u16,
}

fn broken(msg: &str) -> io::Error {
    io::Error::new(io::ErrorKind::ConnectionAborted, msg.to_string())
}

impl Session {
    fn connect(s: &Settings, out: &mut Vec<u8>) -> io::Result<Self> {
        let addrs = (s.host.as_str(), s.port).to_socket_addrs()?;
        let mut last_err = io::Error::new(
            io::ErrorKind::NotFound,
            "broker name resolved to no address",
        );
        let mut tcp = None;
        for a in addrs {
            match TcpStream::connect_timeout(&a, IO_TIMEOUT) {
                Ok(t) => {
                    tcp = Some(t);
                    break;
                }
                Err(e) => last_err = e,
            }
        }
        let tcp = tcp.ok_or(last_err)?;
        tcp.set_nodelay(true)?;
        tcp.set_write_timeout(Some(IO_TIMEOUT))?;
        let io = match &s.tls {
            None => Transport::Plain(tcp),
            Some(cfg) => {
                let name = rustls::pki_types::ServerName::try_from(s.host.clone())
                    .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e.to_string()))?;
                let conn = rustls::ClientConnection::new(cfg.clone(), name)
                    .map_err(|e| io::Error::other(e.to_string()))?;
                Transport::Tls(Box::new(rustls::StreamOwned::new(conn, tcp)))
            }
        };
        let mut session = Self {
            io,
            inbuf: Vec::with_capacity(1024),
            last_sent: Instant::now(),
            next_id: 0,
        };
        let password = s.password.as_ref().map(|p| p.0.as_slice());
        let keep_alive = s.keep_alive.as_secs().min(u16::MAX as u64) as u16;
        packet::connect(
            out,
            &s.client_id,
            keep_alive,
            s.username.as_deref(),
            password,
        );
        session.send(out)?;
        // Do not keep the password around in the reused buffer.
        out.iter_mut().for_each(|b| *b = 0);
        match session.read_packet(Instant::now() + IO_TIMEOUT)? {
            Some(Incoming {
                kind: kind::CONNACK,
                value: 0,
            }) => Ok(session),
            Some(Incoming {
                kind: kind::CONNACK,
                value: code,
            }) => Err(io::Error::new(
                io::ErrorKind::PermissionDenied,
                format!("broker refused the connection: {}", connack_reason(code)),
            )),
            Some(_) => Err(broken("broker sent something other than CONNACK")),
            None => Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "no CONNACK from the broker",
            )),
        }
    }

    fn send(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.io.write_all(bytes)?;
        self.io.flush()?;
        self.last_sent = Instant::now();
        Ok(())
    }

    /// Read until one packet is complete or `deadline` passes (`None`).
    fn read_packet(&mut self, deadline: Instant) -> io::Result<Option<Incoming>> {
        let mut chunk = [0u8; 512];
        loop {
            match packet::decode(&self.inbuf, MAX_INCOMING) {
                Ok(Some((p, used))) => {
                    self.inbuf.drain(..used);
                    return Ok(Some(p));
                }
                Ok(None) => {}
                Err(DecodeError::Malformed) => {
                    return Err(broken("malformed packet from the broker"))
                }
                Err(DecodeError::TooLarge) => {
                    return Err(broken("oversized packet from the broker"))
                }
            }
            let now = Instant::now();
            if now >= deadline {
                return Ok(None);
            }
            let wait = (deadline - now).max(Duration::from_millis(1));
            self.io.tcp().set_read_timeout(Some(wait))?;
            match self.io.read(&mut chunk) {
                Ok(0) => return Err(broken("broker closed the connection")),
                Ok(n) => self.inbuf.extend_from_slice(&chunk[..n]),
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) =>
                {
                    if Instant::now() >= deadline {
                        return Ok(None);
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }

    /// Handle whatever the broker sent meanwhile (PINGRESP, stray acks);
    /// detects a closed connection before the next publish.
    fn poll(&mut self) -> io::Result<()> {
        while self.read_packet(Instant::now())?.is_some() {}
        Ok(())
    }

    /// Wait for the packet `want` with identifier `id`, skipping others.
    fn expect(&mut self, want: u8, id: u16) -> io::Result<()> {
        let deadline = Instant::now() + IO_TIMEOUT;
        loop {
            match self.read_packet(deadline)? {
                Some(p) if p.kind == want && p.value == id => return Ok(()),
                Some(_) => continue,
                None => {
                    return Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        "no acknowledgement from the broker",
                    ))
                }
            }
        }
    }

    fn publish(&mut self, s: &Settings, payload: &[u8], out: &mut Vec<u8>) -> io::Result<()> {
        self.poll()?;
        self.next_id = self.next_id.checked_add(1).unwrap_or(1);
        let id = self.next_id;
        packet::publish(out, &s.topic, s.qos, id, payload);
        self.send(out)?;
        match s.qos {
            1 => self.expect(kind::PUBACK, id),
            2 => {
                self.expect(kind::PUBREC, id)?;
                self.send(&packet::pubrel(id))?;
                self.expect(kind::PUBCOMP, id)
            }
            _ => Ok(()),
        }
    }

    fn keep_alive(&mut self, s: &Settings) -> io::Result<()> {
        self.poll()?;
        if self.last_sent.elapsed() >= s.keep_alive / 2 {
            self.send(&packet::PINGREQ)?;
        }
        Ok(())
    }

    fn disconnect(mut self) {
        let _ = self.send(&packet::DISCONNECT);
        if let Transport::Tls(t) = &mut self.io {
            t.conn.send_close_notify();
            let _ = t.flush();
        }
    }
}

fn connack_reason(code: u16) -> &'static str {
    match code {
        1 => "unacceptable protocol version",
        2 => "client id rejected",
        3 => "server unavailable",
        4 => "bad user name or password",
        5 => "not authorized",
        _ => "unknown reason",
    }
}

/// The publisher thread's main loop. Returns when the queue is closed (and
/// drained) or `stop` is set.
pub(crate) fn run(
    s: Settings,
    names: OwnedNames,
    rx: Receiver<FrameResult>,
    stats: Arc<MqttStats>,
    stop: Arc<AtomicBool>,
) {
    let mut out = Vec::with_capacity(8 * 1024);
    let mut json = String::with_capacity(4 * 1024);
    let mut backoff = MIN_BACKOFF;
    let mut failures = 0u64;
    let broker = format!("{}:{}", s.host, s.port);
    // Set once the frame loop closed the queue (shutdown).
    let mut closed = false;
    while !stop.load(Ordering::SeqCst) && !closed {
        let mut session = match Session::connect(&s, &mut out) {
            Ok(sess) => sess,
            Err(e) => {
                failures += 1;
                // Log failures 1, 2, 4, 8, ... (no secrets in
                // these messages: only the address and the I/O error).
                if failures.is_power_of_two() {
                    tracing::warn!("MQTT broker {broker} unreachable ({e}); retrying in {backoff:?} (attempt {failures})");
                }
                closed = drop_for(&rx, backoff, &stats, &stop);
                backoff = (backoff * 2).min(s.max_backoff.max(MIN_BACKOFF));
                continue;
            }
        };
        stats.connects.fetch_add(1, Ordering::Relaxed);
        tracing::info!("MQTT connected to {broker} (after {failures} failed attempts)");
        failures = 0;
        backoff = MIN_BACKOFF;
        let tick = (s.keep_alive / 4).max(Duration::from_millis(100));
        let result = loop {
            if stop.load(Ordering::SeqCst) {
                break Ok(());
            }
            match rx.recv_timeout(tick) {
                Ok(frame) => {
                    frame.write_json(&names.view(), &mut json);
                    match session.publish(&s, json.as_bytes(), &mut out) {
                        Ok(()) => {
                            stats.sent.fetch_add(1, Ordering::Relaxed);
                        }
                        Err(e) => {
                            stats.dropped.fetch_add(1, Ordering::Relaxed);
                            break Err(e);
                        }
                    }
                }
                Err(RecvTimeoutError::Timeout) => {
                    if let Err(e) = session.keep_alive(&s) {
                        break Err(e);
                    }
                }
                Err(RecvTimeoutError::Disconnected) => {
                    closed = true;
                    break Ok(());
                }
            }
        };
        match result {
            Ok(()) => session.disconnect(),
            Err(e) => tracing::warn!("MQTT connection to {broker} lost: {e}"),
        }
    }
}

/// Sleep for `wait` while dropping whatever the frame loop queues. Returns
/// true if the queue was closed.
fn drop_for(
    rx: &Receiver<FrameResult>,
    wait: Duration,
    stats: &MqttStats,
    stop: &AtomicBool,
) -> bool {
    let deadline = Instant::now() + wait;
    loop {
        let now = Instant::now();
        if now >= deadline || stop.load(Ordering::SeqCst) {
            return false;
        }
        match rx.recv_timeout((deadline - now).min(Duration::from_millis(100))) {
            Ok(_) => {
                stats.dropped.fetch_add(1, Ordering::Relaxed);
            }
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => return true,
        }
    }
}
