//! Which entries of a key-ordered stream are still live: the one classifier shared by reads
//! and compaction, so the two can never disagree about tombstones or versions.
//!
//! Owns: borrowed parsing of encoded keys and the per-row state machine that sorts each entry
//! into tombstone / covered / shadowed / the n-th visible version of its column.
//! Must not: apply schema retention or read filters (callers do), or touch iterators.
//!
//! Tombstone semantics: a tombstone `(ts, seq)` deletes the cells in its scope with timestamp
//! `<= ts` (exactly `== ts` for DeleteVersion) that were written **before** it (`seq` lower).
//! A put written after a delete is therefore visible even with an older timestamp: the same
//! result as applying the operations one after another to a map. Because timestamps sort
//! descending and tombstones sort first within a row, family or column and before puts at
//! equal timestamp, every tombstone is seen before any cell it can delete.

use crate::error::{StorageError, StorageResult};
use crate::key::CellKind;

/// An encoded key split into borrowed parts (components stay escaped: equality of escaped
/// components is equality of raw ones, and most entries never need unescaping).
pub struct Parsed<'a> {
    /// The escaped row with its terminator: the prefix every key of the row starts with.
    pub row_prefix: &'a [u8],
    pub family_esc: &'a [u8],
    pub qualifier_esc: &'a [u8],
    /// Everything before the trailer: identifies the column within the stream.
    pub column: &'a [u8],
    pub ts: u64,
    pub kind: CellKind,
    pub seq: u64,
}

/// End of the escaped component starting at `start` (exclusive of its `00 01` terminator).
fn component_end(key: &[u8], start: usize) -> Option<usize> {
    let mut i = start;
    loop {
        let at = i + memchr0(key.get(i..)?)?;
        match key.get(at + 1)? {
            0x01 => return Some(at),
            0xFF => i = at + 2,
            _ => return None,
        }
    }
}

fn memchr0(s: &[u8]) -> Option<usize> {
    s.iter().position(|&b| b == 0)
}

fn be64(b: &[u8]) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(b);
    u64::from_be_bytes(a)
}

pub fn parse(key: &[u8]) -> StorageResult<Parsed<'_>> {
    let bad = || StorageError::corruption("<key>", "malformed cell key");
    let r = component_end(key, 0).ok_or_else(bad)?;
    let f = component_end(key, r + 2).ok_or_else(bad)?;
    let q = component_end(key, f + 2).ok_or_else(bad)?;
    let trailer = &key[q + 2..];
    if trailer.len() != crate::key::TRAILER_LEN {
        return Err(bad());
    }
    Ok(Parsed {
        row_prefix: &key[..r + 2],
        family_esc: &key[r + 2..f],
        qualifier_esc: &key[f + 2..q],
        column: &key[..q + 2],
        ts: !be64(&trailer[0..8]),
        kind: CellKind::from_u8(trailer[8]).ok_or_else(bad)?,
        seq: !be64(&trailer[9..17]),
    })
}

