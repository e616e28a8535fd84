//! Record framing shared by the WAL and the MANIFEST: length-prefixed, checksummed records.
//!
//! Layout of one record (little endian):
//! ```text
//! header_crc(4) | payload_crc(4) | len(4) | type(1) | payload(len)
//! ```
//! `payload_crc` is the CRC32C of `type | payload`; `header_crc` covers
//! `payload_crc | len | type`, so a flipped length is caught before it is trusted. Both are
//! masked (as LevelDB does) so that a payload that is itself a CRC has no fixed point. Records
//! are not split into fixed blocks: a log is read whole (a WAL is bounded by the memtable
//! budget, a manifest by `manifest_size_max_bytes`), so resynchronising is never needed.
//!
//! Reading. A **torn tail** is what an interrupted, never-acknowledged append leaves: a header
//! cut short, a good header whose payload runs past the end of the file, a bad payload in the
//! record that ends exactly at the end of the file, or only zero bytes (preallocated space).
//! The reader stops there and reports how many bytes it dropped. Anything else that fails a
//! check (a bad header, or a bad payload with bytes after it) is **corruption** in the middle
//! of the log and an error. A damaged record is never returned as data.
//!
//! Must not: interpret payloads (that is the WAL's and the manifest's business).

use std::sync::Arc;

use crate::error::{StorageError, StorageResult};
use crate::fs::{FileStore, ReadableFile};

pub const HEADER_LEN: usize = 13;
/// The largest payload a record may carry; a larger length field is corruption.
pub const RECORD_LEN_MAX: usize = 1 << 30;
const MASK_DELTA: u32 = 0xa282_ead8;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum RecordType {
    /// A WAL record: one encoded write batch with its first sequence number.
    WriteBatch = 1,
    /// A MANIFEST record: one encoded version edit.
    VersionEdit = 2,
}

impl RecordType {
    fn from_u8(b: u8) -> Option<RecordType> {
        match b {
            1 => Some(RecordType::WriteBatch),
            2 => Some(RecordType::VersionEdit),
            _ => None,
        }
    }
}

fn mask(crc: u32) -> u32 {
    crc.rotate_right(15).wrapping_add(MASK_DELTA)
}

fn payload_crc(ty: u8, payload: &[u8]) -> u32 {
    mask(crc32c::crc32c_append(crc32c::crc32c(&[ty]), payload))
}

fn header_crc(rest: &[u8]) -> u32 {
    mask(crc32c::crc32c(rest))
}

/// Append one framed record to `out`.
pub fn encode_record(out: &mut Vec<u8>, ty: RecordType, payload: &[u8]) {
    assert!(
        payload.len() <= RECORD_LEN_MAX,
        "record payload over RECORD_LEN_MAX"
    );
    let mut hdr = [0u8; HEADER_LEN - 4];
    hdr[0..4].copy_from_slice(&payload_crc(ty as u8, payload).to_le_bytes());
    hdr[4..8].copy_from_slice(&(payload.len() as u32).to_le_bytes());
    hdr[8] = ty as u8;
    out.extend_from_slice(&header_crc(&hdr).to_le_bytes());
    out.extend_from_slice(&hdr);
    out.extend_from_slice(payload);
}

/// Everything a log held, up to a torn tail.
#[derive(Debug, Default)]
pub struct LogContents {
    pub records: Vec<(RecordType, Vec<u8>)>,
    /// Bytes after the last good record that were dropped as a torn tail.
    pub torn_tail_bytes: u64,
}

/// Read every record of the log at `path`.
pub fn read_log(fs: &dyn FileStore, path: &str) -> StorageResult<LogContents> {
    let file: Arc<dyn ReadableFile> = fs.open(path)?;
    let len = usize::try_from(file.len())
        .map_err(|_| StorageError::corruption(path, "log larger than memory"))?;
    let mut buf = vec![0u8; len];
    file.read_at(0, &mut buf)?;
    parse_log(&buf, path)
}

