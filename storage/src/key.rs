//! Cell keys and their byte encoding.
//!
//! A cell is `(row, family, qualifier, timestamp, kind)`; inside the LSM each entry also
//! carries a sequence number so that a later write of the same cell shadows an earlier one.
//! The encoding is **memcmp-ordered**: comparing two encoded keys bytewise gives the logical
//! order below, so blocks, indexes, range clipping and split keys all work on plain bytes.
//!
//! Order (ascending bytes):
//! 1. `row` ascending;
//! 2. `family` ascending (the empty family, used only by row tombstones, first);
//! 3. `qualifier` ascending (the empty qualifier first; family tombstones use it);
//! 4. `timestamp` **descending** (newest version first);
//! 5. `kind`: tombstones before puts at the same timestamp, so a delete at `t` hides a put at `t`;
//! 6. `seq` **descending** (the newest write of an identical cell first).
//!
//! Layout: `esc(row) 00 01 esc(family) 00 01 esc(qualifier) 00 01 !ts(8, BE) kind(1) !seq(8, BE)`,
//! where `esc` turns each `00` byte into `00 FF`. Because `00 01` < `00 FF` < any other pair
//! that starts a component, a shorter component sorts before any longer one it prefixes, and
//! the escaped components compare exactly as the raw ones do.

use crate::error::{StorageError, StorageResult};

/// Bytes after the three escaped components: timestamp (8), kind (1), sequence (8).
pub const TRAILER_LEN: usize = 17;
const TERM: [u8; 2] = [0x00, 0x01];
const ESC: [u8; 2] = [0x00, 0xFF];

/// What an entry says about its cell. The numeric order is the sort order at equal timestamp.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[repr(u8)]
pub enum CellKind {
    /// Deletes every cell of the row with timestamp <= ts. Family and qualifier are empty.
    DeleteRow = 1,
    /// Deletes every cell of the family with timestamp <= ts. Qualifier is empty.
    DeleteFamily = 2,
    /// Deletes every version of the column with timestamp <= ts.
    DeleteColumn = 3,
    /// Deletes exactly the version at ts.
    DeleteVersion = 4,
    Put = 5,
}

impl CellKind {
    pub fn from_u8(b: u8) -> Option<CellKind> {
        Some(match b {
            1 => CellKind::DeleteRow,
            2 => CellKind::DeleteFamily,
            3 => CellKind::DeleteColumn,
            4 => CellKind::DeleteVersion,
            5 => CellKind::Put,
            _ => return None,
        })
    }
    pub fn is_tombstone(self) -> bool {
        self != CellKind::Put
    }
}

/// A decoded cell key.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct CellKey {
    pub row: Vec<u8>,
    pub family: Vec<u8>,
    pub qualifier: Vec<u8>,
    pub ts: u64,
    pub kind: CellKind,
    pub seq: u64,
}

/// Append the encoding of the cell key made of these parts to `out` (what
/// [`CellKey::encode_into`] writes, without building a `CellKey`).
pub fn encode_cell_key_into(
    row: &[u8],
    family: &[u8],
    qualifier: &[u8],
    ts: u64,
    kind: CellKind,
    seq: u64,
    out: &mut Vec<u8>,
) {
    escape_into(row, out);
    escape_into(family, out);
    escape_into(qualifier, out);
    out.extend_from_slice(&(!ts).to_be_bytes());
    out.push(kind as u8);
    out.extend_from_slice(&(!seq).to_be_bytes());
}

impl CellKey {
    pub fn put(row: &[u8], family: &[u8], qualifier: &[u8], ts: u64, seq: u64) -> Self {
        CellKey {
            row: row.to_vec(),
            family: family.to_vec(),
            qualifier: qualifier.to_vec(),
            ts,
            kind: CellKind::Put,
            seq,
        }
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(
            self.row.len() + self.family.len() + self.qualifier.len() + 6 + TRAILER_LEN,
        );
        self.encode_into(&mut out);
        out
    }

    pub fn encode_into(&self, out: &mut Vec<u8>) {
        encode_cell_key_into(
            &self.row,
            &self.family,
            &self.qualifier,
            self.ts,
            self.kind,
            self.seq,
            out,
        );
    }

    pub fn decode(bytes: &[u8]) -> StorageResult<CellKey> {
        let bad = |why: &str| StorageError::corruption("<key>", why.to_string());
        let (row, rest) = unescape(bytes).ok_or_else(|| bad("row component"))?;
        let (family, rest) = unescape(rest).ok_or_else(|| bad("family component"))?;
        let (qualifier, rest) = unescape(rest).ok_or_else(|| bad("qualifier component"))?;
        if rest.len() != TRAILER_LEN {
            return Err(bad("trailer length"));
        }
        let ts = !read_u64(&rest[0..8]);
        let kind = CellKind::from_u8(rest[8]).ok_or_else(|| bad("kind byte"))?;
        let seq = !read_u64(&rest[9..17]);
        Ok(CellKey {
            row,
            family,
            qualifier,
            ts,
            kind,
            seq,
        })
    }
}

fn read_u64(b: &[u8]) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[..8]);
    u64::from_be_bytes(a)
}

fn escape_into(component: &[u8], out: &mut Vec<u8>) {
    for &b in component {
        if b == 0 {
            out.extend_from_slice(&ESC);
        } else {
            out.push(b);
        }
    }
    out.extend_from_slice(&TERM);
}