/// Undo the `00 -> 00 FF` escaping of a component (already split off its terminator).
pub fn unescape(esc: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(esc.len());
    let mut i = 0;
    while i < esc.len() {
        out.push(esc[i]);
        // An escaped zero is `00 FF`; skip the FF.
        i += if esc[i] == 0 { 2 } else { 1 };
    }
    out
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Class {
    /// A delete marker (recorded; it is not a cell).
    Tombstone,
    /// A put deleted by an earlier-seen tombstone.
    Covered,
    /// A put at the same timestamp as a newer write of the same column: hidden by it.
    Shadowed,
    /// The n-th (0-based, newest first) live version of its column.
    Version(u32),
}

/// Per-row state; feed it one row's entries in key order (`reset` between rows).
#[derive(Default)]
pub struct Classifier {
    row_tombs: Vec<(u64, u64)>,
    family: Vec<u8>,
    fam_tombs: Vec<(u64, u64)>,
    column: Vec<u8>,
    col_tombs: Vec<(u64, u64)>,
    ver_ts: Option<u64>,
    ver_tombs: Vec<u64>,
    last_put_ts: Option<u64>,
    next_version: u32,
}

fn covers(tombs: &[(u64, u64)], ts: u64, seq: u64) -> bool {
    tombs.iter().any(|&(t, s)| t >= ts && s > seq)
}

/// Record `(ts, seq)` unless an existing tombstone already covers everything it would.
fn record(tombs: &mut Vec<(u64, u64)>, ts: u64, seq: u64) {
    if !tombs.iter().any(|&(t, s)| t >= ts && s >= seq) {
        tombs.retain(|&(t, s)| !(ts >= t && seq >= s));
        tombs.push((ts, seq));
    }
}

impl Classifier {
    pub fn reset(&mut self) {
        *self = Classifier::default();
    }

    /// Whether this entry starts a new column (callers reset per-column counters on it).
    pub fn classify(&mut self, p: &Parsed<'_>) -> Class {
        if self.family.as_slice() != p.family_esc {
            self.family.clear();
            self.family.extend_from_slice(p.family_esc);
            self.fam_tombs.clear();
            self.column.clear();
        }
        if self.column.as_slice() != p.column {
            self.column.clear();
            self.column.extend_from_slice(p.column);
            self.col_tombs.clear();
            self.ver_ts = None;
            self.ver_tombs.clear();
            self.last_put_ts = None;
            self.next_version = 0;
        }
        let (ts, seq) = (p.ts, p.seq);
        match p.kind {
            CellKind::DeleteRow => record(&mut self.row_tombs, ts, seq),
            CellKind::DeleteFamily => record(&mut self.fam_tombs, ts, seq),
            CellKind::DeleteColumn => record(&mut self.col_tombs, ts, seq),
            CellKind::DeleteVersion => {
                if self.ver_ts != Some(ts) {
                    self.ver_ts = Some(ts);
                    self.ver_tombs.clear();
                }
                self.ver_tombs.push(seq);
            }
            CellKind::Put => {
                if self.last_put_ts == Some(ts) {
                    return Class::Shadowed;
                }
                self.last_put_ts = Some(ts);
                let version_deleted =
                    self.ver_ts == Some(ts) && self.ver_tombs.iter().any(|&s| s > seq);
                if version_deleted
                    || covers(&self.col_tombs, ts, seq)
                    || covers(&self.fam_tombs, ts, seq)
                    || covers(&self.row_tombs, ts, seq)
                {
                    return Class::Covered;
                }
                let v = self.next_version;
                self.next_version = self.next_version.saturating_add(1);
                return Class::Version(v);
            }
        }
        Class::Tombstone
    }

    /// True if this tombstone is made redundant by an earlier one of the same or wider scope
    /// (same or higher timestamp and seq): compaction may drop it at any level.
    pub fn tombstone_redundant(&self, p: &Parsed<'_>) -> bool {
        let dominated = |tombs: &[(u64, u64)]| tombs.iter().any(|&(t, s)| t >= p.ts && s > p.seq);
        match p.kind {
            CellKind::DeleteRow => false,
            CellKind::DeleteFamily => dominated(&self.row_tombs),
            CellKind::DeleteColumn => dominated(&self.row_tombs) || dominated(&self.fam_tombs),
            CellKind::DeleteVersion => {
                dominated(&self.row_tombs)
                    || dominated(&self.fam_tombs)
                    || dominated(&self.col_tombs)
            }
            CellKind::Put => false,
        }
    }
}

/// Retention under a family's rules: is the `index`-th live version (newest first) kept?
/// `min_versions` newest versions survive TTL; nothing beyond `max_versions` survives.
pub fn retained(index: u32, ts: u64, rules: &super::FamilyRules, now_micros: u64) -> bool {
    if index >= rules.max_versions {
        return false;
    }
    if index < rules.min_versions {
        return true;
    }
    match rules.ttl_secs {
        None => true,
        Some(ttl) => ts.saturating_add(ttl.saturating_mul(1_000_000)) > now_micros,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::key::CellKey;

    #[test]
    fn parse_agrees_with_decode() {
        for (r, f, q) in [
            (&b"r"[..], &b"f"[..], &b"q"[..]),
            (b"\x00a\x00", b"", b"\x00"),
            (b"", b"x", b""),
        ] {
            let k = CellKey {
                row: r.into(),
                family: f.into(),
                qualifier: q.into(),
                ts: 7,
                kind: CellKind::DeleteColumn,
                seq: 9,
            };
            let enc = k.encode();
            let p = parse(&enc).expect("parses");
            assert_eq!(p.row_prefix, crate::key::row_lower_bound(r).as_slice());
            assert_eq!(unescape(p.family_esc), f);
            assert_eq!(unescape(p.qualifier_esc), q);
            assert_eq!(p.column, crate::key::column_lower_bound(r, f, q).as_slice());
            assert_eq!((p.ts, p.kind, p.seq), (7, CellKind::DeleteColumn, 9));
        }
        for bad in [
            &b""[..],
            b"r\x00\x01f\x00\x01",
            b"r\x00\x02",
            b"r\x00\x01f\x00\x01q\x00\x01short",
        ] {
            assert!(parse(bad).is_err());
        }
    }
}
