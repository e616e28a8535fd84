//! The engine benchmark, as a library function the CLI (`shale bench engine`) and the bench
//! target (`cargo bench -p shale-storage --bench engine`) call: db_bench-style workloads over
//! one tablet on a real file store.
//!
//! Owns: the workloads (fillseq, fillrandom, readrandom, seekrandom with 1 and 10 nexts,
//! fillsync, synced writes from many threads with group commit, and split/merge timing in
//! `bench/split.rs`) and their report.
//! Must not: read a clock or start threads itself. This crate is clock- and thread-free, so
//! the caller passes a [`BenchEnv`] that reads the wall clock and runs tasks in parallel; the
//! engine's background work runs as one of those tasks, calling `compact_step` like a host's
//! job runner would.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::cache::BlockCache;
use crate::error::StorageResult;
use crate::fs::{FileStore, LocalFs};
use crate::lsm::CompactionOptions;
use crate::read::{FamilyRules, ReadOptions, Schema};
use crate::sst::{Compression, SstOptions};
use crate::tablet::{KeyRange, ScanRequest, Tablet, TabletId, TabletOptions};
use crate::wal::WriteBatch;

mod split;
pub use split::{median, SplitReport, SplitSize};

/// What the caller provides: a wall clock and a way to run tasks concurrently.
pub trait BenchEnv: Sync {
    fn now_nanos(&self) -> u64;
    /// Run every task to completion, concurrently (one thread each).
    fn run_parallel<'a>(&self, tasks: Vec<Box<dyn FnOnce() + Send + 'a>>);
    /// Called by an idle background worker; a real host sleeps briefly here.
    fn idle(&self);
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Workload {
    FillSeq,
    FillRandom,
    /// Reads random keys from what `FillRandom` wrote (run it first, same `dir`).
    ReadRandom,
    SeekRandomNext1,
    SeekRandomNext10,
    FillSync,
    /// Synced writes from `group_writers` threads sharing WAL syncs.
    FillSyncGroup,
    /// Split and merge of a `split_small_bytes` tablet (and a `split_large_bytes` one).
    Split,
}

impl Workload {
    /// Every workload, in the order a full run takes them. The synced ones come first, on a
    /// disk not yet busy writing back the hundreds of megabytes the fills leave behind (after
    /// them, one fsync can wait for that writeback, and the group-commit ratio swung from 3x
    /// to 8x between runs). `bench/db_bench.sh` runs its fillsync first for the same reason.
    pub const ALL: [Workload; 8] = [
        Workload::FillSync,
        Workload::FillSyncGroup,
        Workload::FillSeq,
        Workload::FillRandom,
        Workload::ReadRandom,
        Workload::SeekRandomNext1,
        Workload::SeekRandomNext10,
        Workload::Split,
    ];
    pub fn name(self) -> &'static str {
        match self {
            Workload::FillSeq => "fillseq",
            Workload::FillRandom => "fillrandom",
            Workload::ReadRandom => "readrandom",
            Workload::SeekRandomNext1 => "seekrandom_next1",
            Workload::SeekRandomNext10 => "seekrandom_next10",
            Workload::FillSync => "fillsync",
            Workload::FillSyncGroup => "fillsync_16writers",
            Workload::Split => "split",
        }
    }
    pub fn parse(s: &str) -> Option<Workload> {
        Workload::ALL.into_iter().find(|w| w.name() == s)
    }
}

#[derive(Clone, Debug)]
pub struct BenchOptions {
    /// Root directory on the local disk; each workload family uses a subdirectory.
    pub dir: String,
    pub num: u64,
    pub key_size: usize,
    pub value_size: usize,
    pub cache_bytes: usize,
    pub fillsync_num: u64,
    pub group_writers: u64,
    pub seed: u64,
    /// Tablet sizes the split workload builds; the large one only when asked.
    pub split_small_bytes: u64,
    pub split_large_bytes: Option<u64>,
    /// Splits (and merges) timed per size; the report gives every one and the median.
    pub split_repeats: usize,
}

impl Default for BenchOptions {
    fn default() -> Self {
        BenchOptions {
            dir: "/tmp/shale-bench".into(),
            num: 1_000_000,
            key_size: 16,
            value_size: 100,
            cache_bytes: 8 << 20,
            fillsync_num: 5_000,
            group_writers: 16,
            seed: 42,
            split_small_bytes: 10 << 20,
            split_large_bytes: None,
            split_repeats: 5,
        }
    }
}

#[derive(Clone, Debug, Default)]
pub struct BenchReport {
    pub workload: &'static str,
    pub ops: u64,
    pub nanos: u64,
    /// Reads that found their key (reads only).
    pub found: u64,
    pub wal_syncs: u64,
    pub flushes: u64,
    pub compactions: u64,
    pub cache_usage_bytes: usize,
    /// Largest memtable footprint (active plus switched) the background worker saw.
    pub memtable_peak_bytes: usize,
    pub memtable_budget_bytes: usize,
    /// The split workload's measurements.
    pub split: Option<SplitReport>,
}