/// Split a whole log image into records (see the module doc for the tail rules).
pub fn parse_log(buf: &[u8], path: &str) -> StorageResult<LogContents> {
    let mut out = LogContents::default();
    let mut pos = 0usize;
    while pos < buf.len() {
        let rest = &buf[pos..];
        let tail = |out: &mut LogContents| {
            out.torn_tail_bytes = rest.len() as u64;
            tracing::debug!(
                path,
                offset = pos,
                bytes = rest.len(),
                "log: torn tail dropped"
            );
        };
        if rest.len() < HEADER_LEN {
            tail(&mut out);
            break;
        }
        let u32_at =
            |i: usize| u32::from_le_bytes([rest[i], rest[i + 1], rest[i + 2], rest[i + 3]]);
        if u32_at(0) != header_crc(&rest[4..HEADER_LEN]) {
            if rest.iter().all(|&b| b == 0) {
                tail(&mut out);
                break;
            }
            return Err(StorageError::corruption(
                path,
                format!("bad record header at offset {pos}"),
            ));
        }
        let len = u32_at(8) as usize;
        let ty = rest[12];
        let end = HEADER_LEN.saturating_add(len);
        if len > RECORD_LEN_MAX {
            return Err(StorageError::corruption(
                path,
                format!("record length {len} at offset {pos}"),
            ));
        }
        if end > rest.len() {
            // The header is intact, so the length is real: the payload append was cut short.
            tail(&mut out);
            break;
        }
        let payload = &rest[HEADER_LEN..end];
        let kind = RecordType::from_u8(ty).ok_or_else(|| {
            StorageError::corruption(path, format!("record type {ty} at offset {pos}"))
        })?;
        if payload_crc(ty, payload) != u32_at(4) {
            if end == rest.len() {
                tail(&mut out);
                break;
            }
            return Err(StorageError::corruption(
                path,
                format!(
                    "bad record payload at offset {pos} with {} bytes after it",
                    rest.len() - end
                ),
            ));
        }
        out.records.push((kind, payload.to_vec()));
        pos += end;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn log_of(payloads: &[&[u8]]) -> Vec<u8> {
        let mut out = Vec::new();
        for p in payloads {
            encode_record(&mut out, RecordType::WriteBatch, p);
        }
        out
    }

    #[test]
    fn every_prefix_parses_to_a_prefix_of_records() -> StorageResult<()> {
        let payloads: [&[u8]; 3] = [b"one", b"", b"three three"];
        let full = log_of(&payloads);
        for cut in 0..=full.len() {
            let got = parse_log(&full[..cut], "p")?;
            let n = got.records.len();
            assert!(n <= 3);
            for (i, (_, p)) in got.records.iter().enumerate() {
                assert_eq!(&p[..], payloads[i]);
            }
            let consumed: usize = got.records.iter().map(|(_, p)| HEADER_LEN + p.len()).sum();
            assert_eq!(consumed as u64 + got.torn_tail_bytes, cut as u64);
        }
        Ok(())
    }

    #[test]
    fn middle_corruption_is_an_error_final_payload_corruption_is_a_tail() -> StorageResult<()> {
        let full = log_of(&[b"aaaa", b"bbbb", b"cccc"]);
        let last_start = 2 * (HEADER_LEN + 4);
        for i in 0..full.len() {
            let mut bad = full.clone();
            bad[i] ^= 0x10;
            match parse_log(&bad, "p") {
                Ok(c) => {
                    assert!(i >= last_start + HEADER_LEN, "flip at {i} read as a tail");
                    assert_eq!(c.records.len(), 2);
                    assert_eq!(c.torn_tail_bytes, (HEADER_LEN + 4) as u64);
                    for (_, p) in &c.records {
                        assert!(p == b"aaaa" || p == b"bbbb");
                    }
                }
                Err(StorageError::Corruption { .. }) => assert!(i < last_start + HEADER_LEN),
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    #[test]
    fn zero_filled_tail_is_a_tail() -> StorageResult<()> {
        let mut log = log_of(&[b"x"]);
        log.extend_from_slice(&[0u8; 64]);
        let c = parse_log(&log, "p")?;
        assert_eq!(c.records.len(), 1);
        assert_eq!(c.torn_tail_bytes, 64);
        Ok(())
    }
}
