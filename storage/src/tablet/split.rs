//! Split without copying, merge, and unload.
//!
//! **Split** (seeds 000 and 003): flush, freeze, then write one manifest per child that names
//! the parent's SSTs with their visible range clipped to the child's rows. No SST byte is
//! read or written; each child's manifest is a snapshot in the child's own directory made
//! current by the usual CURRENT switch. The parent is closed afterwards and must not be
//! reopened once a child has been loaded (a reopened parent would compact and delete files
//! its children read). A crash mid-split leaves either no child CURRENT (the split did not
//! happen; retry it) or complete children; the master's meta write decides which is real.
//!
//! **Merge**: one manifest that is the union of two adjacent, unloaded tablets' files. A file
//! both hold (shared since an earlier split) is listed once with the union of its clips.
//!
//! **Unload**: flush everything, retire the WAL (the manifest's log number moves past every
//! WAL, which are then deleted), close. Opening the directory elsewhere replays nothing.
//!
//! Must not: copy SST data, or delete any SST (shared ones are the master's to collect).

use std::collections::BTreeMap;

use super::layout::{parse_file_name, FileKind};
use super::open::write_fresh_manifest;
use super::split_key::pick_split_row;
use super::{lock, Tablet};
use crate::error::{StorageError, StorageResult};
use crate::fs::{join, FileStore, FsError};
use crate::key::row_lower_bound;
use crate::manifest::{recover, FileMeta, KeyRange, ManifestState, TabletId, VersionEdit};

/// `file` as seen by a tablet covering `range`, or `None` if none of it is visible there.
/// Clips that exclude nothing are dropped, so a fully contained file reads unclipped.
pub fn clip_to_range(file: &FileMeta, range: &KeyRange) -> Option<FileMeta> {
    let mut f = file.clone();
    if !range.start.is_empty() {
        let lo = row_lower_bound(&range.start);
        if f.clip_lower.as_ref().is_none_or(|l| *l < lo) {
            f.clip_lower = Some(lo);
        }
    }
    if !range.end.is_empty() {
        let hi = row_lower_bound(&range.end);
        if f.clip_upper.as_ref().is_none_or(|u| *u > hi) {
            f.clip_upper = Some(hi);
        }
    }
    if f.visible_empty() {
        return None;
    }
    if f.clip_lower.as_ref().is_some_and(|l| *l <= f.smallest) {
        f.clip_lower = None;
    }
    if f.clip_upper.as_ref().is_some_and(|u| *u > f.largest) {
        f.clip_upper = None;
    }
    Some(f)
}

impl Tablet {
    /// The row that splits the tablet's flushed data into two halves by bytes, judged from
    /// the SSTs' block indexes (memtables are not counted; `split` flushes first): the row of
    /// the first block boundary at or past half the bytes (seed 003's picksplitkey took the
    /// middle file's largest key; this weighs every block). `None` if no row leaves data on
    /// both sides. Binary searches over the in-memory indexes (`split_key.rs`): its cost does
    /// not grow with the tablet's bytes.
    pub fn split_key(&self) -> StorageResult<Option<Vec<u8>>> {
        let version = {
            let inner = lock(&self.inner);
            inner.check_open()?;
            inner.version.clone()
        };
        pick_split_row(&version, &self.range)
    }

    /// Split into `[start, key)` and `[key, end)` in the given directories (each different
    /// from this tablet's). Writes only the two child manifests; closes this tablet.
    pub fn split(
        &self,
        key: &[u8],
        left: (TabletId, &str),
        right: (TabletId, &str),
    ) -> StorageResult<()> {
        let _c = lock(&self.compaction);
        let mut wal = lock(&self.wal);
        let range = self.range();
        if key <= &range.start[..] || !range.contains(key) {
            return Err(StorageError::InvalidArgument(
                "split key not strictly inside the range".into(),
            ));
        }
        if left.1 == self.dir || right.1 == self.dir || left.1 == right.1 || left.0 == right.0 {
            return Err(StorageError::InvalidArgument(
                "children need their own ids and directories".into(),
            ));
        }
        self.flush_all(&mut wal, true)?;
        let mut inner = lock(&self.inner);
        inner.check_open()?;
        let parent = self.manifest_state(&inner);
        let halves = [
            (
                left,
                KeyRange {
                    start: range.start.clone(),
                    end: key.to_vec(),
                },
            ),
            (
                right,
                KeyRange {
                    start: key.to_vec(),
                    end: range.end.clone(),
                },
            ),
        ];
        for ((id, dir), child_range) in halves {
            let files: BTreeMap<String, FileMeta> = parent
                .files
                .values()
                .filter_map(|f| clip_to_range(f, &child_range))
                .map(|f| (f.path.clone(), f))
                .collect();
            let state = ManifestState {
                tablet_id: id,
                range: child_range,
                schema: parent.schema.clone(),
                next_file_number: 2,
                log_number: 0,
                last_sequence: parent.last_sequence,
                files,
            };
            write_fresh_manifest(self.fs.as_ref(), dir, 1, &state)?;
        }
        inner.closed = true;
        tracing::info!(
            tablet = self.id.0,
            left = left.0 .0,
            right = right.0 .0,
            "split: 0 SST bytes copied"
        );
        Ok(())
    }

