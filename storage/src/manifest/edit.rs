//! Version edits: the deltas a MANIFEST records, and the state they add up to.
//!
//! A manifest's first record is a *snapshot* (an edit with `snapshot = true` that states
//! everything); each later record is a delta. [`ManifestState::apply`] checks every edit
//! against the state before taking it (no file added twice, none removed that is absent),
//! so a manifest that replays cleanly describes a consistent set of files.
//!
//! Encoding: a sequence of `tag(varint) value` fields; unknown tags are corruption.
//! Must not: open files or know about levels' shapes (that is `lsm/`).

use std::collections::BTreeMap;

use crate::error::{StorageError, StorageResult};
use crate::wal::codec::{put_bytes, put_varint, Decoder};

/// A tablet's id. File names carry the id of the tablet that wrote them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct TabletId(pub u64);

/// A range of rows `[start, end)`; an empty `end` means +infinity.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Default)]
pub struct KeyRange {
    pub start: Vec<u8>,
    pub end: Vec<u8>,
}

impl KeyRange {
    pub fn new(start: impl Into<Vec<u8>>, end: impl Into<Vec<u8>>) -> Self {
        KeyRange {
            start: start.into(),
            end: end.into(),
        }
    }
    /// Every row.
    pub fn all() -> Self {
        KeyRange::default()
    }
    pub fn contains(&self, row: &[u8]) -> bool {
        row >= &self.start[..] && (self.end.is_empty() || row < &self.end[..])
    }
}

/// One SST as a tablet's version sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileMeta {
    /// Locality group index (position in the schema's locality group list).
    pub lg: u32,
    pub level: u32,
    /// Store path of the SST, relative to the file store root. Shared files live in the
    /// directory of the tablet that wrote them, so the full path is recorded.
    pub path: String,
    /// The tablet that wrote the file (also encoded in its name).
    pub writer: TabletId,
    pub size_bytes: u64,
    pub entries: u64,
    /// Smallest and largest encoded keys physically in the file.
    pub smallest: Vec<u8>,
    pub largest: Vec<u8>,
    /// Visible range `[lower, upper)` in encoded-key space, for files shared after a split:
    /// keys outside it exist in the file but belong to another tablet.
    pub clip_lower: Option<Vec<u8>>,
    pub clip_upper: Option<Vec<u8>>,
}

