//! The write path: validate, then (as the group-commit leader or an actor's own group) assign
//! sequence numbers, append one WAL record per batch in one append, sync once, insert into
//! the memtables and publish the new visible sequence.
//!
//! A write is acknowledged only after its WAL append (and sync, if asked) succeeded, and is
//! visible to reads only after that, so a read never sees a write that a crash could lose
//! when the write was synced. An unsynced write may be lost by a crash; it is never torn
//! (a batch is one CRC-checked record).
//!
//! Must not: hold `inner` across WAL I/O (readers would wait for the disk).

use std::sync::atomic::Ordering;

use super::layout::{file_name, FileKind};
use super::{lock, MemSet, Tablet, WalState};
use crate::error::{StorageError, StorageResult};
use crate::fs::join;
use crate::key::CellKind;
use crate::wal::{WalWriter, WriteBatch};

impl Tablet {
    /// Write one batch; threads calling this concurrently share WAL appends and syncs (group
    /// commit). Returns the sequence number of the batch's last mutation.
    pub fn write(&self, batch: &WriteBatch, sync: bool) -> StorageResult<u64> {
        self.validate(batch)?;
        if batch.is_empty() {
            return Ok(self.visible_sequence());
        }
        self.group.commit(batch, sync, |batches, sync| {
            self.commit_group(batches, sync)
        })
    }

    /// Write several batches with one WAL append and at most one sync: the form a
    /// single-threaded actor uses when it batches requests itself. Returns the last
    /// sequence number written. All batches are validated before any is written.
    pub fn write_group(&self, batches: &[WriteBatch], sync: bool) -> StorageResult<u64> {
        for b in batches {
            self.validate(b)?;
        }
        let refs: Vec<&WriteBatch> = batches.iter().filter(|b| !b.is_empty()).collect();
        if refs.is_empty() {
            return Ok(self.visible_sequence());
        }
        let seqs = self.commit_group(&refs, sync)?;
        Ok(seqs.last().copied().unwrap_or(0))
    }

    fn validate(&self, batch: &WriteBatch) -> StorageResult<()> {
        let range = &self.range;
        for m in batch.iter() {
            let m = m?;
            if m.row.is_empty() || m.row.len() > self.opts.row_size_max_bytes {
                return Err(StorageError::InvalidArgument(format!(
                    "row of {} bytes",
                    m.row.len()
                )));
            }
            if m.value.len() > self.opts.value_size_max_bytes {
                return Err(StorageError::InvalidArgument(format!(
                    "value of {} bytes",
                    m.value.len()
                )));
            }
            if !range.contains(m.row) {
                return Err(StorageError::KeyNotInRange);
            }
            if m.kind != CellKind::DeleteRow {
                self.lg_of_family(m.family)?;
            }
        }
        Ok(())
    }

    /// Commit validated, non-empty batches in order; the last sequence number of each.
    pub(crate) fn commit_group(
        &self,
        batches: &[&WriteBatch],
        sync: bool,
    ) -> StorageResult<Vec<u64>> {
        let mut wal = lock(&self.wal);
        if let Some(e) = &wal.failed {
            return Err(e.clone());
        }
        self.make_room(&mut wal)?;
        let (firsts, lasts, mem) = {
            let mut inner = lock(&self.inner);
            inner.check_open()?;
            let mut firsts = Vec::with_capacity(batches.len());
            let mut lasts = Vec::with_capacity(batches.len());
            for b in batches {
                assert!(!b.is_empty());
                firsts.push(inner.last_sequence + 1);
                inner.last_sequence += b.len() as u64;
                lasts.push(inner.last_sequence);
            }
            (firsts, lasts, inner.mem.clone())
        };
        let writer = wal.writer.as_mut().ok_or(StorageError::Closed)?;
        assert_eq!(
            writer.number(),
            mem.wal_number,
            "the active memtables' WAL is the open one"
        );
        if let Err(e) = writer.append_group(batches, &firsts, sync) {
            tracing::warn!(tablet = self.id.0, error = %e, "wal append failed; tablet needs reopening");
            wal.failed = Some(e.clone());
            return Err(e);
        }
        for (b, &first) in batches.iter().zip(&firsts) {
            self.insert_batch(&mem, b, first, &mut wal.key_scratch)?;
        }
        let mut inner = lock(&self.inner);
        let last = lasts.last().copied().unwrap_or(inner.visible_sequence);
        assert!(last > inner.visible_sequence, "sequence numbers only grow");
        inner.visible_sequence = last;
        inner.stats.write_groups += 1;
        inner.stats.batches_written += batches.len() as u64;
        if sync {
            inner.stats.wal_syncs += 1;
        }
        Ok(lasts)
    }

    /// `key`: scratch space for encoding cell keys.
    fn insert_batch(
        &self,
        mem: &MemSet,
        batch: &WriteBatch,
        first_seq: u64,
        key: &mut Vec<u8>,
    ) -> StorageResult<()> {
        for (i, m) in batch.iter().enumerate() {
            let m = m?;
            key.clear();
            m.encode_key_into(first_seq + i as u64, key);
            if m.kind == CellKind::DeleteRow {
                // A row tombstone covers every family, so every locality group gets it.
                for mt in &mem.lgs {
                    mt.insert(key, &[]);
                }
            } else {
                mem.lgs[self.lg_of_family(m.family)?].insert(key, m.value);
            }
        }
        Ok(())
    }

    /// Switch to fresh memtables when the active ones are full; if too many switched ones
    /// wait for flush, flush one inline (the write stalls, as LevelDB's does).
    fn make_room(&self, wal: &mut WalState) -> StorageResult<()> {
        loop {
            let mut inner = lock(&self.inner);
            inner.check_open()?;
            if inner.mem.bytes() < self.opts.memtable_size_bytes {
                return Ok(());
            }
            if inner.imm.len() >= self.opts.immutable_memtables_max {
                inner.stats.write_stalls += 1;
                drop(inner);
                self.flush_one()?;
                continue;
            }
            drop(inner);
            return self.switch_memtable(wal, true);
        }
    }

    /// Make the active memtables immutable. With `new_wal`, roll to a fresh WAL file (its name
    /// durable before any write to it is acknowledged); without, the tablet takes no more
    /// writes (unload, split) and the new empty generation has no WAL file.
    pub(crate) fn switch_memtable(&self, wal: &mut WalState, new_wal: bool) -> StorageResult<()> {
        let mut inner = lock(&self.inner);
        inner.check_open()?;
        let number = inner.alloc_number();
        let writer = if new_wal {
            let path = join(&self.dir, &file_name(FileKind::Wal, self.id, number));
            let file = self.fs.create(&path)?;
            self.fs.sync_dir(&self.dir)?;
            inner.wal_numbers.insert(number);
            Some(WalWriter::new(file, path, number))
        } else {
            None
        };
        // Sync the retiring WAL first: then whatever survives a crash is a prefix of the
        // acknowledged writes, even when a later synced write lands in the next WAL.
        if let Some(w) = wal.writer.as_mut() {
            if w.synced_len() < w.len() {
                if let Err(e) = w.sync() {
                    wal.failed = Some(e.clone());
                    return Err(e);
                }
            }
        }
        let old = std::mem::replace(&mut inner.mem, MemSet::new(number, self.lg_names.len()));
        assert!(!old.flushing.load(Ordering::Acquire));
        inner.imm.push(old);
        inner.stats.memtable_switches += 1;
        wal.writer = writer;
        Ok(())
    }
}
