//! Byte encoding of the meta store's log and snapshot, for byte-oriented backends (the
//! in-memory one and `FsBackend`), and the meta store's format version.
//!
//! A log is a sequence of frames: `len: u32 LE | crc32c(payload): u32 LE | payload`, where
//! the payload is a bincode [`LogRecord`]. Decoding never panics: a frame cut short at the end
//! of the data, or a damaged final frame, is a torn tail (the write that was in progress when
//! the process died) and is dropped; a damaged frame followed by more data is corruption, an
//! error, because dropping it would silently lose acknowledged writes after it.
//!
//! Format versions ([`META_FORMAT_VERSION`]): bincode is not self-describing, so every file
//! says which encoding it holds. A *format header* is one ordinary frame whose 12-byte payload
//! is an 8-byte magic and the version (`u32 LE`): checksummed like any frame, and never
//! mistaken for a record (a bincode [`LogRecord`] is always longer than 12 bytes).
//! - A log file starts with a header (magic `SHALEMLG`) written when the file is created
//!   ([`encode_log_header`]). A log without one was written before format versions and is
//!   version 1. A torn or damaged header with nothing after it is a torn tail like any other
//!   (an empty log); with records after it, corruption.
//! - A snapshot is a header (magic `SHALEMSN`) then one frame holding a [`MetaSnapshot`]. A
//!   snapshot starting with the 8 bytes `SHALEMS1` (then one frame) was written before format
//!   versions and is version 1.
//!
//! A version above [`META_FORMAT_VERSION`] is refused with
//! [`BackendError::UnsupportedFormat`] before anything after the header is decoded: data from
//! a newer build is never misread. Builds from before format versions cannot read versioned
//! files; they fail loudly (a snapshot with a bad magic; a header frame that does not decode
//! as a record), never by dropping records.
//! Must not: know about backends, the actor, or files.

use super::state::{LogRecord, MetaSnapshot};
use super::BackendError;
use bincode::Options;

/// The largest payload one frame may hold. A length above it is damage, not a big record.
pub const FRAME_PAYLOAD_BYTES_MAX: usize = 64 << 20;
const FRAME_HEADER_BYTES: usize = 8;

/// The format version of everything the meta store persists: the bincode encoding of
/// [`LogRecord`], [`MetaSnapshot`] and every type inside them (records, `IdMarks`, `StatRow`,
/// retry entries, ...), in every backend (these files, and the MySQL backend's row bodies).
///
/// Bump it whenever any persisted type's bincode encoding changes (a field added, removed,
/// reordered or retyped; an enum variant added, removed or reordered, even at the end, since
/// older builds cannot read it), and in the same change add a path for the older version:
/// decode it with the old types and convert (a migration), or refuse it with a clear error.
/// Data with a version above this one is always refused ([`BackendError::UnsupportedFormat`]),
/// so an older build meets a newer build's data with that error, never a misdecode.
pub const META_FORMAT_VERSION: u32 = 1;

/// Magic of a log file's format header.
const LOG_MAGIC: &[u8; 8] = b"SHALEMLG";
/// Magic of a snapshot's format header.
const SNAPSHOT_MAGIC: &[u8; 8] = b"SHALEMSN";
/// The start of a snapshot written before format versions (version 1): this magic, then one
/// frame, no header.
const LEGACY_SNAPSHOT_MAGIC: &[u8; 8] = b"SHALEMS1";
/// Payload of a format header: magic and version.
const HEADER_PAYLOAD_BYTES: usize = 12;
/// Bytes of a whole format header frame at the start of a file.
pub const FORMAT_HEADER_BYTES: usize = FRAME_HEADER_BYTES + HEADER_PAYLOAD_BYTES;

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

/// Append a format header (`magic`, `version`) to `out`.
fn encode_header(magic: &[u8; 8], version: u32, out: &mut Vec<u8>) {
    let mut payload = [0u8; HEADER_PAYLOAD_BYTES];
    payload[..8].copy_from_slice(magic);
    payload[8..].copy_from_slice(&version.to_le_bytes());
    out.extend_from_slice(&(HEADER_PAYLOAD_BYTES as u32).to_le_bytes());
    out.extend_from_slice(&crc32c::crc32c(&payload).to_le_bytes());
    out.extend_from_slice(&payload);
}

/// The version stated by a whole, intact format header with `magic` at the start of `data`;
/// None if `data` does not start with one (no header, another magic, torn or damaged).
fn read_header(data: &[u8], magic: &[u8; 8]) -> Option<u32> {
    let len = read_u32(data, 0)?;
    let crc = read_u32(data, 4)?;
    let payload = data.get(FRAME_HEADER_BYTES..FORMAT_HEADER_BYTES)?;
    if len as usize != HEADER_PAYLOAD_BYTES
        || crc32c::crc32c(payload) != crc
        || !payload.starts_with(magic)
    {
        return None;
    }
    read_u32(payload, 8)
}

/// Accept a format version this build can read (returned as is); refuse a newer one with
/// [`BackendError::UnsupportedFormat`] and 0 (never written) as corruption. `what` names the
/// data in the error. Backends that store the version elsewhere (the MySQL one) use it too.
pub fn check_version(what: &'static str, found: u32) -> Result<u32, BackendError> {
    if found == 0 {
        return Err(BackendError::Corrupt {
            what,
            offset: 0,
            reason: "format version 0 is never written".into(),
        });
    }
    if found > META_FORMAT_VERSION {
        return Err(BackendError::UnsupportedFormat {
            what,
            found,
            supported: META_FORMAT_VERSION,
        });
    }
    Ok(found)
}

