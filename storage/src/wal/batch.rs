//! `WriteBatch`: an atomic group of mutations to one tablet, and its compact encoding.
//!
//! Encoding of the mutations (`rep`), one after another:
//! ```text
//! tag(1) | row | [family] | [qualifier] | ts(varint) | [value]
//! ```
//! where each byte string is varint-length-prefixed and the bracketed fields appear only for
//! the tags that have them (`Put` has all; `DeleteRow` only row and ts; `DeleteFamily` row,
//! family, ts; `DeleteColumn`/`DeleteVersion` row, family, qualifier, ts). The tag is the
//! [`CellKind`] byte. A WAL record wraps `rep` as `first_seq(8) | count(4) | rep`; mutation
//! `i` gets sequence number `first_seq + i`.
//!
//! Must not: know about memtables or files. Validation of sizes against limits is the
//! tablet's job; decoding here only checks that the bytes are well formed.

use super::codec::{put_bytes, put_varint, Decoder};
use crate::error::{StorageError, StorageResult};
use crate::key::{CellKey, CellKind};

/// One mutation, borrowed from a batch's encoding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mutation<'a> {
    pub kind: CellKind,
    pub row: &'a [u8],
    pub family: &'a [u8],
    pub qualifier: &'a [u8],
    pub ts: u64,
    pub value: &'a [u8],
}

impl Mutation<'_> {
    /// The cell key this mutation writes at sequence `seq`.
    pub fn cell_key(&self, seq: u64) -> CellKey {
        CellKey {
            row: self.row.to_vec(),
            family: self.family.to_vec(),
            qualifier: self.qualifier.to_vec(),
            ts: self.ts,
            kind: self.kind,
            seq,
        }
    }

    /// Append the encoded cell key this mutation writes at sequence `seq` to `out` (the
    /// bytes of `cell_key(seq).encode()`, without the copies).
    pub fn encode_key_into(&self, seq: u64, out: &mut Vec<u8>) {
        crate::key::encode_cell_key_into(
            self.row,
            self.family,
            self.qualifier,
            self.ts,
            self.kind,
            seq,
            out,
        );
    }
}

/// An ordered group of mutations, applied atomically.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WriteBatch {
    rep: Vec<u8>,
    count: u32,
}

/// Bytes of the WAL record prefix before `rep`: first sequence (8) and count (4).
pub const BATCH_HEADER_LEN: usize = 12;

impl WriteBatch {
    pub fn new() -> Self {
        WriteBatch::default()
    }

    pub fn put(&mut self, row: &[u8], family: &[u8], qualifier: &[u8], ts: u64, value: &[u8]) {
        self.push(CellKind::Put, row, family, qualifier, ts, value);
    }
    /// Delete every cell of `row` with timestamp <= `ts`.
    pub fn delete_row(&mut self, row: &[u8], ts: u64) {
        self.push(CellKind::DeleteRow, row, b"", b"", ts, b"");
    }
    /// Delete every cell of the family with timestamp <= `ts`.
    pub fn delete_family(&mut self, row: &[u8], family: &[u8], ts: u64) {
        self.push(CellKind::DeleteFamily, row, family, b"", ts, b"");
    }
    /// Delete every version of the column with timestamp <= `ts`.
    pub fn delete_column(&mut self, row: &[u8], family: &[u8], qualifier: &[u8], ts: u64) {
        self.push(CellKind::DeleteColumn, row, family, qualifier, ts, b"");
    }
    /// Delete exactly the version at `ts`.
    pub fn delete_version(&mut self, row: &[u8], family: &[u8], qualifier: &[u8], ts: u64) {
        self.push(CellKind::DeleteVersion, row, family, qualifier, ts, b"");
    }

    fn push(&mut self, kind: CellKind, row: &[u8], fam: &[u8], qual: &[u8], ts: u64, val: &[u8]) {
        self.rep.push(kind as u8);
        put_bytes(&mut self.rep, row);
        if kind != CellKind::DeleteRow {
            put_bytes(&mut self.rep, fam);
        }
        if matches!(
            kind,
            CellKind::Put | CellKind::DeleteColumn | CellKind::DeleteVersion
        ) {
            put_bytes(&mut self.rep, qual);
        }
        put_varint(&mut self.rep, ts);
        if kind == CellKind::Put {
            put_bytes(&mut self.rep, val);
        }
        self.count += 1;
    }

    pub fn len(&self) -> usize {
        self.count as usize
    }
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }
    /// Encoded size of the mutations.
    pub fn size_bytes(&self) -> usize {
        self.rep.len()
    }
    pub fn clear(&mut self) {
        self.rep.clear();
        self.count = 0;
    }

    /// The mutations in order. The batch was built in memory or decoded with a check, so a
    /// decode error here is corruption of a WAL record that passed its CRC (a bug).
    pub fn iter(&self) -> BatchIter<'_> {
        BatchIter {
            d: Decoder::new(&self.rep, "<write batch>"),
            left: self.count,
        }
    }

    /// Append the WAL record payload for this batch starting at `first_seq`.
    pub fn encode_record_payload(&self, first_seq: u64, out: &mut Vec<u8>) {
        out.extend_from_slice(&first_seq.to_le_bytes());
        out.extend_from_slice(&self.count.to_le_bytes());
        out.extend_from_slice(&self.rep);
    }

    /// Parse a WAL record payload back into `(first_seq, batch)`, checking every mutation.
    pub fn decode_record_payload(payload: &[u8], file: &str) -> StorageResult<(u64, WriteBatch)> {
        let mut d = Decoder::new(payload, file);
        let first_seq = d.fixed_u64()?;
        let count = d.fixed_u32()?;
        let rep = payload[BATCH_HEADER_LEN..].to_vec();
        let batch = WriteBatch { rep, count };
        // The iterator yields exactly `count` mutations or an error (short or trailing bytes).
        for m in batch.iter() {
            m.map_err(|e| StorageError::corruption(file, format!("write batch: {e}")))?;
        }
        Ok((first_seq, batch))
    }
}

