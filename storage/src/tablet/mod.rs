//! A tablet: one WAL plus one LSM per locality group, over a key range of rows.
//!
//! Owns: the write path (validation, group commit, sequence numbers, memtable switch), flush,
//! compaction as caller-run units of work, reads (point gets and scans, both directions),
//! split without copying, merge, unload and recovery. See `layout.rs` for the directory.
//!
//! Locks, always taken in this order: `compaction` (one flush/compaction/split/unload
//! structure change at a time) → `wal` (one committing writer: the group leader) → `inner`
//! (short critical sections: version, memtables, counters, manifest appends). Readers take
//! only `inner`, briefly, to clone an `Arc` snapshot; they never wait for a WAL sync.
//!
//! Must not: spawn threads, read clocks or the global RNG: background work is exposed as
//! [`Tablet::compact_step`], and time (for TTL) comes in as `now_micros`.

mod layout;
mod open;
mod query;
mod schema_codec;
mod split;
mod split_key;
mod work;
mod write;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex, MutexGuard};

use crate::cache::BlockCache;
use crate::error::{StorageError, StorageResult};
use crate::fs::FileStore;
use crate::lsm::{CompactionOptions, Version};
use crate::manifest::ManifestWriter;
use crate::memtable::Memtable;
use crate::read::{Cell, ReadOptions, Schema};
use crate::sst::SstOptions;
use crate::wal::{GroupCommit, WalWriter};

pub use crate::manifest::{KeyRange, TabletId};
pub use crate::wal::WriteBatch;
pub use layout::{file_name, parse_file_name, writer_of_path, FileKind};
pub use schema_codec::{decode_schema, encode_schema};

/// Budgets and tuning of one tablet. Every limit is named and bounded.
#[derive(Clone)]
pub struct TabletOptions {
    /// The active memtable set is switched (and its WAL rolled) past this many bytes.
    pub memtable_size_bytes: usize,
    /// Switched memtables waiting for flush; a writer that would exceed it flushes inline.
    pub immutable_memtables_max: usize,
    pub sst: SstOptions,
    pub target_file_size_bytes: u64,
    pub compaction: CompactionOptions,
    /// Shared across tablets; `None` reads every block from the file store.
    pub cache: Option<Arc<BlockCache>>,
    /// Batches a group-commit leader takes at once, by encoded size.
    pub group_commit_bytes_max: usize,
    /// How long a group-commit leader of threaded writers (`Tablet::write`) waits for the
    /// writers the previous group released to come back with their next batch, so that
    /// closed-loop writers share one sync instead of alternating in two half-size groups.
    /// Only paid when other writers were just released; 0 turns gathering off.
    pub group_commit_gather_micros: u64,
    /// The manifest is rewritten as a fresh snapshot past this size.
    pub manifest_size_max_bytes: u64,
    pub row_size_max_bytes: usize,
    pub value_size_max_bytes: usize,
}

impl Default for TabletOptions {
    fn default() -> Self {
        TabletOptions {
            memtable_size_bytes: 4 << 20,
            immutable_memtables_max: 2,
            sst: SstOptions::default(),
            target_file_size_bytes: 2 << 20,
            compaction: CompactionOptions::default(),
            cache: None,
            group_commit_bytes_max: 1 << 20,
            group_commit_gather_micros: 200,
            manifest_size_max_bytes: 1 << 20,
            row_size_max_bytes: 64 << 10,
            value_size_max_bytes: 32 << 20,
        }
    }
}

/// Counters of what the tablet did, for tests, statistics and the master's reports.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TabletStats {
    pub replayed_wal_files: u64,
    pub replayed_batches: u64,
    pub replayed_torn_tail_bytes: u64,
    pub write_groups: u64,
    pub batches_written: u64,
    pub wal_syncs: u64,
    /// Groups of threaded writers whose leader waited for returning writers, and how many of
    /// those waits ran out of time.
    pub write_gathers: u64,
    pub write_gather_timeouts: u64,
    pub memtable_switches: u64,
    pub write_stalls: u64,
    pub flushes: u64,
    pub flushed_bytes: u64,
    pub compactions: u64,
    pub trivial_moves: u64,
    pub compaction_bytes_written: u64,
    pub compaction_entries_dropped: u64,
    pub files_deleted: u64,
}

