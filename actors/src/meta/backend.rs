//! Where the meta store keeps its durable state: the [`MetaBackend`] trait and the in-memory
//! backend [`MemBackend`].
//!
//! The trait is typed (records and snapshots, not bytes) so a row-oriented backend such as
//! MySQL can map writes onto tables, while byte-oriented ones (this in-memory one, and
//! [`super::FsBackend`] on a file store) frame records with `codec.rs`. The file-store one is
//! thin: `append` writes frames to the current log file, `sync` syncs it, `write_snapshot`
//! writes `snapshot.tmp`, syncs, renames over `snapshot`, syncs the directory, then starts a
//! fresh log file and deletes the old ones; `load` reads `snapshot` and the log files in order.
//!
//! Format versions: whatever a backend stores is in the encoding of
//! [`codec::META_FORMAT_VERSION`], and says so (file headers; a row in MySQL). `load` and
//! `check_format` refuse data from a newer build with [`BackendError::UnsupportedFormat`]
//! before decoding any of it. The in-memory backend's snapshots carry the codec's header;
//! its log is one stream that is never created or rotated, so it has no header, like a log
//! file from before format versions.
//!
//! Must not: be called on the actor's turn. The actor calls it only inside jobs, one job at a
//! time, so implementations need not handle concurrent appends.

use super::codec;
use super::state::{LogRecord, MetaSnapshot};
use super::BackendError;
use std::sync::{Arc, Mutex, MutexGuard};

/// What a backend holds after a restart.
#[derive(Debug, Default)]
pub struct Loaded {
    pub snapshot: Option<MetaSnapshot>,
    /// Records after the snapshot, in append order. May include records with revisions the
    /// snapshot already covers (if a crash came between the snapshot and the truncation);
    /// recovery skips those.
    pub records: Vec<LogRecord>,
    /// Bytes of a torn final write that were dropped.
    pub torn_tail_bytes: u64,
}

/// Durable storage for the meta store's log and snapshot.
///
/// Durability contract: a record passed to `append` is durable once a later `sync` returns
/// Ok. `write_snapshot` is atomic: after a crash, `load` sees either the old snapshot and
/// log, or the new snapshot (plus records appended after it). Records are appended in
/// revision order.
pub trait MetaBackend: Send + Sync + 'static {
    /// Read the latest snapshot and the log after it, and cut off a torn tail so that later
    /// appends follow the last whole record.
    fn load(&self) -> Result<Loaded, BackendError>;
    /// Append records to the log (not yet durable).
    fn append(&self, records: &[LogRecord]) -> Result<(), BackendError>;
    /// Make every appended record durable.
    fn sync(&self) -> Result<(), BackendError>;
    /// Durably replace the snapshot with `snap`, then discard log records it covers.
    fn write_snapshot(&self, snap: &MetaSnapshot) -> Result<(), BackendError>;
    /// Check, without loading the state, that this build can read the stored data's format:
    /// [`BackendError::UnsupportedFormat`] if a newer build wrote it. `load` refuses such
    /// data too; this lets a process refuse at startup with a clear message instead of
    /// starting a store that cannot serve. Cheap (headers or one row) and changes nothing.
    /// The default accepts everything, for backends whose `load` is the only check.
    fn check_format(&self) -> Result<(), BackendError> {
        Ok(())
    }
}

/// The disk an in-memory backend models. Synced and unsynced log bytes are kept apart, so a
/// crash can drop (or tear) exactly what a real disk could lose.
#[derive(Debug, Default)]
struct MemDisk {
    snapshot: Option<Vec<u8>>,
    synced: Vec<u8>,
    unsynced: Vec<u8>,
    /// Fault injection: how many of the next appends / syncs / snapshots fail.
    fail_appends: u32,
    fail_syncs: u32,
    fail_snapshots: u32,
    syncs: u64,
    snapshots_written: u64,
}

/// An in-memory backend with honest durability. Clones share one disk, so a test can keep a
/// handle, crash the disk, and build a new actor over the same handle.
#[derive(Clone, Debug, Default)]
pub struct MemBackend {
    disk: Arc<Mutex<MemDisk>>,
}

impl MemBackend {
    pub fn new() -> Self {
        Self::default()
    }

    fn disk(&self) -> MutexGuard<'_, MemDisk> {
        // A panic while holding the lock can only come from a bug in this file; the disk's
        // bytes are still consistent (every mutation is a single push or replace), so
        // recovering the guard is safe.
        self.disk.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Lose everything not synced, as a power cut would.
    pub fn crash(&self) {
        self.disk().unsynced.clear();
    }

