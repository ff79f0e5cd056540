//! The few MQTT 3.1.1 packets a publisher needs: encoding of CONNECT,
//! PUBLISH, PUBREL, PINGREQ, DISCONNECT and decoding of what a broker sends
//! back (CONNACK, PUBACK, PUBREC, PUBCOMP, PINGRESP).

/// Packet types (high nibble of the first byte).
pub(crate) mod kind {
    pub const CONNACK: u8 = 2;
    pub const PUBLISH: u8 = 3;
    pub const PUBACK: u8 = 4;
    pub const PUBREC: u8 = 5;
    pub const PUBCOMP: u8 = 7;
    pub const PINGRESP: u8 = 13;
}

/// A decoded incoming packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Incoming {
    /// Packet type.
    pub kind: u8,
    /// Packet identifier (PUBACK, PUBREC, PUBCOMP) or, for CONNACK, the
    /// return code.
    pub value: u16,
}

/// Why a buffer does not hold a valid packet.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum DecodeError {
    /// Invalid remaining length or body for the type.
    Malformed,
    /// Larger than the receive buffer allows.
    TooLarge,
}

/// Append the MQTT "remaining length" varint.
fn put_len(out: &mut Vec<u8>, mut len: usize) {
    loop {
        let mut b = (len % 128) as u8;
        len /= 128;
        if len > 0 {
            b |= 0x80;
        }
        out.push(b);
        if len == 0 {
            break;
        }
    }
}

fn put_str(out: &mut Vec<u8>, s: &[u8]) {
    out.extend_from_slice(&(s.len() as u16).to_be_bytes());
    out.extend_from_slice(s);
}

/// CONNECT with clean session. Strings must be shorter than 64 KiB
/// (checked by the config).
pub(crate) fn connect(
    out: &mut Vec<u8>,
    client_id: &str,
    keep_alive_s: u16,
    username: Option<&str>,
    password: Option<&[u8]>,
) {
    out.clear();
    let mut flags = 0x02u8; // clean session
    let mut len = 10 + 2 + client_id.len();
    if let Some(u) = username {
        flags |= 0x80;
        len += 2 + u.len();
        if let Some(p) = password {
            flags |= 0x40;
            len += 2 + p.len();
        }
    }
    out.push(0x10);
    put_len(out, len);
    put_str(out, b"MQTT");
    out.push(4); // protocol level 3.1.1
    out.push(flags);
    out.extend_from_slice(&keep_alive_s.to_be_bytes());
    put_str(out, client_id.as_bytes());
    if let Some(u) = username {
        put_str(out, u.as_bytes());
        if let Some(p) = password {
            put_str(out, p);
        }
    }
}

/// PUBLISH `payload` to `topic`; `id` is required for QoS 1 and 2.
pub(crate) fn publish(out: &mut Vec<u8>, topic: &str, qos: u8, id: u16, payload: &[u8]) {
    out.clear();
    out.push(0x30 | (qos << 1));
    let len = 2 + topic.len() + if qos > 0 { 2 } else { 0 } + payload.len();
    put_len(out, len);
    put_str(out, topic.as_bytes());
    if qos > 0 {
        out.extend_from_slice(&id.to_be_bytes());
    }
    out.extend_from_slice(payload);
}

/// PUBREL for QoS 2.
pub(crate) fn pubrel(id: u16) -> [u8; 4] {
    let [a, b] = id.to_be_bytes();
    [0x62, 2, a, b]
}

/// PINGREQ.
pub(crate) const PINGREQ: [u8; 2] = [0xC0, 0];
/// DISCONNECT.
pub(crate) const DISCONNECT: [u8; 2] = [0xE0, 0];

/// Try to decode one packet from the front of `buf`: `Ok(Some((packet,
/// consumed)))`, `Ok(None)` if more bytes are needed.
pub(crate) fn decode(buf: &[u8], max: usize) -> Result<Option<(Incoming, usize)>, DecodeError> {
    let Some(&first) = buf.first() else {
        return Ok(None);
    };
    let mut len = 0usize;
    let mut mult = 1usize;
    let mut i = 1;
    loop {
        let Some(&b) = buf.get(i) else {
            return Ok(None);
        };
        len += (b & 0x7f) as usize * mult;
        i += 1;
        if b & 0x80 == 0 {
            break;
        }
        mult *= 128;
        if i > 4 {
            return Err(DecodeError::Malformed);
        }
    }
    if i + len > max {
        return Err(DecodeError::TooLarge);
    }
    if buf.len() < i + len {
        return Ok(None);
    }
    let body = &buf[i..i + len];
    let kind = first >> 4;
    let be16 = |b: &[u8]| u16::from_be_bytes([b[0], b[1]]);
    let value = match kind {
        kind::CONNACK if len == 2 => body[1] as u16,
        kind::PUBACK | kind::PUBREC | kind::PUBCOMP if len == 2 => be16(body),
        kind::PINGRESP if len == 0 => 0,
        // A broker only sends PUBLISH if we subscribed (we do not); skip it.
        kind::PUBLISH => 0,
        _ => return Err(DecodeError::Malformed),
    };
    Ok(Some((Incoming { kind, value }, i + len)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connect_layout() {
        let mut b = Vec::new();
        connect(&mut b, "cam1", 30, Some("u"), Some(b"pw"));
        assert_eq!(
            b,
            [
                0x10, 23, 0, 4, b'M', b'Q', b'T', b'T', 4, 0xC2, 0, 30, 0, 4, b'c', b'a', b'm',
                b'1', 0, 1, b'u', 0, 2, b'p', b'w'
            ]
        );
    }

    #[test]
    fn publish_layout_and_long_length() {
        let mut b = Vec::new();
        publish(&mut b, "t", 1, 0x0102, &[7; 200]);
        // remaining = 2 + 1 + 2 + 200 = 205 = 0xCD -> [0xCD, 0x01]
        assert_eq!(&b[..8], &[0x32, 0xCD, 0x01, 0, 1, b't', 1, 2]);
        assert_eq!(b.len(), 3 + 205);
    }

    #[test]
    fn decodes_acks_partial_and_garbage() {
        assert_eq!(
            decode(&[0x20, 2, 0, 5], 64),
            Ok(Some((Incoming { kind: 2, value: 5 }, 4)))
        );
        assert_eq!(decode(&[0x40, 2, 1], 64), Ok(None));
        assert_eq!(
            decode(&[0x50, 2, 1, 2, 0xD0], 64),
            Ok(Some((
                Incoming {
                    kind: 5,
                    value: 258
                },
                4
            )))
        );
        assert_eq!(
            decode(&[0xD0, 0], 64),
            Ok(Some((Incoming { kind: 13, value: 0 }, 2)))
        );
        assert_eq!(decode(&[0x90, 3, 0, 1, 0], 64), Err(DecodeError::Malformed));
        assert_eq!(
            decode(&[0x40, 0xff, 0xff, 0xff, 0xff, 1], 64),
            Err(DecodeError::Malformed)
        );
        assert_eq!(decode(&[0x30, 0x80, 0x01], 64), Err(DecodeError::TooLarge));
    }
}
