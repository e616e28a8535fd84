//! Wire framing: `magic, version, length, crc32c, payload`, with a bincode payload.
//!
//! A frame is a fixed 14-byte header followed by `length` payload bytes:
//!
//! | bytes | field | |
//! |---|---|---|
//! | 0..4 | magic | [`FRAME_MAGIC`] (`b"SHL1"`) |
//! | 4..6 | protocol version | u16 LE, must equal [`PROTOCOL_VERSION`] |
//! | 6..10 | payload length | u32 LE, at most `frame_size_max_bytes` |
//! | 10..14 | CRC32C of payload | u32 LE |
//!
//! The payload is bincode (fixed-width little-endian integers, no trailing bytes) and is
//! decoded with a byte limit equal to its length, so a length field *inside* the payload can
//! never make the decoder allocate more than the frame carried.
//!
//! Owns: the byte layout, the checks and their typed errors, buffer and async stream helpers.
//! Must not: know what the payload means, panic or unwrap on received bytes, or allocate more
//! than the declared (and already bounded) frame length.

use bincode::Options;
use serde::{de::DeserializeOwned, Serialize};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// First four bytes of every frame.
pub const FRAME_MAGIC: [u8; 4] = *b"SHL1";
/// The only protocol version this build speaks.
pub const PROTOCOL_VERSION: u16 = 1;
/// Bytes before the payload.
pub const FRAME_HEADER_LEN: usize = 14;
/// Default hard maximum payload size: 64 MiB.
pub const FRAME_SIZE_MAX_BYTES_DEFAULT: u32 = 64 * 1024 * 1024;