impl FileMeta {
    /// The smallest key this tablet can see in the file.
    pub fn effective_smallest(&self) -> &[u8] {
        match &self.clip_lower {
            Some(l) if l[..] > self.smallest[..] => l,
            _ => &self.smallest,
        }
    }
    /// True if no key of the file is visible (the clip excludes all of it).
    pub fn visible_empty(&self) -> bool {
        let below = self
            .clip_upper
            .as_ref()
            .is_some_and(|u| self.smallest[..] >= u[..]);
        let above = self
            .clip_lower
            .as_ref()
            .is_some_and(|l| self.largest[..] < l[..]);
        let empty_clip = match (&self.clip_lower, &self.clip_upper) {
            (Some(l), Some(u)) => l >= u,
            _ => false,
        };
        below || above || empty_clip
    }
    /// Could a visible key of the file lie in `[lo, hi]` (both inclusive, encoded keys)?
    pub fn overlaps(&self, lo: &[u8], hi: &[u8]) -> bool {
        if self.visible_empty() || &self.largest[..] < lo || self.effective_smallest() > hi {
            return false;
        }
        self.clip_upper.as_ref().is_none_or(|u| u[..] > *lo)
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct VersionEdit {
    /// This record states the whole tablet (the first record of every manifest).
    pub snapshot: bool,
    pub tablet_id: Option<TabletId>,
    pub range: Option<KeyRange>,
    /// The schema, encoded by the tablet layer; opaque here.
    pub schema: Option<Vec<u8>>,
    pub next_file_number: Option<u64>,
    /// WAL files numbered below this hold nothing that is not in an SST.
    pub log_number: Option<u64>,
    pub last_sequence: Option<u64>,
    pub added: Vec<FileMeta>,
    /// `(lg, level, path)` of files leaving the version.
    pub removed: Vec<(u32, u32, String)>,
}

const TAG_SNAPSHOT: u64 = 1;
const TAG_TABLET: u64 = 2;
const TAG_RANGE: u64 = 3;
const TAG_SCHEMA: u64 = 4;
const TAG_NEXT_FILE: u64 = 5;
const TAG_LOG: u64 = 6;
const TAG_LAST_SEQ: u64 = 7;
const TAG_ADD: u64 = 8;
const TAG_REMOVE: u64 = 9;

fn put_opt(out: &mut Vec<u8>, v: &Option<Vec<u8>>) {
    match v {
        None => out.push(0),
        Some(b) => {
            out.push(1);
            put_bytes(out, b);
        }
    }
}

fn get_opt(d: &mut Decoder<'_>) -> StorageResult<Option<Vec<u8>>> {
    match d.u8()? {
        0 => Ok(None),
        1 => Ok(Some(d.bytes()?.to_vec())),
        _ => Err(d.err("option flag")),
    }
}

fn small(d: &mut Decoder<'_>) -> StorageResult<u32> {
    let v = d.varint()?;
    u32::try_from(v).map_err(|_| d.err("u32 field"))
}

impl VersionEdit {
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        if self.snapshot {
            put_varint(&mut out, TAG_SNAPSHOT);
        }
        if let Some(t) = self.tablet_id {
            put_varint(&mut out, TAG_TABLET);
            put_varint(&mut out, t.0);
        }
        if let Some(r) = &self.range {
            put_varint(&mut out, TAG_RANGE);
            put_bytes(&mut out, &r.start);
            put_bytes(&mut out, &r.end);
        }
        if let Some(s) = &self.schema {
            put_varint(&mut out, TAG_SCHEMA);
            put_bytes(&mut out, s);
        }
        for (tag, v) in [
            (TAG_NEXT_FILE, self.next_file_number),
            (TAG_LOG, self.log_number),
            (TAG_LAST_SEQ, self.last_sequence),
        ] {
            if let Some(v) = v {
                put_varint(&mut out, tag);
                put_varint(&mut out, v);
            }
        }
        for f in &self.added {
            put_varint(&mut out, TAG_ADD);
            put_varint(&mut out, u64::from(f.lg));
            put_varint(&mut out, u64::from(f.level));
            put_bytes(&mut out, f.path.as_bytes());
            put_varint(&mut out, f.writer.0);
            put_varint(&mut out, f.size_bytes);
            put_varint(&mut out, f.entries);
            put_bytes(&mut out, &f.smallest);
            put_bytes(&mut out, &f.largest);
            put_opt(&mut out, &f.clip_lower);
            put_opt(&mut out, &f.clip_upper);
        }
        for (lg, level, path) in &self.removed {
            put_varint(&mut out, TAG_REMOVE);
            put_varint(&mut out, u64::from(*lg));
            put_varint(&mut out, u64::from(*level));
            put_bytes(&mut out, path.as_bytes());
        }
        out
    }

    pub fn decode(buf: &[u8], file: &str) -> StorageResult<VersionEdit> {
        let mut d = Decoder::new(buf, file);
        let mut e = VersionEdit::default();
        let string = |d: &mut Decoder<'_>| -> StorageResult<String> {
            String::from_utf8(d.bytes()?.to_vec()).map_err(|_| d.err("path is not utf-8"))
        };
        while !d.is_empty() {
            match d.varint()? {
                TAG_SNAPSHOT => e.snapshot = true,
                TAG_TABLET => e.tablet_id = Some(TabletId(d.varint()?)),
                TAG_RANGE => {
                    let start = d.bytes()?.to_vec();
                    e.range = Some(KeyRange {
                        start,
                        end: d.bytes()?.to_vec(),
                    });
                }
                TAG_SCHEMA => e.schema = Some(d.bytes()?.to_vec()),
                TAG_NEXT_FILE => e.next_file_number = Some(d.varint()?),
                TAG_LOG => e.log_number = Some(d.varint()?),
                TAG_LAST_SEQ => e.last_sequence = Some(d.varint()?),
                TAG_ADD => {
                    let lg = small(&mut d)?;
                    let level = small(&mut d)?;
                    let path = string(&mut d)?;
                    e.added.push(FileMeta {
                        lg,
                        level,
                        path,
                        writer: TabletId(d.varint()?),
                        size_bytes: d.varint()?,
                        entries: d.varint()?,
                        smallest: d.bytes()?.to_vec(),
                        largest: d.bytes()?.to_vec(),
                        clip_lower: get_opt(&mut d)?,
                        clip_upper: get_opt(&mut d)?,
                    });
                }
                TAG_REMOVE => {
                    let lg = small(&mut d)?;
                    let level = small(&mut d)?;
                    e.removed.push((lg, level, string(&mut d)?));
                }
                _ => return Err(d.err("unknown version edit tag")),
            }
        }
        Ok(e)
    }
}

/// What a manifest adds up to: everything needed to open the tablet.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ManifestState {
    pub tablet_id: TabletId,
    pub range: KeyRange,
    pub schema: Vec<u8>,
    pub next_file_number: u64,
    pub log_number: u64,
    pub last_sequence: u64,
    /// Live files by path.
    pub files: BTreeMap<String, FileMeta>,
}

