//! Little byte codecs shared by the WAL and the manifest: LEB128 varints, length-prefixed
//! byte strings and a bounds-checked decoder.
//!
//! Must not: panic on any input. Everything decoded here came off a disk, so every read is
//! checked and a short or malformed buffer is a [`StorageError::Corruption`].

use crate::error::{StorageError, StorageResult};

pub fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

pub fn put_bytes(out: &mut Vec<u8>, b: &[u8]) {
    put_varint(out, b.len() as u64);
    out.extend_from_slice(b);
}

/// A cursor over bytes read back from a file; `what` names the file for error messages.
pub struct Decoder<'a> {
    buf: &'a [u8],
    pos: usize,
    what: &'a str,
}

impl<'a> Decoder<'a> {
    pub fn new(buf: &'a [u8], what: &'a str) -> Self {
        Decoder { buf, pos: 0, what }
    }

    pub fn is_empty(&self) -> bool {
        self.pos >= self.buf.len()
    }

    pub fn err(&self, why: &str) -> StorageError {
        StorageError::corruption(self.what, format!("{why} at byte {}", self.pos))
    }

    pub fn u8(&mut self) -> StorageResult<u8> {
        let b = *self
            .buf
            .get(self.pos)
            .ok_or_else(|| self.err("truncated byte"))?;
        self.pos += 1;
        Ok(b)
    }

    pub fn fixed_u64(&mut self) -> StorageResult<u64> {
        let s = self.take(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(s);
        Ok(u64::from_le_bytes(a))
    }

    pub fn fixed_u32(&mut self) -> StorageResult<u32> {
        let s = self.take(4)?;
        let mut a = [0u8; 4];
        a.copy_from_slice(s);
        Ok(u32::from_le_bytes(a))
    }

    pub fn varint(&mut self) -> StorageResult<u64> {
        let mut v: u64 = 0;
        for shift in (0..64).step_by(7) {
            let b = self.u8()?;
            v |= u64::from(b & 0x7F) << shift;
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(self.err("varint too long"))
    }

    pub fn take(&mut self, n: usize) -> StorageResult<&'a [u8]> {
        let end = self
            .pos
            .checked_add(n)
            .ok_or_else(|| self.err("length overflow"))?;
        let s = self
            .buf
            .get(self.pos..end)
            .ok_or_else(|| self.err("truncated field"))?;
        self.pos = end;
        Ok(s)
    }

    pub fn bytes(&mut self) -> StorageResult<&'a [u8]> {
        let n = self.varint()?;
        let n = usize::try_from(n).map_err(|_| self.err("length too large"))?;
        self.take(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn varints_and_bytes_round_trip(v in any::<u64>(), b in prop::collection::vec(any::<u8>(), 0..40)) {
            let mut out = Vec::new();
            put_varint(&mut out, v);
            put_bytes(&mut out, &b);
            let mut d = Decoder::new(&out, "t");
            prop_assert_eq!(d.varint()?, v);
            prop_assert_eq!(d.bytes()?, &b[..]);
            prop_assert!(d.is_empty());
        }

        #[test]
        fn garbage_never_panics(b in prop::collection::vec(any::<u8>(), 0..20)) {
            let mut d = Decoder::new(&b, "t");
            let _ = d.bytes();
            let _ = d.varint();
            let _ = d.fixed_u64();
        }
    }
}