    /// Lose the unsynced bytes except the first `keep_bytes` of them: a torn write.
    pub fn crash_torn(&self, keep_bytes: usize) {
        let mut d = self.disk();
        let keep = keep_bytes.min(d.unsynced.len());
        let kept: Vec<u8> = d.unsynced[..keep].to_vec();
        d.unsynced.clear();
        d.synced.extend_from_slice(&kept);
    }

    /// Flip one byte of the durable log (for corruption tests). Returns false if out of range.
    pub fn corrupt_log_byte(&self, offset: usize) -> bool {
        let mut d = self.disk();
        match d.synced.get_mut(offset) {
            Some(b) => {
                *b ^= 0x5a;
                true
            }
            None => false,
        }
    }

    /// Replace the durable snapshot with these bytes (for format and corruption tests).
    pub fn replace_snapshot_bytes(&self, bytes: Vec<u8>) {
        self.disk().snapshot = Some(bytes);
    }

    pub fn fail_next_appends(&self, n: u32) {
        self.disk().fail_appends = n;
    }
    pub fn fail_next_syncs(&self, n: u32) {
        self.disk().fail_syncs = n;
    }
    pub fn fail_next_snapshots(&self, n: u32) {
        self.disk().fail_snapshots = n;
    }

    /// Successful syncs so far (group commit tests count them).
    pub fn syncs(&self) -> u64 {
        self.disk().syncs
    }
    pub fn snapshots_written(&self) -> u64 {
        self.disk().snapshots_written
    }
    /// Durable log bytes.
    pub fn log_bytes(&self) -> usize {
        self.disk().synced.len()
    }
    /// Appended but not yet synced bytes.
    pub fn unsynced_bytes(&self) -> usize {
        self.disk().unsynced.len()
    }
}

impl MetaBackend for MemBackend {
    fn check_format(&self) -> Result<(), BackendError> {
        match self.disk().snapshot.as_deref() {
            Some(bytes) => codec::peek_snapshot_version(bytes).map(|_| ()),
            None => Ok(()),
        }
    }

    fn load(&self) -> Result<Loaded, BackendError> {
        let mut d = self.disk();
        let snapshot = d
            .snapshot
            .as_deref()
            .map(codec::decode_snapshot)
            .transpose()?;
        // A live process reads what it wrote, synced or not (the page cache); only a crash
        // loses unsynced bytes.
        let mut log = d.synced.clone();
        log.extend_from_slice(&d.unsynced);
        let decoded = codec::decode_log(&log)?;
        // Cut the torn tail off, so the next append follows the last whole record instead
        // of leaving damage in the middle of the log.
        let whole = log.len() - decoded.torn_tail_bytes as usize;
        if whole < d.synced.len() {
            d.synced.truncate(whole);
            d.unsynced.clear();
        } else {
            let keep = whole - d.synced.len();
            d.unsynced.truncate(keep);
        }
        Ok(Loaded {
            snapshot,
            records: decoded.records,
            torn_tail_bytes: decoded.torn_tail_bytes,
        })
    }

    fn append(&self, records: &[LogRecord]) -> Result<(), BackendError> {
        let mut bytes = Vec::new();
        for r in records {
            codec::encode_frame(r, &mut bytes)?;
        }
        let mut d = self.disk();
        if d.fail_appends > 0 {
            d.fail_appends -= 1;
            return Err(BackendError::Injected("append"));
        }
        d.unsynced.extend_from_slice(&bytes);
        Ok(())
    }

    fn sync(&self) -> Result<(), BackendError> {
        let mut d = self.disk();
        if d.fail_syncs > 0 {
            d.fail_syncs -= 1;
            return Err(BackendError::Injected("sync"));
        }
        let pending = std::mem::take(&mut d.unsynced);
        d.synced.extend_from_slice(&pending);
        d.syncs += 1;
        Ok(())
    }

    fn write_snapshot(&self, snap: &MetaSnapshot) -> Result<(), BackendError> {
        let bytes = codec::encode_snapshot(snap)?;
        let mut d = self.disk();
        if d.fail_snapshots > 0 {
            d.fail_snapshots -= 1;
            return Err(BackendError::Injected("snapshot"));
        }
        // Drop the records the snapshot covers; keep any after it where they were (synced or
        // not). Both parts hold whole frames: load cut any torn tail.
        let synced = retain_after(&d.synced, snap.revision)?;
        let unsynced = retain_after(&d.unsynced, snap.revision)?;
        d.snapshot = Some(bytes);
        d.synced = synced;
        d.unsynced = unsynced;
        d.snapshots_written += 1;
        Ok(())
    }
}

/// Re-encode the records of `log` with a revision above `revision`.
fn retain_after(log: &[u8], revision: u64) -> Result<Vec<u8>, BackendError> {
    let mut out = Vec::new();
    for r in codec::decode_log(log)?.records {
        if r.revision > revision {
            codec::encode_frame(&r, &mut out)?;
        }
    }
    Ok(out)
}