    /// Flush, retire the WAL and close: a later `open` of this directory replays nothing.
    pub fn unload(self) -> StorageResult<()> {
        let _c = lock(&self.compaction);
        let mut wal = lock(&self.wal);
        self.flush_all(&mut wal, false)?;
        let mut inner = lock(&self.inner);
        // Past every WAL number ever used: nothing remains to replay.
        let log_number = inner.mem.wal_number;
        assert!(wal.writer.is_none());
        self.log_and_apply(
            &mut inner,
            VersionEdit {
                log_number: Some(log_number),
                ..Default::default()
            },
            vec![],
        )?;
        let old: Vec<u64> = inner.wal_numbers.iter().copied().collect();
        for n in old {
            let path = join(
                &self.dir,
                &super::layout::file_name(FileKind::Wal, self.id, n),
            );
            self.fs.delete(&path)?;
            inner.wal_numbers.remove(&n);
        }
        inner.closed = true;
        Ok(())
    }

    /// Make `dir` the tablet `id` covering both `left_dir`'s and `right_dir`'s ranges, which
    /// must be adjacent (left's end = right's start), unloaded, and of the same schema.
    pub fn merge(
        fs: &dyn FileStore,
        left_dir: &str,
        right_dir: &str,
        id: TabletId,
        dir: &str,
    ) -> StorageResult<()> {
        let load = |d: &str| -> StorageResult<ManifestState> {
            let (st, _) = recover(fs, d)?
                .ok_or_else(|| StorageError::Fs(FsError::NotFound(join(d, "CURRENT"))))?;
            for name in fs.list(d)? {
                if let Some((FileKind::Wal, w, n)) = parse_file_name(&name) {
                    if w == st.tablet_id && n >= st.log_number && fs.len(&join(d, &name))? > 0 {
                        return Err(StorageError::InvalidArgument(format!(
                            "{d} is not unloaded"
                        )));
                    }
                }
            }
            Ok(st)
        };
        let (l, r) = (load(left_dir)?, load(right_dir)?);
        if l.range.end.is_empty() || l.range.end != r.range.start {
            return Err(StorageError::InvalidArgument(
                "merged tablets must be adjacent".into(),
            ));
        }
        if l.schema != r.schema {
            return Err(StorageError::InvalidArgument(
                "merged tablets must share a schema".into(),
            ));
        }
        if dir == left_dir || dir == right_dir {
            return Err(StorageError::InvalidArgument(
                "the merged tablet needs its own directory".into(),
            ));
        }
        let mut files = l.files.clone();
        for (path, rf) in &r.files {
            match files.get_mut(path) {
                None => {
                    files.insert(path.clone(), rf.clone());
                }
                Some(lf) => {
                    // Shared since a split: one entry whose clip spans both, if contiguous.
                    let contiguous = lf.clip_upper.is_some() && lf.clip_upper == rf.clip_lower;
                    if lf.lg != rf.lg || lf.level != rf.level || !contiguous {
                        return Err(StorageError::InvalidArgument(format!(
                            "{path} is shared with incompatible placements (left lg {} L{} clip up {:?}, \
                             right lg {} L{} clip low {:?}); compact one side first",
                            lf.lg, lf.level, lf.clip_upper, rf.lg, rf.level, rf.clip_lower
                        )));
                    }
                    lf.clip_upper = rf.clip_upper.clone();
                    let joined = clip_to_range(lf, &KeyRange::all())
                        .ok_or_else(|| StorageError::corruption(path, "merged clip is empty"))?;
                    *lf = joined;
                }
            }
        }
        let state = ManifestState {
            tablet_id: id,
            range: KeyRange {
                start: l.range.start.clone(),
                end: r.range.end.clone(),
            },
            schema: l.schema.clone(),
            next_file_number: 2,
            log_number: 0,
            last_sequence: l.last_sequence.max(r.last_sequence),
            files,
        };
        write_fresh_manifest(fs, dir, 1, &state)?;
        tracing::info!(
            tablet = id.0,
            files = state.files.len(),
            "merge: 0 SST bytes copied"
        );
        Ok(())
    }
}