/// A scan over `[start, end)` of rows (`end` empty = to the end of the tablet), forward or
/// reverse, returning at most `row_limit` rows that have a visible cell.
#[derive(Clone, Debug, Default)]
pub struct ScanRequest {
    pub start: Vec<u8>,
    pub end: Vec<u8>,
    pub reverse: bool,
    pub row_limit: usize,
    pub opts: ReadOptions,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ScanResult {
    pub rows: Vec<(Vec<u8>, Vec<Cell>)>,
    /// The scan stopped at `row_limit`: more rows may follow in the scan's direction.
    pub limit_reached: bool,
}

/// One generation of memtables (one per locality group) and the WAL that covers them.
pub(crate) struct MemSet {
    pub wal_number: u64,
    pub lgs: Vec<Arc<Memtable>>,
    /// Claimed by a flush, so two jobs never flush the same memtables.
    pub flushing: AtomicBool,
}

impl MemSet {
    fn new(wal_number: u64, lg_count: usize) -> Arc<MemSet> {
        Arc::new(MemSet {
            wal_number,
            lgs: (0..lg_count).map(|_| Arc::new(Memtable::new())).collect(),
            flushing: AtomicBool::new(false),
        })
    }
    fn bytes(&self) -> usize {
        self.lgs.iter().map(|m| m.approximate_bytes()).sum()
    }
    fn is_empty(&self) -> bool {
        self.lgs.iter().all(|m| m.is_empty())
    }
}

pub(crate) struct WalState {
    writer: Option<WalWriter>,
    /// Once an append or sync failed the WAL's tail is unknown; nothing more is appended.
    failed: Option<StorageError>,
    /// Scratch space for encoding cell keys on their way into the memtables.
    key_scratch: Vec<u8>,
}

pub(crate) struct Inner {
    closed: bool,
    /// A manifest append failed: the tablet must be reopened to learn what is durable.
    poisoned: Option<StorageError>,
    next_file_number: u64,
    log_number: u64,
    /// Highest sequence number handed out.
    last_sequence: u64,
    /// Highest sequence number readers may see (its batch is in the memtable).
    visible_sequence: u64,
    version: Arc<Version>,
    mem: Arc<MemSet>,
    /// Oldest first.
    imm: Vec<Arc<MemSet>>,
    /// WAL files that exist and may still be needed.
    wal_numbers: BTreeSet<u64>,
    manifest: ManifestWriter,
    compact_pointers: Vec<Vec<Vec<u8>>>,
    stats: TabletStats,
}

impl Inner {
    fn check_open(&self) -> StorageResult<()> {
        if self.closed {
            return Err(StorageError::Closed);
        }
        if let Some(e) = &self.poisoned {
            return Err(e.clone());
        }
        Ok(())
    }
    fn alloc_number(&mut self) -> u64 {
        let n = self.next_file_number;
        self.next_file_number += 1;
        n
    }
}

pub struct Tablet {
    fs: Arc<dyn FileStore>,
    dir: String,
    id: TabletId,
    /// Fixed for the tablet's life: a split or merge makes new tablets.
    range: KeyRange,
    schema: Schema,
    /// Locality group names; a group's index is its position here (sorted).
    lg_names: Vec<String>,
    family_lg: BTreeMap<Vec<u8>, usize>,
    opts: TabletOptions,
    group: GroupCommit,
    compaction: Mutex<()>,
    wal: Mutex<WalState>,
    inner: Mutex<Inner>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Poisoning means a panic elsewhere; the state behind these locks is updated in single
    // assignments after all fallible work, so it is still consistent.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Tablet {
    pub fn id(&self) -> TabletId {
        self.id
    }
    pub fn dir(&self) -> &str {
        &self.dir
    }
    pub fn schema(&self) -> &Schema {
        &self.schema
    }
    pub fn range(&self) -> KeyRange {
        self.range.clone()
    }
    /// The tablet's key range, borrowed.
    pub fn key_range(&self) -> &KeyRange {
        &self.range
    }
    pub fn stats(&self) -> TabletStats {
        let mut st = lock(&self.inner).stats.clone();
        let g = self.group.stats();
        (st.write_gathers, st.write_gather_timeouts) = (g.gathers, g.gather_timeouts);
        st
    }
    /// The newest sequence number a read can see.
    pub fn visible_sequence(&self) -> u64 {
        lock(&self.inner).visible_sequence
    }

    /// Call `f` with the path of every SST this tablet reads (own and inherited), in no
    /// particular order, under the tablet's lock (`f` must not call back into the tablet).
    pub fn for_each_live_file(&self, mut f: impl FnMut(&str)) {
        let inner = lock(&self.inner);
        for file in inner.version.files() {
            f(&file.meta.path);
        }
    }

    /// Paths of every SST this tablet reads (own and inherited), sorted.
    pub fn live_files(&self) -> Vec<String> {
        let inner = lock(&self.inner);
        let mut v: Vec<String> = inner.version.files().map(|f| f.meta.path.clone()).collect();
        v.sort();
        v
    }

    /// Paths of the SSTs this tablet reads but did not write (shared with other tablets);
    /// the master deletes them once no live tablet reports them.
    pub fn inherited_files(&self) -> Vec<String> {
        let inner = lock(&self.inner);
        let mut v: Vec<String> = inner
            .version
            .files()
            .filter(|f| f.meta.writer != self.id)
            .map(|f| f.meta.path.clone())
            .collect();
        v.sort();
        v
    }

    /// Bytes of SST data this tablet reads (visible or not) and of its memtables.
    pub fn approximate_size_bytes(&self) -> (u64, usize) {
        let inner = lock(&self.inner);
        let sst = inner.version.files().map(|f| f.meta.size_bytes).sum();
        let mem = inner.mem.bytes() + inner.imm.iter().map(|m| m.bytes()).sum::<usize>();
        (sst, mem)
    }

    /// The manifest entries of every live file (level, bounds, clip), sorted by path.
    pub fn file_metas(&self) -> Vec<crate::manifest::FileMeta> {
        let inner = lock(&self.inner);
        let mut v: Vec<_> = inner.version.files().map(|f| f.meta.clone()).collect();
        v.sort_by(|a, b| a.path.cmp(&b.path));
        v
    }

    /// Files per (locality group, level), for tests and statistics.
    pub fn level_file_counts(&self) -> Vec<Vec<usize>> {
        let inner = lock(&self.inner);
        inner
            .version
            .lgs
            .iter()
            .map(|l| l.iter().map(|f| f.len()).collect())
            .collect()
    }

    /// Is there flush or compaction work a job should run (`compact_step`)?
    pub fn needs_work(&self) -> bool {
        let inner = lock(&self.inner);
        !inner.imm.is_empty()
            || crate::lsm::compaction::scores(&inner.version, &self.opts.compaction)
                .iter()
                .any(|s| s.0 >= 1.0)
            || inner.version.files().any(|f| f.meta.writer != self.id)
    }

    fn lg_of_family(&self, family: &[u8]) -> StorageResult<usize> {
        self.family_lg.get(family).copied().ok_or_else(|| {
            StorageError::InvalidArgument(format!(
                "unknown column family {:?}",
                String::from_utf8_lossy(family)
            ))
        })
    }
}