impl ManifestState {
    /// The snapshot edit that recreates this state.
    pub fn snapshot(&self) -> VersionEdit {
        VersionEdit {
            snapshot: true,
            tablet_id: Some(self.tablet_id),
            range: Some(self.range.clone()),
            schema: Some(self.schema.clone()),
            next_file_number: Some(self.next_file_number),
            log_number: Some(self.log_number),
            last_sequence: Some(self.last_sequence),
            added: self.files.values().cloned().collect(),
            removed: Vec::new(),
        }
    }

    /// Take an edit, refusing one that does not fit the state (that is corruption or a bug).
    pub fn apply(&mut self, e: &VersionEdit, file: &str) -> StorageResult<()> {
        let bad = |why: String| Err(StorageError::corruption(file, why));
        if e.snapshot {
            if e.tablet_id.is_none() || e.range.is_none() || e.schema.is_none() {
                return bad("snapshot edit lacks tablet, range or schema".into());
            }
            *self = ManifestState::default();
        }
        if let Some(t) = e.tablet_id {
            self.tablet_id = t;
        }
        if let Some(r) = &e.range {
            self.range = r.clone();
        }
        if let Some(s) = &e.schema {
            self.schema = s.clone();
        }
        if let Some(n) = e.next_file_number {
            if n < self.next_file_number {
                return bad(format!("next file number goes back to {n}"));
            }
            self.next_file_number = n;
        }
        if let Some(n) = e.log_number {
            if n < self.log_number {
                return bad(format!("log number goes back to {n}"));
            }
            self.log_number = n;
        }
        if let Some(n) = e.last_sequence {
            if n < self.last_sequence {
                return bad(format!("last sequence goes back to {n}"));
            }
            self.last_sequence = n;
        }
        for (lg, level, path) in &e.removed {
            match self.files.remove(path) {
                Some(f) if f.lg == *lg && f.level == *level => {}
                Some(_) => return bad(format!("removed {path} at the wrong level")),
                None => return bad(format!("removed {path} which is not live")),
            }
        }
        for f in &e.added {
            if f.smallest > f.largest {
                return bad(format!("{} has smallest > largest", f.path));
            }
            if self.files.insert(f.path.clone(), f.clone()).is_some() {
                return bad(format!("added {} twice", f.path));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn file(path: &str, level: u32, lo: &[u8], hi: &[u8]) -> FileMeta {
        FileMeta {
            lg: 0,
            level,
            path: path.into(),
            writer: TabletId(1),
            size_bytes: 100,
            entries: 3,
            smallest: lo.to_vec(),
            largest: hi.to_vec(),
            clip_lower: None,
            clip_upper: Some(b"m".to_vec()),
        }
    }

    #[test]
    fn edits_round_trip_and_apply() -> StorageResult<()> {
        let mut st = ManifestState {
            tablet_id: TabletId(7),
            range: KeyRange::new("a", "z"),
            schema: b"s".to_vec(),
            next_file_number: 3,
            ..Default::default()
        };
        st.files
            .insert("t/7-1.sst".into(), file("t/7-1.sst", 0, b"a", b"c"));
        let snap = st.snapshot();
        assert_eq!(VersionEdit::decode(&snap.encode(), "m")?, snap);
        let delta = VersionEdit {
            removed: vec![(0, 0, "t/7-1.sst".into())],
            added: vec![file("t/7-2.sst", 1, b"a", b"c")],
            next_file_number: Some(4),
            last_sequence: Some(10),
            ..Default::default()
        };
        assert_eq!(VersionEdit::decode(&delta.encode(), "m")?, delta);
        let mut back = ManifestState::default();
        back.apply(&snap, "m")?;
        assert_eq!(back, st);
        back.apply(&delta, "m")?;
        assert_eq!(back.files.keys().collect::<Vec<_>>(), vec!["t/7-2.sst"]);
        // Replaying the delta again must fail: the file is no longer live.
        assert!(back.apply(&delta, "m").is_err());
        Ok(())
    }

    #[test]
    fn truncated_edits_never_decode_to_garbage_silently() {
        let e = VersionEdit {
            added: vec![file("p", 2, b"a", b"b")],
            ..Default::default()
        };
        let enc = e.encode();
        for cut in 1..enc.len() {
            if let Ok(d) = VersionEdit::decode(&enc[..cut], "m") {
                assert_ne!(d, e);
            }
        }
    }

    #[test]
    fn clipped_overlap() {
        let f = file("p", 1, b"a", b"z");
        assert!(f.overlaps(b"b", b"c"));
        assert!(!f.overlaps(b"m", b"q"), "above the clip");
        let mut g = f.clone();
        g.clip_lower = Some(b"n".to_vec());
        assert!(g.visible_empty());
        assert!(KeyRange::new("b", "").contains(b"zzz"));
        assert!(!KeyRange::new("b", "c").contains(b"c"));
    }
}