/// Append the header every log file starts with (call it when creating the file).
pub fn encode_log_header(out: &mut Vec<u8>) {
    encode_header(LOG_MAGIC, META_FORMAT_VERSION, out);
}

/// A log header stating `version`, for tests of what a newer build would write.
#[cfg(any(test, feature = "testkit"))]
pub fn encode_log_header_as(version: u32, out: &mut Vec<u8>) {
    encode_header(LOG_MAGIC, version, out);
}

/// The format version the first bytes of a log file state, if they hold a whole, intact
/// header; None for a log from before format versions (version 1) or a torn header (which
/// [`decode_log`] reads as a torn tail). Refuses a version this build cannot read. Lets a
/// backend check the format without reading the whole file.
pub fn peek_log_version(prefix: &[u8]) -> Result<Option<u32>, BackendError> {
    read_header(prefix, LOG_MAGIC)
        .map(|v| check_version("meta log", v))
        .transpose()
}

/// The format version the first bytes of a snapshot state (1 for one from before format
/// versions); None if they are neither kind of header (which [`decode_snapshot`] reports as
/// corruption). Refuses a version this build cannot read.
pub fn peek_snapshot_version(prefix: &[u8]) -> Result<Option<u32>, BackendError> {
    if prefix.starts_with(LEGACY_SNAPSHOT_MAGIC) {
        return Ok(Some(1));
    }
    read_header(prefix, SNAPSHOT_MAGIC)
        .map(|v| check_version("meta snapshot", v))
        .transpose()
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
    /// The format version the log's header states; 1 for a log without a header (written
    /// before format versions, or whose header was torn).
    pub format_version: u32,
}

fn read_u32(data: &[u8], at: usize) -> Option<u32> {
    let bytes: [u8; 4] = data.get(at..at.checked_add(4)?)?.try_into().ok()?;
    Some(u32::from_le_bytes(bytes))
}

// Every version up to META_FORMAT_VERSION must decode. Only version 1 exists, read with
// today's types; a bump must first teach `decode_log` and `decode_snapshot` the older
// version (a migration) or a clear refusal.
const _: () = assert!(
    META_FORMAT_VERSION == 1,
    "decode (or refuse) older meta format versions in decode_log and decode_snapshot"
);

/// Decode a whole log, with or without a format header. See the module docs for the
/// torn-tail and version rules.
pub fn decode_log(data: &[u8]) -> Result<DecodedLog, BackendError> {
    let mut out = DecodedLog {
        format_version: 1,
        ..DecodedLog::default()
    };
    let mut at = 0usize;
    if let Some(version) = peek_log_version(data)? {
        // Only version 1 exists so far; a later version decodes older logs here.
        out.format_version = version;
        at = FORMAT_HEADER_BYTES;
    }
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

/// Encode a snapshot: a format header, then one frame.
pub fn encode_snapshot(snap: &MetaSnapshot) -> Result<Vec<u8>, BackendError> {
    encode_snapshot_with_version(snap, META_FORMAT_VERSION)
}

/// A snapshot whose header states `version` (tests of what a newer build would write).
#[cfg(any(test, feature = "testkit"))]
pub fn encode_snapshot_as(snap: &MetaSnapshot, version: u32) -> Result<Vec<u8>, BackendError> {
    encode_snapshot_with_version(snap, version)
}

fn encode_snapshot_with_version(
    snap: &MetaSnapshot,
    version: u32,
) -> Result<Vec<u8>, BackendError> {
    let mut out = Vec::new();
    encode_header(SNAPSHOT_MAGIC, version, &mut out);
    encode_frame(snap, &mut out)?;
    Ok(out)
}

/// A snapshot as builds before format versions wrote it (`SHALEMS1`, then one frame), for
/// tests that such snapshots still load.
#[cfg(any(test, feature = "testkit"))]
pub fn encode_legacy_snapshot(snap: &MetaSnapshot) -> Result<Vec<u8>, BackendError> {
    let mut out = LEGACY_SNAPSHOT_MAGIC.to_vec();
    encode_frame(snap, &mut out)?;
    Ok(out)
}

/// Decode a snapshot, versioned or from before format versions. Snapshots are written whole
/// and replaced atomically, so any damage is corruption (there is no torn tail to forgive).
pub fn decode_snapshot(data: &[u8]) -> Result<MetaSnapshot, BackendError> {
    let corrupt = |reason: &str| BackendError::Corrupt {
        what: "meta snapshot",
        offset: 0,
        reason: reason.to_string(),
    };
    // Only version 1 exists so far; a later version decodes older snapshots here.
    let body_at = match peek_snapshot_version(data)? {
        Some(_) if data.starts_with(LEGACY_SNAPSHOT_MAGIC) => LEGACY_SNAPSHOT_MAGIC.len(),
        Some(_) => FORMAT_HEADER_BYTES,
        None => return Err(corrupt("bad magic or damaged format header")),
    };
    let body = data.get(body_at..).ok_or_else(|| corrupt("short header"))?;
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
