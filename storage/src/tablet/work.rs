//! Background work as units the caller runs: flushing switched memtables to level 0 and
//! leveled compaction. Each unit writes its outputs without holding `inner`, then records
//! them with one synced manifest edit, swaps the version, and only then deletes inputs this
//! tablet wrote itself (never inherited ones: the master collects those).
//!
//! Must not: run concurrently with another compaction (the `compaction` lock), or delete a
//! file before the edit that drops it is durable.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use super::layout::{file_name, FileKind};
use super::open::write_fresh_manifest;
use super::{lock, Inner, MemSet, Tablet, WalState};
use crate::error::{StorageError, StorageResult};
use crate::fs::join;
use crate::iter::{ClippedIter, EntryIter, MergingIter};
use crate::key::row_lower_bound;
use crate::lsm::{build_tables, pick_compaction, OutputSpec, TableFile};
use crate::manifest::{ManifestState, VersionEdit};
use crate::read::CompactionFilter;

impl Tablet {
    /// Flush the active memtables now (switching to a new WAL) and every switched one.
    pub fn flush(&self) -> StorageResult<()> {
        let _c = lock(&self.compaction);
        let mut wal = lock(&self.wal);
        self.flush_all(&mut wal, true)
    }

    pub(crate) fn flush_all(&self, wal: &mut WalState, new_wal: bool) -> StorageResult<()> {
        if !lock(&self.inner).mem.is_empty() || !new_wal {
            self.switch_memtable(wal, new_wal)?;
        }
        while self.flush_one()? {}
        assert!(lock(&self.inner).imm.is_empty());
        Ok(())
    }

    /// One unit of background work: flush one switched memtable set if any, else run one
    /// compaction if any is due. `now_micros` is the caller's clock, for TTL expiry.
    /// Returns whether it did anything.
    pub fn compact_step(&self, now_micros: u64) -> StorageResult<bool> {
        let _c = lock(&self.compaction);
        if self.flush_one()? {
            return Ok(true);
        }
        self.compact_one(now_micros)
    }

    /// Flush the oldest unclaimed switched memtable set to level-0 SSTs.
    pub(crate) fn flush_one(&self) -> StorageResult<bool> {
        let ms: Arc<MemSet> = {
            let inner = lock(&self.inner);
            inner.check_open()?;
            match inner
                .imm
                .iter()
                .find(|m| !m.flushing.swap(true, Ordering::AcqRel))
            {
                Some(m) => m.clone(),
                None => return Ok(false),
            }
        };
        match self.flush_memset(&ms) {
            Ok(()) => Ok(true),
            Err(e) => {
                ms.flushing.store(false, Ordering::Release);
                Err(e)
            }
        }
    }

    fn flush_memset(&self, ms: &Arc<MemSet>) -> StorageResult<()> {
        let mut added = Vec::new();
        let mut bytes = 0;
        for (lg, mt) in ms.lgs.iter().enumerate() {
            if mt.is_empty() {
                continue;
            }
            let mut it = mt.iter();
            it.seek_to_first()?;
            let out = build_tables(&self.spec(lg, 0), it.as_mut(), None, &mut || {
                self.new_sst_path()
            })?;
            bytes += out.bytes_written;
            added.extend(out.files);
        }
        if !added.is_empty() {
            self.fs.sync_dir(&self.dir)?;
        }
        let mut inner = lock(&self.inner);
        inner.check_open()?;
        let pos = inner
            .imm
            .iter()
            .position(|m| Arc::ptr_eq(m, ms))
            .ok_or(StorageError::Closed)?;
        // The oldest WAL still needed is that of the oldest memtables not yet flushed.
        let log_number = inner
            .imm
            .iter()
            .enumerate()
            .filter(|(i, _)| *i != pos)
            .map(|(_, m)| m.wal_number)
            .chain([inner.mem.wal_number])
            .min()
            .unwrap_or(inner.log_number)
            .max(inner.log_number);
        let edit = VersionEdit {
            log_number: Some(log_number),
            ..Default::default()
        };
        self.log_and_apply(&mut inner, edit, added)?;
        inner.imm.remove(pos);
        inner.stats.flushes += 1;
        inner.stats.flushed_bytes += bytes;
        let old_wals: Vec<u64> = inner.wal_numbers.range(..log_number).copied().collect();
        for n in old_wals {
            self.fs
                .delete(&join(&self.dir, &file_name(FileKind::Wal, self.id, n)))?;
            inner.wal_numbers.remove(&n);
            inner.stats.files_deleted += 1;
        }
        Ok(())
    }

