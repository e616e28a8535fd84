//! [`FsBackend`]: the meta store's log and snapshot on a [`FileStore`] (the local disk in
//! production, `SimFs` in the simulator).
//!
//! Layout under the backend's folder:
//! - `snapshot`: a codec format header and one frame holding the latest [`MetaSnapshot`]
//!   (absent until the first; one from before format versions has the `SHALEMS1` magic
//!   instead of the header and reads as version 1).
//! - `log-NNNNNNNNNNNNNNNNNNNN`: log generations, each a codec format header (written with the
//!   file, before any record) then frames; only the newest is appended to. A generation
//!   without a header is from before format versions and reads as version 1; the next `load`
//!   rewrites its records into a new generation, with a header.
//!
//! Format versions (`codec::META_FORMAT_VERSION`): `load` first reads the headers of the
//! snapshot and of every generation (`check_format`) and refuses data from a newer build
//! with `BackendError::UnsupportedFormat` before deleting, rewriting or decoding anything.
//! A header cut short by a crash is a torn tail: that generation holds no records (its
//! records, if it was being rewritten, are still in the older generation it came from).
//!
//! Every `load` starts a new generation: it rewrites the whole records of all generations into
//! `log-(g+1).tmp`, syncs it, renames it into place, syncs the folder, then deletes the older
//! generations. That cuts a torn tail without a truncate call (the file store has none) and
//! keeps appends after a restart behind the last whole record. A crash between the rename and
//! the deletes leaves two generations holding the same records; `load` keeps only strictly
//! increasing revisions, so duplicates are harmless, and a torn tail in an older generation is
//! harmless too because the newer one holds every whole record before it. A damaged record
//! followed by more data is corruption and an error.
//!
//! `write_snapshot` writes `snapshot.tmp`, syncs, renames over `snapshot`, syncs the folder,
//! then moves the records after the snapshot into a new generation the same way.
//!
//! Must not: be called on the actor's turn (the actor calls it only inside jobs, one at a
//! time); keep state beyond the open log handle.

use super::codec;
use super::state::{LogRecord, MetaSnapshot};
use super::{BackendError, Loaded, MetaBackend};
use shale_storage::fs::{join, FileStore, FsError, WritableFile};
use std::sync::{Arc, Mutex, MutexGuard};

const SNAPSHOT: &str = "snapshot";
const LOG_PREFIX: &str = "log-";
const TMP_SUFFIX: &str = ".tmp";

struct Open {
    generation: u64,
    writer: Box<dyn WritableFile>,
}

/// The meta store's durable state on a file store.
pub struct FsBackend {
    fs: Arc<dyn FileStore>,
    dir: String,
    open: Mutex<Option<Open>>,
}

impl std::fmt::Debug for FsBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FsBackend")
            .field("dir", &self.dir)
            .finish_non_exhaustive()
    }
}

fn io(e: FsError) -> BackendError {
    BackendError::Io(e.to_string())
}

impl FsBackend {
    /// A backend keeping its files under `dir` of `fs`.
    pub fn new(fs: Arc<dyn FileStore>, dir: impl Into<String>) -> Self {
        FsBackend {
            fs,
            dir: dir.into(),
            open: Mutex::new(None),
        }
    }

    fn open(&self) -> MutexGuard<'_, Option<Open>> {
        // Only a bug in this file could poison the lock, and the handle it guards stays
        // usable (every mutation is a single assignment), so recovering the guard is safe.
        self.open.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn path(&self, name: &str) -> String {
        join(&self.dir, name)
    }

    fn log_name(generation: u64) -> String {
        format!("{LOG_PREFIX}{generation:020}")
    }

    /// Existing log generations, oldest first; stray temporary files are deleted.
    fn generations(&self) -> Result<Vec<u64>, BackendError> {
        let mut gens = Vec::new();
        for name in self.fs.list(&self.dir).map_err(io)? {
            if name.ends_with(TMP_SUFFIX) {
                // Left by a crash before its rename: never part of the durable state.
                self.fs.delete(&self.path(&name)).map_err(io)?;
                continue;
            }
            if let Some(num) = name.strip_prefix(LOG_PREFIX) {
                let generation = num.parse::<u64>().map_err(|_| BackendError::Corrupt {
                    what: "log file name",
                    offset: 0,
                    reason: format!("{name:?} is not log-<number>"),
                })?;
                gens.push(generation);
            }
        }
        gens.sort_unstable();
        Ok(gens)
    }

    /// The first `n` bytes of `name` (fewer if it is shorter).
    fn read_prefix(&self, name: &str, n: usize) -> Result<Vec<u8>, BackendError> {
        let file = self.fs.open(&self.path(name)).map_err(io)?;
        let len = usize::try_from(file.len()).map_or(n, |len| len.min(n));
        let mut buf = vec![0u8; len];
        file.read_at(0, &mut buf).map_err(io)?;
        Ok(buf)
    }

    fn read_file(&self, name: &str) -> Result<Vec<u8>, BackendError> {
        let file = self.fs.open(&self.path(name)).map_err(io)?;
        let len = usize::try_from(file.len())
            .map_err(|_| BackendError::Io(format!("{name} does not fit in memory")))?;
        let mut buf = vec![0u8; len];
        file.read_at(0, &mut buf).map_err(io)?;
        Ok(buf)
    }