impl BenchReport {
    pub fn ops_per_sec(&self) -> f64 {
        self.ops as f64 * 1e9 / self.nanos.max(1) as f64
    }
}

const FAMILY: &[u8] = b"f";

fn schema() -> Schema {
    let mut s = Schema::default();
    s.families.insert(FAMILY.to_vec(), FamilyRules::new(1));
    s
}

/// RocksDB's defaults where db_bench uses them, so the comparison is like for like.
fn tablet_opts(cache: &Arc<BlockCache>) -> TabletOptions {
    TabletOptions {
        memtable_size_bytes: 64 << 20,
        immutable_memtables_max: 2,
        sst: SstOptions {
            compression: Compression::None,
            ..SstOptions::default()
        },
        target_file_size_bytes: 64 << 20,
        compaction: CompactionOptions {
            l0_trigger_files: 4,
            level1_max_bytes: 256 << 20,
            level_size_multiplier: 10,
        },
        cache: Some(cache.clone()),
        ..TabletOptions::default()
    }
}

fn key(i: u64, size: usize) -> Vec<u8> {
    let mut k = format!("{i:0size$}").into_bytes();
    k.truncate(size);
    k
}

struct Bed {
    tablet: Arc<Tablet>,
    cache: Arc<BlockCache>,
}

fn fresh(fs: &Arc<LocalFs>, dir: &str, cache: &Arc<BlockCache>) -> StorageResult<Bed> {
    for name in fs.list(dir)? {
        fs.delete(&crate::fs::join(dir, &name))?;
    }
    let fs_dyn: Arc<dyn FileStore> = fs.clone();
    let tablet = Tablet::create(
        fs_dyn,
        dir,
        TabletId(1),
        KeyRange::all(),
        schema(),
        tablet_opts(cache),
    )?;
    Ok(Bed {
        tablet: Arc::new(tablet),
        cache: cache.clone(),
    })
}

fn reopen(fs: &Arc<LocalFs>, dir: &str, cache: &Arc<BlockCache>) -> StorageResult<Bed> {
    let fs_dyn: Arc<dyn FileStore> = fs.clone();
    let tablet = Tablet::open(fs_dyn, dir, tablet_opts(cache))?;
    Ok(Bed {
        tablet: Arc::new(tablet),
        cache: cache.clone(),
    })
}

/// Run `work` with a background task doing the tablet's flushes and compactions, the way a
/// host's job runner would, until `work` finishes.
fn with_background<R: Send>(
    env: &dyn BenchEnv,
    tablet: &Tablet,
    work: impl FnOnce() -> StorageResult<R> + Send,
) -> StorageResult<(R, usize)> {
    let done = AtomicBool::new(false);
    let mut peak = 0usize;
    let mut result: Option<StorageResult<R>> = None;
    let mut bg: StorageResult<()> = Ok(());
    {
        let (done, result, bg, peak) = (&done, &mut result, &mut bg, &mut peak);
        env.run_parallel(vec![
            Box::new(move || {
                *result = Some(work());
                done.store(true, Ordering::Release);
            }),
            Box::new(move || {
                while !done.load(Ordering::Acquire) {
                    *peak = (*peak).max(tablet.approximate_size_bytes().1);
                    match tablet.compact_step(0) {
                        Ok(true) => {}
                        Ok(false) => env.idle(),
                        Err(e) => {
                            *bg = Err(e);
                            return;
                        }
                    }
                }
            }),
        ]);
    }
    bg?;
    result
        .unwrap_or(Err(crate::StorageError::Closed))
        .map(|r| (r, peak))
}

fn settle(tablet: &Tablet) -> StorageResult<()> {
    while tablet.compact_step(0)? {}
    Ok(())
}

fn fill(
    env: &dyn BenchEnv,
    bed: &Bed,
    o: &BenchOptions,
    random: bool,
    n: u64,
    sync: bool,
) -> StorageResult<(u64, usize)> {
    let value = vec![b'v'; o.value_size];
    let t = &*bed.tablet;
    with_background(env, t, || {
        let mut rng = ChaCha8Rng::seed_from_u64(o.seed);
        let mut b = WriteBatch::new();
        for i in 0..n {
            let k = if random { rng.gen_range(0..o.num) } else { i };
            b.clear();
            b.put(&key(k, o.key_size), FAMILY, b"", 0, &value);
            t.write(&b, sync)?;
        }
        Ok(n)
    })
}