/// Split one escaped component off the front of `bytes`.
fn unescape(bytes: &[u8]) -> Option<(Vec<u8>, &[u8])> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == 0 {
            match bytes.get(i + 1)? {
                0x01 => return Some((out, &bytes[i + 2..])),
                0xFF => out.push(0),
                _ => return None,
            }
            i += 2;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    None
}

/// The smallest encoded key of `row`: every key of `row` is >= it, every key of a smaller row
/// is < it. Tablet range bounds (rows) are compared against encoded keys through this.
pub fn row_lower_bound(row: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(row.len() + 2);
    escape_into(row, &mut out);
    out
}

/// The smallest encoded key of the column `(row, family, qualifier)`.
pub fn column_lower_bound(row: &[u8], family: &[u8], qualifier: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(row.len() + family.len() + qualifier.len() + 6);
    escape_into(row, &mut out);
    escape_into(family, &mut out);
    escape_into(qualifier, &mut out);
    out
}

/// The raw row of an encoded key, without decoding the rest.
pub fn row_of(encoded: &[u8]) -> StorageResult<Vec<u8>> {
    unescape(encoded)
        .map(|(row, _)| row)
        .ok_or_else(|| StorageError::corruption("<key>", "row component"))
}

/// The encoded key without its sequence number: equal for two writes of the same cell.
pub fn cell_part(encoded: &[u8]) -> &[u8] {
    &encoded[..encoded.len().saturating_sub(8)]
}

/// The sequence number of an encoded key.
pub fn seq_of(encoded: &[u8]) -> u64 {
    if encoded.len() < 8 {
        return 0;
    }
    !read_u64(&encoded[encoded.len() - 8..])
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn key(row: &[u8], fam: &[u8], q: &[u8], ts: u64, kind: CellKind, seq: u64) -> CellKey {
        CellKey {
            row: row.into(),
            family: fam.into(),
            qualifier: q.into(),
            ts,
            kind,
            seq,
        }
    }

    fn logical(a: &CellKey) -> impl Ord + '_ {
        (
            &a.row,
            &a.family,
            &a.qualifier,
            std::cmp::Reverse(a.ts),
            a.kind,
            std::cmp::Reverse(a.seq),
        )
    }

    fn arb_bytes() -> impl Strategy<Value = Vec<u8>> {
        prop::collection::vec(
            prop_oneof![Just(0u8), Just(1u8), Just(0xFFu8), any::<u8>()],
            0..6,
        )
    }

    fn arb_key() -> impl Strategy<Value = CellKey> {
        (
            arb_bytes(),
            arb_bytes(),
            arb_bytes(),
            any::<u64>(),
            1u8..=5,
            any::<u64>(),
        )
            .prop_map(|(r, f, q, ts, k, seq)| {
                key(
                    &r,
                    &f,
                    &q,
                    ts,
                    CellKind::from_u8(k).unwrap_or(CellKind::Put),
                    seq,
                )
            })
    }

    proptest! {
        #[test]
        fn encoding_round_trips(k in arb_key()) {
            prop_assert_eq!(CellKey::decode(&k.encode()).ok(), Some(k));
        }

        #[test]
        fn byte_order_is_logical_order(a in arb_key(), b in arb_key()) {
            prop_assert_eq!(a.encode().cmp(&b.encode()), logical(&a).cmp(&logical(&b)));
        }

        #[test]
        fn row_bound_separates_rows(a in arb_key(), row in arb_bytes()) {
            let bound = row_lower_bound(&row);
            prop_assert_eq!(a.encode() >= bound, a.row >= row);
        }
    }

    #[test]
    fn newest_version_and_tombstones_come_first() {
        let put_new = key(b"r", b"f", b"q", 20, CellKind::Put, 1).encode();
        let del_10 = key(b"r", b"f", b"q", 10, CellKind::DeleteColumn, 2).encode();
        let put_10 = key(b"r", b"f", b"q", 10, CellKind::Put, 3).encode();
        let row_del = key(b"r", b"", b"", 5, CellKind::DeleteRow, 4).encode();
        assert!(row_del < put_new);
        assert!(put_new < del_10);
        assert!(del_10 < put_10);
    }

    #[test]
    fn later_write_of_same_cell_sorts_first() {
        let old = key(b"r", b"f", b"q", 10, CellKind::Put, 1).encode();
        let new = key(b"r", b"f", b"q", 10, CellKind::Put, 2).encode();
        assert!(new < old);
        assert_eq!(cell_part(&old), cell_part(&new));
        assert_eq!(seq_of(&new), 2);
        assert_eq!(row_of(&new).ok(), Some(b"r".to_vec()));
    }

    #[test]
    fn garbage_is_corruption_not_panic() {
        for bad in [
            &b""[..],
            b"abc",
            b"\x00\x02",
            b"r\x00\x01f\x00\x01q\x00\x01short",
        ] {
            assert!(matches!(
                CellKey::decode(bad),
                Err(StorageError::Corruption { .. })
            ));
        }
        let mut k = key(b"r", b"f", b"q", 1, CellKind::Put, 1).encode();
        let kind_at = k.len() - 9;
        k[kind_at] = 9;
        assert!(CellKey::decode(&k).is_err());
    }
}
