//! The on-disk framing of an SST: varints, block handles, the checksummed block trailer and
//! the fixed footer.
//!
//! Owns: every byte-level layout decision outside a block's contents, and the checks that turn
//! a bad byte into `StorageError::Corruption`. Must not: know what is inside a block.
//!
//! File layout:
//! ```text
//! data block* | index block | filter block | properties block | footer (64 bytes)
//! ```
//! Every block is stored as `payload | type (1) | crc32c(payload | type) (4, LE)`. Type 0 is
//! raw, type 1 is LZ4 with the decoded length as a varint before the LZ4 stream.
//! Footer: `index handle | filter handle | properties handle` (each offset u64 + size u64, LE),
//! `format version u32`, `crc32c of the 52 bytes before it u32`, `magic u64`.

use crate::error::{StorageError, StorageResult};
use crate::fs::ReadableFile;

pub const MAGIC: u64 = 0x5348_414c_4553_5354; // "SHALESST"
pub const FORMAT_VERSION: u32 = 1;
pub const FOOTER_LEN: usize = 64;
/// Type byte plus CRC after every block payload.
pub const BLOCK_TRAILER_LEN: usize = 5;
/// Decoded blocks larger than this are refused as corrupt: a block holds one entry at most
/// beyond the target size, and values are capped at 32 MiB (architecture section 5).
pub const MAX_DECODED_BLOCK_BYTES: usize = 256 << 20;

const TYPE_RAW: u8 = 0;
const TYPE_LZ4: u8 = 1;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Compression {
    None,
    Lz4,
}

pub fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Decode a varint at `*pos`, advancing it; `None` if truncated or longer than 10 bytes.
pub fn get_varint(buf: &[u8], pos: &mut usize) -> Option<u64> {
    let mut v: u64 = 0;
    for shift in (0..64).step_by(7) {
        let b = *buf.get(*pos)?;
        *pos += 1;
        v |= u64::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            return Some(v);
        }
    }
    None
}

/// Where a block's payload sits (its trailer follows it).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct BlockHandle {
    pub offset: u64,
    pub size: u64,
}

impl BlockHandle {
    /// Offset just past this block's trailer.
    pub fn end(&self) -> Option<u64> {
        self.offset
            .checked_add(self.size)?
            .checked_add(BLOCK_TRAILER_LEN as u64)
    }
    pub fn encode_into(&self, out: &mut Vec<u8>) {
        put_varint(out, self.offset);
        put_varint(out, self.size);
    }
    pub fn decode(buf: &[u8]) -> Option<BlockHandle> {
        let mut pos = 0;
        let offset = get_varint(buf, &mut pos)?;
        let size = get_varint(buf, &mut pos)?;
        (pos == buf.len()).then_some(BlockHandle { offset, size })
    }
}

/// Frame `contents` for disk, compressing when that saves at least 1/8 (else raw: a block
/// that barely compresses costs a decompression on every read for nothing).
pub fn frame_block(contents: &[u8], compression: Compression) -> Vec<u8> {
    let mut out = Vec::with_capacity(contents.len() + BLOCK_TRAILER_LEN + 8);
    let mut ty = TYPE_RAW;
    if compression == Compression::Lz4 {
        put_varint(&mut out, contents.len() as u64);
        let compressed = lz4_flex::block::compress(contents);
        if out.len() + compressed.len() < contents.len() - contents.len() / 8 {
            out.extend_from_slice(&compressed);
            ty = TYPE_LZ4;
        } else {
            out.clear();
        }
    }
    if ty == TYPE_RAW {
        out.extend_from_slice(contents);
    }
    out.push(ty);
    let crc = crc32c::crc32c(&out);
    out.extend_from_slice(&crc.to_le_bytes());
    out
}