/// Run one workload and report on it. Fill workloads start from an empty tablet; reads and
/// seeks use the data the last `FillRandom` left in `dir` (running it first if absent).
pub fn run(env: &dyn BenchEnv, workload: Workload, o: &BenchOptions) -> StorageResult<BenchReport> {
    let fs = Arc::new(LocalFs::new(&o.dir)?);
    let cache = BlockCache::new(o.cache_bytes);
    let mut report = BenchReport {
        workload: workload.name(),
        memtable_budget_bytes: {
            let t = tablet_opts(&cache);
            t.memtable_size_bytes * (1 + t.immutable_memtables_max)
        },
        ..BenchReport::default()
    };
    let bed = match workload {
        Workload::Split => {
            let start = env.now_nanos();
            let r = split::run_split(env, o, &cache)?;
            report.nanos = env.now_nanos() - start;
            report.ops = r.sizes.iter().map(|s| s.split_nanos.len() as u64).sum();
            report.memtable_peak_bytes = r
                .sizes
                .iter()
                .map(|s| s.memtable_peak_bytes)
                .max()
                .unwrap_or(0);
            report.cache_usage_bytes = cache.usage_bytes();
            assert!(
                report.cache_usage_bytes <= o.cache_bytes,
                "the block cache stays within its budget"
            );
            report.split = Some(r);
            return Ok(report);
        }
        Workload::FillSeq => {
            let bed = fresh(&fs, "fillseq", &cache)?;
            let start = env.now_nanos();
            (report.ops, report.memtable_peak_bytes) = fill(env, &bed, o, false, o.num, false)?;
            report.nanos = env.now_nanos() - start;
            bed
        }
        Workload::FillRandom => {
            let bed = fresh(&fs, "random", &cache)?;
            let start = env.now_nanos();
            (report.ops, report.memtable_peak_bytes) = fill(env, &bed, o, true, o.num, false)?;
            report.nanos = env.now_nanos() - start;
            settle(&bed.tablet)?;
            bed
        }
        Workload::FillSync => {
            let bed = fresh(&fs, "fillsync", &cache)?;
            let start = env.now_nanos();
            (report.ops, report.memtable_peak_bytes) =
                fill(env, &bed, o, true, o.fillsync_num, true)?;
            report.nanos = env.now_nanos() - start;
            bed
        }
        Workload::FillSyncGroup => {
            let bed = fresh(&fs, "fillsync_group", &cache)?;
            let per = o.fillsync_num.div_ceil(o.group_writers.max(1)) * 4;
            let value = vec![b'v'; o.value_size];
            let t = &*bed.tablet;
            let failed = AtomicBool::new(false);
            let start = env.now_nanos();
            let tasks: Vec<Box<dyn FnOnce() + Send + '_>> = (0..o.group_writers)
                .map(|w| {
                    let (value, failed) = (&value, &failed);
                    Box::new(move || {
                        let mut rng = ChaCha8Rng::seed_from_u64(o.seed ^ w);
                        let mut b = WriteBatch::new();
                        for _ in 0..per {
                            b.clear();
                            b.put(
                                &key(rng.gen_range(0..o.num), o.key_size),
                                FAMILY,
                                b"",
                                0,
                                value,
                            );
                            if t.write(&b, true).is_err() {
                                failed.store(true, Ordering::Relaxed);
                                return;
                            }
                        }
                    }) as Box<dyn FnOnce() + Send + '_>
                })
                .collect();
            env.run_parallel(tasks);
            report.nanos = env.now_nanos() - start;
            if failed.load(Ordering::Relaxed) {
                return Err(crate::StorageError::InvalidArgument(
                    "a group-commit writer failed".into(),
                ));
            }
            report.ops = per * o.group_writers;
            bed
        }
        Workload::ReadRandom | Workload::SeekRandomNext1 | Workload::SeekRandomNext10 => {
            let bed = match reopen(&fs, "random", &cache) {
                Ok(b) => b,
                Err(_) => {
                    let b = fresh(&fs, "random", &cache)?;
                    fill(env, &b, o, true, o.num, false)?;
                    settle(&b.tablet)?;
                    b
                }
            };
            // Reopening replays the last memtable into L0; let compaction catch up first, as
            // RocksDB's background compaction would while db_bench opens its database.
            settle(&bed.tablet)?;
            let t = &*bed.tablet;
            let mut rng = ChaCha8Rng::seed_from_u64(o.seed + 1);
            let opts = ReadOptions::default();
            let start = env.now_nanos();
            for _ in 0..o.num {
                let k = key(rng.gen_range(0..o.num), o.key_size);
                let found = match workload {
                    Workload::ReadRandom => !t.get(&k, &opts)?.is_empty(),
                    _ => {
                        let limit = if workload == Workload::SeekRandomNext1 {
                            1
                        } else {
                            10
                        };
                        let req = ScanRequest {
                            start: k.clone(),
                            row_limit: limit,
                            ..ScanRequest::default()
                        };
                        let rows = t.scan(&req)?.rows;
                        rows.first().is_some_and(|r| r.0 == k)
                    }
                };
                report.found += u64::from(found);
            }
            report.nanos = env.now_nanos() - start;
            report.ops = o.num;
            bed
        }
    };
    let st = bed.tablet.stats();
    // Workloads without a background worker sample the memtables once, at the end.
    report.memtable_peak_bytes = report
        .memtable_peak_bytes
        .max(bed.tablet.approximate_size_bytes().1);
    report.wal_syncs = st.wal_syncs;
    report.flushes = st.flushes;
    report.compactions = st.compactions;
    report.cache_usage_bytes = bed.cache.usage_bytes();
    assert!(
        report.cache_usage_bytes <= o.cache_bytes,
        "the block cache stays within its budget"
    );
    tracing::info!(
        workload = report.workload,
        ops_per_sec = report.ops_per_sec(),
        "bench"
    );
    Ok(report)
}