/// Why a frame was refused. Every variant closes the connection it arrived on.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    #[error("bad magic {found:02x?} (expected {FRAME_MAGIC:02x?})")]
    BadMagic { found: [u8; 4] },
    #[error("unsupported protocol version {found} (this build speaks {PROTOCOL_VERSION})")]
    BadVersion { found: u16 },
    #[error("frame payload of {len} bytes exceeds the maximum of {max} bytes")]
    Oversize { len: u64, max: u32 },
    #[error("payload crc32c {found:#010x} does not match header {expected:#010x}")]
    BadCrc { expected: u32, found: u32 },
    #[error("stream ended in the middle of a frame ({got} of {want} bytes)")]
    Truncated { got: usize, want: usize },
    #[error("payload does not decode: {0}")]
    Decode(#[source] bincode::Error),
    #[error("payload does not encode: {0}")]
    Encode(#[source] bincode::Error),
    #[error("i/o error: {0}")]
    Io(#[from] std::io::Error),
}

/// A parsed, checked header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FrameHeader {
    pub version: u16,
    pub len: u32,
    pub crc: u32,
}

/// The bincode configuration used on both ends, limited to `limit` bytes.
fn codec(limit: u64) -> impl Options {
    bincode::DefaultOptions::new()
        .with_fixint_encoding()
        .with_little_endian()
        .reject_trailing_bytes()
        .with_limit(limit)
}

/// Parse and check a header: magic, version, then length against `frame_size_max_bytes`.
pub fn parse_header(
    bytes: &[u8; FRAME_HEADER_LEN],
    frame_size_max_bytes: u32,
) -> Result<FrameHeader, FrameError> {
    let [m0, m1, m2, m3, v0, v1, l0, l1, l2, l3, c0, c1, c2, c3] = *bytes;
    let magic = [m0, m1, m2, m3];
    if magic != FRAME_MAGIC {
        return Err(FrameError::BadMagic { found: magic });
    }
    let version = u16::from_le_bytes([v0, v1]);
    if version != PROTOCOL_VERSION {
        return Err(FrameError::BadVersion { found: version });
    }
    let len = u32::from_le_bytes([l0, l1, l2, l3]);
    if len > frame_size_max_bytes {
        return Err(FrameError::Oversize {
            len: u64::from(len),
            max: frame_size_max_bytes,
        });
    }
    let crc = u32::from_le_bytes([c0, c1, c2, c3]);
    Ok(FrameHeader { version, len, crc })
}

/// Check the payload against its header's CRC and decode it.
pub fn decode_payload<T: DeserializeOwned>(
    header: &FrameHeader,
    payload: &[u8],
) -> Result<T, FrameError> {
    let want = header.len as usize;
    if payload.len() != want {
        return Err(FrameError::Truncated {
            got: payload.len(),
            want,
        });
    }
    let found = crc32c::crc32c(payload);
    if found != header.crc {
        return Err(FrameError::BadCrc {
            expected: header.crc,
            found,
        });
    }
    codec(u64::from(header.len))
        .deserialize(payload)
        .map_err(FrameError::Decode)
}

/// Append one frame carrying `msg` to `out`. Fails with `Oversize` (leaving `out` as it was)
/// if the encoded payload would exceed `frame_size_max_bytes`.
pub fn encode_into<T: Serialize>(
    msg: &T,
    out: &mut Vec<u8>,
    frame_size_max_bytes: u32,
) -> Result<(), FrameError> {
    let len = codec(u64::from(frame_size_max_bytes))
        .serialized_size(msg)
        .map_err(|e| match *e {
            bincode::ErrorKind::SizeLimit => FrameError::Oversize {
                len: u64::from(frame_size_max_bytes) + 1,
                max: frame_size_max_bytes,
            },
            _ => FrameError::Encode(e),
        })?;
    let len32 = u32::try_from(len)
        .ok()
        .filter(|l| *l <= frame_size_max_bytes)
        .ok_or(FrameError::Oversize {
            len,
            max: frame_size_max_bytes,
        })?;
    let start = out.len();
    out.extend_from_slice(&[0u8; FRAME_HEADER_LEN]);
    if let Err(e) = codec(u64::from(frame_size_max_bytes)).serialize_into(&mut *out, msg) {
        out.truncate(start);
        return Err(FrameError::Encode(e));
    }
    let payload = &out[start + FRAME_HEADER_LEN..];
    assert_eq!(
        payload.len() as u64,
        len,
        "bincode serialized_size disagrees with serialize"
    );
    let crc = crc32c::crc32c(payload);
    let header = &mut out[start..start + FRAME_HEADER_LEN];
    header[0..4].copy_from_slice(&FRAME_MAGIC);
    header[4..6].copy_from_slice(&PROTOCOL_VERSION.to_le_bytes());
    header[6..10].copy_from_slice(&len32.to_le_bytes());
    header[10..14].copy_from_slice(&crc.to_le_bytes());
    Ok(())
}

/// One frame carrying `msg`, as bytes.
pub fn encode<T: Serialize>(msg: &T, frame_size_max_bytes: u32) -> Result<Vec<u8>, FrameError> {
    let mut out = Vec::new();
    encode_into(msg, &mut out, frame_size_max_bytes)?;
    Ok(out)
}

/// Decode the first frame in `buf`. `Ok(None)` means `buf` holds only part of a frame (read
/// more); `Ok(Some((msg, used)))` gives the message and how many bytes it took. A bad header is
/// reported as soon as the header is complete, before any payload arrives.
pub fn decode<T: DeserializeOwned>(
    buf: &[u8],
    frame_size_max_bytes: u32,
) -> Result<Option<(T, usize)>, FrameError> {
    let Some(head) = buf.first_chunk::<FRAME_HEADER_LEN>() else {
        return Ok(None);
    };
    let header = parse_header(head, frame_size_max_bytes)?;
    let end = FRAME_HEADER_LEN + header.len as usize;
    let Some(payload) = buf.get(FRAME_HEADER_LEN..end) else {
        return Ok(None);
    };
    Ok(Some((decode_payload(&header, payload)?, end)))
}

/// Decode a buffer that must hold exactly one whole frame; a short buffer is `Truncated`.
pub fn decode_exact<T: DeserializeOwned>(
    buf: &[u8],
    frame_size_max_bytes: u32,
) -> Result<T, FrameError> {
    match decode(buf, frame_size_max_bytes)? {
        Some((msg, used)) if used == buf.len() => Ok(msg),
        Some((_, used)) => Err(FrameError::Decode(Box::new(bincode::ErrorKind::Custom(
            format!("{} bytes after the frame", buf.len() - used),
        )))),
        None => {
            let want = match buf.first_chunk::<FRAME_HEADER_LEN>() {
                Some(head) => {
                    FRAME_HEADER_LEN + parse_header(head, frame_size_max_bytes)?.len as usize
                }
                None => FRAME_HEADER_LEN,
            };
            Err(FrameError::Truncated {
                got: buf.len(),
                want,
            })
        }
    }
}

/// Payload bytes read per step: the buffer grows by at most this much ahead of what arrived.
const READ_STEP_BYTES: usize = 64 * 1024;

/// Read one frame from `r`. `Ok(None)` is a clean end of stream at a frame boundary; an end of
/// stream anywhere else is `Truncated`. The payload buffer grows in steps of at most 64 KiB as
/// bytes arrive, so a peer that announces a large frame and sends nothing costs little.
///
/// Reads go straight to `r`: give it a buffered reader, or every frame costs several system
/// calls.
pub async fn read_frame<T, R>(r: &mut R, frame_size_max_bytes: u32) -> Result<Option<T>, FrameError>
where
    T: DeserializeOwned,
    R: AsyncRead + Unpin,
{
    let mut head = [0u8; FRAME_HEADER_LEN];
    let mut got = 0;
    while got < FRAME_HEADER_LEN {
        let n = r.read(&mut head[got..]).await?;
        if n == 0 {
            if got == 0 {
                return Ok(None);
            }
            return Err(FrameError::Truncated {
                got,
                want: FRAME_HEADER_LEN,
            });
        }
        got += n;
    }
    let header = parse_header(&head, frame_size_max_bytes)?;
    let want = header.len as usize;
    let mut payload = Vec::new();
    while payload.len() < want {
        let filled = payload.len();
        payload.resize(filled + (want - filled).min(READ_STEP_BYTES), 0);
        let mut at = filled;
        while at < payload.len() {
            let n = r.read(&mut payload[at..]).await?;
            if n == 0 {
                return Err(FrameError::Truncated {
                    got: FRAME_HEADER_LEN + at,
                    want: FRAME_HEADER_LEN + want,
                });
            }
            at += n;
        }
    }
    decode_payload(&header, &payload).map(Some)
}

/// Encode `msg` as one frame, write it and flush (the simulated stream sends on flush).
/// Encoding happens before the returned future first waits, so it does not hold `msg`.
pub fn write_frame<'w, T, W>(
    w: &'w mut W,
    msg: &T,
    frame_size_max_bytes: u32,
) -> impl std::future::Future<Output = Result<(), FrameError>> + 'w
where
    T: Serialize,
    W: AsyncWrite + Unpin,
{
    let bytes = encode(msg, frame_size_max_bytes);
    async move {
        let bytes = bytes?;
        w.write_all(&bytes).await?;
        w.flush().await?;
        Ok(())
    }
}

#[cfg(test)]
#[path = "frame_tests.rs"]
mod tests;