    /// Whole records of every generation, revisions strictly increasing; and the torn bytes of
    /// the newest generation.
    fn read_logs(&self, gens: &[u64]) -> Result<(Vec<LogRecord>, u64), BackendError> {
        let mut records: Vec<LogRecord> = Vec::new();
        let mut torn = 0;
        for (i, generation) in gens.iter().enumerate() {
            let decoded = codec::decode_log(&self.read_file(&Self::log_name(*generation))?)?;
            if i + 1 == gens.len() {
                torn = decoded.torn_tail_bytes;
            }
            for r in decoded.records {
                if records.last().is_none_or(|last| r.revision > last.revision) {
                    records.push(r);
                }
            }
        }
        Ok((records, torn))
    }

    /// Durably start generation `generation` holding `records`, make it the one appended to,
    /// and delete the older generations.
    fn start_generation(
        &self,
        generation: u64,
        records: &[LogRecord],
        older: &[u64],
    ) -> Result<(), BackendError> {
        let name = Self::log_name(generation);
        let tmp = self.path(&format!("{name}{TMP_SUFFIX}"));
        let mut bytes = Vec::new();
        codec::encode_log_header(&mut bytes);
        for r in records {
            codec::encode_frame(r, &mut bytes)?;
        }
        let mut w = self.fs.create(&tmp).map_err(io)?;
        w.append(&bytes).map_err(io)?;
        w.sync().map_err(io)?;
        drop(w);
        let path = self.path(&name);
        self.fs.rename(&tmp, &path).map_err(io)?;
        self.fs.sync_dir(&self.dir).map_err(io)?;
        // The file store has no append-open: reopen by rewriting the same bytes. They are
        // already durable under the final name, so a crash here loses nothing.
        let mut writer = self.fs.create(&path).map_err(io)?;
        writer.append(&bytes).map_err(io)?;
        writer.sync().map_err(io)?;
        for g in older {
            self.fs
                .delete(&self.path(&Self::log_name(*g)))
                .map_err(io)?;
        }
        self.fs.sync_dir(&self.dir).map_err(io)?;
        *self.open() = Some(Open { generation, writer });
        Ok(())
    }
}

impl MetaBackend for FsBackend {
    fn check_format(&self) -> Result<(), BackendError> {
        if self.fs.exists(&self.path(SNAPSHOT)) {
            codec::peek_snapshot_version(&self.read_prefix(SNAPSHOT, codec::FORMAT_HEADER_BYTES)?)?;
        }
        // Only reads: stray temporary files are left for `load` to delete, and names that
        // are not log-<number> for it to report.
        for name in self.fs.list(&self.dir).map_err(io)? {
            if name.starts_with(LOG_PREFIX) && !name.ends_with(TMP_SUFFIX) {
                codec::peek_log_version(&self.read_prefix(&name, codec::FORMAT_HEADER_BYTES)?)?;
            }
        }
        Ok(())
    }

    fn load(&self) -> Result<Loaded, BackendError> {
        *self.open() = None;
        // Refuse a newer build's data before anything below changes a file.
        self.check_format()?;
        let snapshot = if self.fs.exists(&self.path(SNAPSHOT)) {
            Some(codec::decode_snapshot(&self.read_file(SNAPSHOT)?)?)
        } else {
            None
        };
        let gens = self.generations()?;
        let (records, torn_tail_bytes) = self.read_logs(&gens)?;
        let next = gens.last().map_or(1, |g| g + 1);
        self.start_generation(next, &records, &gens)?;
        Ok(Loaded {
            snapshot,
            records,
            torn_tail_bytes,
        })
    }

    fn append(&self, records: &[LogRecord]) -> Result<(), BackendError> {
        let mut bytes = Vec::new();
        for r in records {
            codec::encode_frame(r, &mut bytes)?;
        }
        let mut open = self.open();
        let open = open
            .as_mut()
            .ok_or_else(|| BackendError::Io("append before load".into()))?;
        open.writer.append(&bytes).map_err(io)
    }

    fn sync(&self) -> Result<(), BackendError> {
        let mut open = self.open();
        let open = open
            .as_mut()
            .ok_or_else(|| BackendError::Io("sync before load".into()))?;
        open.writer.sync().map_err(io)
    }

    fn write_snapshot(&self, snap: &MetaSnapshot) -> Result<(), BackendError> {
        let bytes = codec::encode_snapshot(snap)?;
        let tmp = self.path(&format!("{SNAPSHOT}{TMP_SUFFIX}"));
        let mut w = self.fs.create(&tmp).map_err(io)?;
        w.append(&bytes).map_err(io)?;
        w.sync().map_err(io)?;
        drop(w);
        self.fs.rename(&tmp, &self.path(SNAPSHOT)).map_err(io)?;
        self.fs.sync_dir(&self.dir).map_err(io)?;
        // Records the snapshot covers are no longer needed; keep the ones after it.
        let current = self
            .open()
            .as_ref()
            .map(|o| o.generation)
            .ok_or_else(|| BackendError::Io("snapshot before load".into()))?;
        let gens = self.generations()?;
        let (records, _) = self.read_logs(&gens)?;
        let after: Vec<LogRecord> = records
            .into_iter()
            .filter(|r| r.revision > snap.revision)
            .collect();
        self.start_generation(current + 1, &after, &gens)
    }
}

#[cfg(test)]
#[path = "tests/fs_backend.rs"]
mod tests;
