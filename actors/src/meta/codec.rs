//! Byte encoding of the meta store's log and snapshot, for byte-oriented backends (the
//! in-memory one and `FsBackend`).
//!
//! A log is a sequence of frames: `len: u32 LE | crc32c(payload): u32 LE | payload`, where
//! the payload is a bincode [`LogRecord`]. A snapshot is one frame holding a [`MetaSnapshot`]
//! behind a magic and format version. Decoding never panics: a frame cut short at the end of
//! the data, or a damaged final frame, is a torn tail (the write that was in progress when the
//! process died) and is dropped; a damaged frame followed by more data is corruption, an
//! error, because dropping it would silently lose acknowledged writes after it.
//! Must not: know about backends, the actor, or files.

use super::state::{LogRecord, MetaSnapshot};
use super::BackendError;
use bincode::Options;

/// The largest payload one frame may hold. A length above it is damage, not a big record.
pub const FRAME_PAYLOAD_BYTES_MAX: usize = 64 << 20;
const FRAME_HEADER_BYTES: usize = 8;
const SNAPSHOT_MAGIC: &[u8; 8] = b"SHALEMS1";

fn options() -> impl Options {
    // Fixed-width integers keep the format easy to inspect; the limit stops a damaged length
    // inside a record from allocating without bound.
    bincode::DefaultOptions::new()
        .with_fixint_encoding()
        .with_limit(FRAME_PAYLOAD_BYTES_MAX as u64)
}

fn encode<T: serde::Serialize>(value: &T) -> Result<Vec<u8>, BackendError> {
    let payload = options()
        .serialize(value)
        .map_err(|e| BackendError::Encode(e.to_string()))?;
    if payload.len() > FRAME_PAYLOAD_BYTES_MAX {
        return Err(BackendError::Encode(format!(
            "record of {} bytes is over the frame limit",
            payload.len()
        )));
    }
    Ok(payload)
}

/// Append one framed record to `out`.
pub fn encode_frame<T: serde::Serialize>(value: &T, out: &mut Vec<u8>) -> Result<(), BackendError> {
    let payload = encode(value)?;
    let len = u32::try_from(payload.len())
        .map_err(|_| BackendError::Encode("frame length overflows u32".into()))?;
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(&crc32c::crc32c(&payload).to_le_bytes());
    out.extend_from_slice(&payload);
    Ok(())
}

/// Encode a log record as one frame.
pub fn encode_record(rec: &LogRecord) -> Result<Vec<u8>, BackendError> {
    let mut out = Vec::new();
    encode_frame(rec, &mut out)?;
    Ok(out)
}

/// What decoding a log found.
#[derive(Debug, Default)]
pub struct DecodedLog {
    pub records: Vec<LogRecord>,
    /// Bytes at the end that were a torn write and were dropped.
    pub torn_tail_bytes: u64,
}

fn read_u32(data: &[u8], at: usize) -> Option<u32> {
    let bytes: [u8; 4] = data.get(at..at.checked_add(4)?)?.try_into().ok()?;
    Some(u32::from_le_bytes(bytes))
}

/// Decode a whole log. See the module docs for the torn-tail rule.
pub fn decode_log(data: &[u8]) -> Result<DecodedLog, BackendError> {
    let mut out = DecodedLog::default();
    let mut at = 0usize;
    while at < data.len() {
        let rest = data.len() - at;
        let corrupt = |reason: String| BackendError::Corrupt {
            what: "meta log",
            offset: at as u64,
            reason,
        };
        let header = read_u32(data, at).zip(read_u32(data, at + 4));
        let Some((len, crc)) = header else {
            out.torn_tail_bytes = rest as u64;
            break;
        };
        let len = len as usize;
        let frame_end = at + FRAME_HEADER_BYTES + len;
        if len > FRAME_PAYLOAD_BYTES_MAX || frame_end > data.len() {
            // A frame that runs past the end is the write in progress at the crash. A huge
            // length in the middle cannot be told from that, except that nothing valid could
            // follow it; treating it as the tail is the only reading that is not a guess.
            out.torn_tail_bytes = rest as u64;
            break;
        }
        let payload = &data[at + FRAME_HEADER_BYTES..frame_end];
        let is_last = frame_end == data.len();
        if crc32c::crc32c(payload) != crc {
            if is_last {
                out.torn_tail_bytes = rest as u64;
                break;
            }
            return Err(corrupt(
                "checksum mismatch with more records after it".into(),
            ));
        }
        let rec: LogRecord = options()
            .deserialize(payload)
            .map_err(|e| corrupt(format!("checksum ok but undecodable: {e}")))?;
        out.records.push(rec);
        at = frame_end;
    }
    Ok(out)
}

/// Encode a snapshot: magic, then one frame.
pub fn encode_snapshot(snap: &MetaSnapshot) -> Result<Vec<u8>, BackendError> {
    let mut out = SNAPSHOT_MAGIC.to_vec();
    encode_frame(snap, &mut out)?;
    Ok(out)
}

/// Decode a snapshot. Snapshots are written whole and replaced atomically, so any damage
/// is corruption (there is no torn tail to forgive).
pub fn decode_snapshot(data: &[u8]) -> Result<MetaSnapshot, BackendError> {
    let corrupt = |reason: &str| BackendError::Corrupt {
        what: "meta snapshot",
        offset: 0,
        reason: reason.to_string(),
    };
    let body = data
        .strip_prefix(SNAPSHOT_MAGIC.as_slice())
        .ok_or_else(|| corrupt("bad magic"))?;
    let (len, crc) = read_u32(body, 0)
        .zip(read_u32(body, 4))
        .ok_or_else(|| corrupt("short header"))?;
    let payload = body
        .get(FRAME_HEADER_BYTES..)
        .filter(|p| p.len() == len as usize)
        .ok_or_else(|| corrupt("length does not match"))?;
    if crc32c::crc32c(payload) != crc {
        return Err(corrupt("checksum mismatch"));
    }
    options()
        .deserialize(payload)
        .map_err(|e| BackendError::Corrupt {
            what: "meta snapshot",
            offset: 0,
            reason: format!("undecodable: {e}"),
        })
}