    fn compact_one(&self, now_micros: u64) -> StorageResult<bool> {
        let pick = {
            let mut inner = lock(&self.inner);
            inner.check_open()?;
            let version = inner.version.clone();
            let inner = &mut *inner;
            match pick_compaction(
                &version,
                &self.opts.compaction,
                self.id,
                &mut inner.compact_pointers,
            ) {
                Some(p) => p,
                None => return Ok(false),
            }
        };
        let removed: Vec<(u32, u32, String)> = pick
            .inputs
            .iter()
            .map(|f| (f.meta.lg, f.meta.level, f.meta.path.clone()))
            .collect();
        if pick.trivial_move {
            let f = &pick.inputs[0];
            let mut meta = f.meta.clone();
            meta.level = pick.output_level as u32;
            let moved = Arc::new(TableFile {
                meta,
                reader: f.reader.clone(),
            });
            let mut inner = lock(&self.inner);
            self.log_and_apply(
                &mut inner,
                VersionEdit {
                    removed,
                    ..Default::default()
                },
                vec![moved],
            )?;
            inner.stats.trivial_moves += 1;
            return Ok(true);
        }
        let range = &self.range;
        let children: Vec<Box<dyn EntryIter>> = pick.inputs.iter().map(|f| f.iter()).collect();
        // Clip to the tablet's range too: a split child rewrites only keys it owns.
        let lower = (!range.start.is_empty()).then(|| row_lower_bound(&range.start));
        let upper = (!range.end.is_empty()).then(|| row_lower_bound(&range.end));
        let mut it = ClippedIter::new(Box::new(MergingIter::new(children)), lower, upper);
        it.seek_to_first()?;
        let mut filter = CompactionFilter::new(self.schema.clone(), now_micros, pick.bottommost);
        let spec = self.spec(pick.lg, pick.output_level as u32);
        let out = build_tables(&spec, &mut it, Some(&mut filter), &mut || {
            self.new_sst_path()
        })?;
        if !out.files.is_empty() {
            self.fs.sync_dir(&self.dir)?;
        }
        let mut inner = lock(&self.inner);
        assert!(
            pick.inputs
                .iter()
                .all(|f| inner.version.files().any(|g| Arc::ptr_eq(f, g))),
            "compaction inputs are still live (compactions are serialised, flushes only add)"
        );
        self.log_and_apply(
            &mut inner,
            VersionEdit {
                removed: removed.clone(),
                ..Default::default()
            },
            out.files,
        )?;
        inner.stats.compactions += 1;
        inner.stats.compaction_bytes_written += out.bytes_written;
        inner.stats.compaction_entries_dropped += out.entries_dropped;
        tracing::debug!(
            tablet = self.id.0,
            reason = pick.reason,
            level = pick.level,
            inputs = pick.inputs.len(),
            bytes = out.bytes_written,
            dropped = out.entries_dropped,
            "compaction"
        );
        for f in &pick.inputs {
            if f.meta.writer == self.id {
                self.fs.delete(&f.meta.path)?;
                inner.stats.files_deleted += 1;
            }
        }
        Ok(true)
    }

    fn spec(&self, lg: usize, level: u32) -> OutputSpec<'_> {
        OutputSpec {
            fs: self.fs.as_ref(),
            tablet: self.id,
            lg: lg as u32,
            level,
            target_file_size_bytes: if level == 0 {
                u64::MAX
            } else {
                self.opts.target_file_size_bytes
            },
            sst: self.opts.sst.clone(),
            cache: self.opts.cache.clone(),
        }
    }

    fn new_sst_path(&self) -> String {
        let n = lock(&self.inner).alloc_number();
        join(&self.dir, &file_name(FileKind::Sst, self.id, n))
    }

    /// Record `edit` (plus the current counters) durably, then swap in the new version. If
    /// the manifest append fails its tail is unknown, so the tablet refuses further work.
    pub(crate) fn log_and_apply(
        &self,
        inner: &mut Inner,
        mut edit: VersionEdit,
        added: Vec<Arc<TableFile>>,
    ) -> StorageResult<()> {
        inner.check_open()?;
        edit.added = added.iter().map(|f| f.meta.clone()).collect();
        edit.next_file_number = Some(inner.next_file_number);
        edit.last_sequence = Some(inner.last_sequence);
        let log_number = edit.log_number.unwrap_or(inner.log_number);
        assert!(
            log_number >= inner.log_number,
            "the log number never goes back"
        );
        edit.log_number = Some(log_number);
        let version = inner.version.apply(&edit.removed, added)?;
        if let Err(e) = inner.manifest.append(&edit) {
            tracing::warn!(tablet = self.id.0, error = %e, "manifest append failed; tablet needs reopening");
            inner.poisoned = Some(e.clone());
            return Err(e);
        }
        inner.version = Arc::new(version);
        inner.log_number = log_number;
        if inner.manifest.len() > self.opts.manifest_size_max_bytes {
            self.roll_manifest(inner)?;
        }
        Ok(())
    }

    /// Start a fresh manifest holding one snapshot, switch CURRENT, drop the old one.
    fn roll_manifest(&self, inner: &mut Inner) -> StorageResult<()> {
        let number = inner.alloc_number();
        let state = self.manifest_state(inner);
        let old = inner.manifest.path().to_string();
        match write_fresh_manifest(self.fs.as_ref(), &self.dir, number, &state) {
            Ok(w) => inner.manifest = w,
            Err(e) => {
                // CURRENT may or may not have switched; either manifest describes this state.
                inner.poisoned = Some(e.clone());
                return Err(e);
            }
        }
        self.fs.delete(&old)?;
        Ok(())
    }

    pub(crate) fn manifest_state(&self, inner: &Inner) -> ManifestState {
        ManifestState {
            tablet_id: self.id,
            range: self.range.clone(),
            schema: super::encode_schema(&self.schema),
            next_file_number: inner.next_file_number,
            log_number: inner.log_number,
            last_sequence: inner.last_sequence,
            files: inner
                .version
                .files()
                .map(|f| (f.meta.path.clone(), f.meta.clone()))
                .collect(),
        }
    }
}