pub struct BatchIter<'a> {
    d: Decoder<'a>,
    left: u32,
}

impl<'a> Iterator for BatchIter<'a> {
    type Item = StorageResult<Mutation<'a>>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.left == 0 {
            if !self.d.is_empty() {
                self.d = Decoder::new(&[], "<write batch>");
                return Some(Err(StorageError::corruption(
                    "<write batch>",
                    "trailing bytes",
                )));
            }
            return None;
        }
        self.left -= 1;
        let r = self.decode_one();
        if r.is_err() {
            self.left = 0;
            self.d = Decoder::new(&[], "<write batch>");
        }
        Some(r)
    }
}

impl<'a> BatchIter<'a> {
    fn decode_one(&mut self) -> StorageResult<Mutation<'a>> {
        let d = &mut self.d;
        let tag = d.u8()?;
        let kind = CellKind::from_u8(tag).ok_or_else(|| d.err("mutation tag"))?;
        let row = d.bytes()?;
        let family = if kind != CellKind::DeleteRow {
            d.bytes()?
        } else {
            &[][..]
        };
        let qualifier = if matches!(
            kind,
            CellKind::Put | CellKind::DeleteColumn | CellKind::DeleteVersion
        ) {
            d.bytes()?
        } else {
            &[][..]
        };
        let ts = d.varint()?;
        let value = if kind == CellKind::Put {
            d.bytes()?
        } else {
            &[][..]
        };
        Ok(Mutation {
            kind,
            row,
            family,
            qualifier,
            ts,
            value,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn arb_batch() -> impl Strategy<Value = WriteBatch> {
        let b = || prop::collection::vec(any::<u8>(), 0..5);
        prop::collection::vec((1u8..=5, b(), b(), b(), any::<u64>(), b()), 0..8).prop_map(
            move |ops| {
                let mut wb = WriteBatch::new();
                for (k, r, f, q, ts, v) in ops {
                    match k {
                        1 => wb.delete_row(&r, ts),
                        2 => wb.delete_family(&r, &f, ts),
                        3 => wb.delete_column(&r, &f, &q, ts),
                        4 => wb.delete_version(&r, &f, &q, ts),
                        _ => wb.put(&r, &f, &q, ts, &v),
                    }
                }
                wb
            },
        )
    }

    proptest! {
        #[test]
        fn record_payload_round_trips(wb in arb_batch(), seq in any::<u64>()) {
            let mut p = Vec::new();
            wb.encode_record_payload(seq, &mut p);
            let (s, back) = WriteBatch::decode_record_payload(&p, "t")?;
            prop_assert_eq!(s, seq);
            prop_assert_eq!(back.iter().count(), wb.len());
            prop_assert_eq!(back, wb);
        }

        #[test]
        fn truncated_payloads_are_errors(wb in arb_batch(), cut in any::<prop::sample::Index>()) {
            prop_assume!(!wb.is_empty());
            let mut p = Vec::new();
            wb.encode_record_payload(1, &mut p);
            let cut = cut.index(p.len());
            prop_assert!(WriteBatch::decode_record_payload(&p[..cut], "t").is_err());
        }
    }

    #[test]
    fn mutations_come_back_with_their_kinds() -> StorageResult<()> {
        let mut wb = WriteBatch::new();
        wb.put(b"r", b"f", b"q", 7, b"v");
        wb.delete_row(b"r", 9);
        let ms: Vec<Mutation<'_>> = wb.iter().collect::<StorageResult<_>>()?;
        assert_eq!(ms[0].kind, CellKind::Put);
        assert_eq!(ms[0].value, b"v");
        assert_eq!(ms[1].kind, CellKind::DeleteRow);
        assert_eq!(
            ms[1].cell_key(5).encode(),
            CellKey::decode(&ms[1].cell_key(5).encode())?.encode()
        );
        Ok(())
    }

    #[test]
    fn encoding_a_key_in_place_matches_the_cell_key() -> StorageResult<()> {
        let mut wb = WriteBatch::new();
        wb.put(b"r\x00w", b"f", b"q\x00", 7, b"v");
        wb.delete_row(b"r", 9);
        wb.delete_column(b"r2", b"f", b"", 3);
        let mut out = b"junk".to_vec();
        for (i, m) in wb.iter().enumerate() {
            let m = m?;
            out.clear();
            m.encode_key_into(40 + i as u64, &mut out);
            assert_eq!(out, m.cell_key(40 + i as u64).encode());
        }
        Ok(())
    }
}