/// Read, verify and decode the block at `handle`. `limit` is the offset no block may cross
/// (the start of the next region), checked before any read so a nonsense handle is corruption.
pub fn read_block(
    file: &dyn ReadableFile,
    path: &str,
    handle: BlockHandle,
    limit: u64,
) -> StorageResult<Vec<u8>> {
    let bad = |why: String| StorageError::corruption(path, why);
    let end = handle
        .end()
        .ok_or_else(|| bad(format!("block handle overflows: {handle:?}")))?;
    if end > limit {
        return Err(bad(format!("block {handle:?} crosses offset {limit}")));
    }
    let len = usize::try_from(handle.size)
        .ok()
        .filter(|&l| l <= MAX_DECODED_BLOCK_BYTES)
        .ok_or_else(|| bad(format!("block size {} too large", handle.size)))?;
    let mut buf = vec![0u8; len + BLOCK_TRAILER_LEN];
    file.read_at(handle.offset, &mut buf)?;
    let (body, crc_bytes) = buf.split_at(len + 1);
    let mut crc = [0u8; 4];
    crc.copy_from_slice(crc_bytes);
    if crc32c::crc32c(body) != u32::from_le_bytes(crc) {
        return Err(bad(format!(
            "checksum mismatch in block at {}",
            handle.offset
        )));
    }
    let ty = body[len];
    buf.truncate(len);
    match ty {
        TYPE_RAW => Ok(buf),
        TYPE_LZ4 => {
            let mut pos = 0;
            let decoded_len = get_varint(&buf, &mut pos)
                .and_then(|l| usize::try_from(l).ok())
                .filter(|&l| l <= MAX_DECODED_BLOCK_BYTES)
                .ok_or_else(|| bad("lz4 block length".into()))?;
            let out = lz4_flex::block::decompress(&buf[pos..], decoded_len)
                .map_err(|e| bad(format!("lz4: {e}")))?;
            if out.len() != decoded_len {
                return Err(bad("lz4 block decoded to the wrong length".into()));
            }
            Ok(out)
        }
        other => Err(bad(format!("unknown block type {other}"))),
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Footer {
    pub index: BlockHandle,
    pub filter: BlockHandle,
    pub props: BlockHandle,
}

impl Footer {
    pub fn encode(&self) -> [u8; FOOTER_LEN] {
        let mut out = Vec::with_capacity(FOOTER_LEN);
        for h in [self.index, self.filter, self.props] {
            out.extend_from_slice(&h.offset.to_le_bytes());
            out.extend_from_slice(&h.size.to_le_bytes());
        }
        out.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
        let crc = crc32c::crc32c(&out);
        out.extend_from_slice(&crc.to_le_bytes());
        out.extend_from_slice(&MAGIC.to_le_bytes());
        let mut fixed = [0u8; FOOTER_LEN];
        fixed.copy_from_slice(&out);
        fixed
    }

    pub fn decode(buf: &[u8; FOOTER_LEN], path: &str) -> StorageResult<Footer> {
        let u64_at = |i: usize| {
            let mut b = [0u8; 8];
            b.copy_from_slice(&buf[i..i + 8]);
            u64::from_le_bytes(b)
        };
        let u32_at = |i: usize| {
            let mut b = [0u8; 4];
            b.copy_from_slice(&buf[i..i + 4]);
            u32::from_le_bytes(b)
        };
        if u64_at(56) != MAGIC {
            return Err(StorageError::corruption(path, "bad magic: not an SST"));
        }
        if crc32c::crc32c(&buf[..52]) != u32_at(52) {
            return Err(StorageError::corruption(path, "footer checksum mismatch"));
        }
        let version = u32_at(48);
        if version != FORMAT_VERSION {
            return Err(StorageError::corruption(
                path,
                format!("unknown format version {version}"),
            ));
        }
        let h = |i: usize| BlockHandle {
            offset: u64_at(i),
            size: u64_at(i + 8),
        };
        Ok(Footer {
            index: h(0),
            filter: h(16),
            props: h(32),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::MemFile;

    #[test]
    fn varints_round_trip_and_reject_truncation() {
        for v in [0u64, 1, 127, 128, 300, u32::MAX as u64, u64::MAX] {
            let mut b = Vec::new();
            put_varint(&mut b, v);
            let mut pos = 0;
            assert_eq!(get_varint(&b, &mut pos), Some(v));
            assert_eq!(pos, b.len());
            let mut pos = 0;
            assert_eq!(get_varint(&b[..b.len() - 1], &mut pos), None);
        }
        let mut pos = 0;
        assert_eq!(get_varint(&[0xff; 11], &mut pos), None);
    }

    #[test]
    fn blocks_round_trip_both_compressions() {
        let contents: Vec<u8> = (0..5000u32).map(|i| (i % 7) as u8).collect();
        for c in [Compression::None, Compression::Lz4] {
            let framed = frame_block(&contents, c);
            let file = MemFile::from_bytes(framed.clone());
            let h = BlockHandle {
                offset: 0,
                size: (framed.len() - BLOCK_TRAILER_LEN) as u64,
            };
            assert_eq!(
                read_block(&file, "t", h, framed.len() as u64).ok(),
                Some(contents.clone())
            );
            if c == Compression::Lz4 {
                assert!(
                    framed.len() < contents.len() / 2,
                    "compressible data compresses"
                );
            }
            // Any single flipped byte is caught.
            for i in 0..framed.len() {
                let mut bad = framed.clone();
                bad[i] ^= 0x40;
                let file = MemFile::from_bytes(bad);
                let r = read_block(&file, "t", h, framed.len() as u64);
                assert!(
                    matches!(r, Err(StorageError::Corruption { .. })),
                    "flip at {i}"
                );
            }
        }
    }

    #[test]
    fn handles_past_limit_are_corruption() {
        let file = MemFile::from_bytes(vec![0; 100]);
        for h in [
            BlockHandle {
                offset: 90,
                size: 10,
            },
            BlockHandle {
                offset: u64::MAX,
                size: 2,
            },
        ] {
            assert!(matches!(
                read_block(&file, "t", h, 100),
                Err(StorageError::Corruption { .. })
            ));
        }
    }

    #[test]
    fn footer_round_trips_and_checks_magic_and_crc() {
        let f = Footer {
            index: BlockHandle { offset: 1, size: 2 },
            filter: BlockHandle { offset: 3, size: 4 },
            props: BlockHandle { offset: 5, size: 6 },
        };
        let enc = f.encode();
        assert_eq!(Footer::decode(&enc, "t").ok(), Some(f));
        for i in 0..FOOTER_LEN {
            let mut bad = enc;
            bad[i] ^= 1;
            assert!(Footer::decode(&bad, "t").is_err(), "flip at {i}");
        }
    }
}
