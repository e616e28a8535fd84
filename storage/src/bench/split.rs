//! The `split` workload: how long a split and a merge take for a small and (when asked) a
//! large tablet, and how many SST bytes they write (the answer must be 0).
//!
//! Per size: fill a fresh tablet with sequential keys until its data reaches the size (with
//! the usual background flushes and compactions), flush it and let compaction settle (timed
//! apart: a tablet node flushes before it splits, and that cost follows the memtable, not the
//! tablet), then `repeats` times: reopen the parent, time `split_key()` and
//! `split()` into two fresh child directories, and time `Tablet::merge` of those two
//! children into a third. SST bytes appended during the timed steps are counted by a
//! [`CountingFs`] around the local disk. The merged tablet and a child are reopened and
//! read back as a check (untimed).
//!
//! Must not: read a clock or start threads itself (the [`BenchEnv`] does).

use std::sync::Arc;

use super::{key, schema, tablet_opts, with_background, BenchEnv, BenchOptions, FAMILY};
use crate::cache::BlockCache;
use crate::error::{StorageError, StorageResult};
use crate::fs::{join, CountingFs, FileStore, LocalFs};
use crate::read::ReadOptions;
use crate::tablet::{KeyRange, Tablet, TabletId};
use crate::wal::WriteBatch;

/// One tablet size's measurements; times in nanoseconds, one entry per repetition.
#[derive(Clone, Debug, Default)]
pub struct SplitSize {
    pub label: &'static str,
    pub target_bytes: u64,
    /// SST bytes of the parent when it was split, and its file count.
    pub sst_bytes: u64,
    pub files: usize,
    pub keys: u64,
    pub fill_nanos: u64,
    /// The last flush and compaction settling before the splits.
    pub flush_nanos: u64,
    pub split_key_nanos: Vec<u64>,
    /// `split_key()` plus `split()`.
    pub split_nanos: Vec<u64>,
    pub merge_nanos: Vec<u64>,
    pub split_sst_bytes_written: u64,
    pub merge_sst_bytes_written: u64,
    /// Largest memtable footprint seen while filling, and its budget (active plus switched).
    pub memtable_peak_bytes: usize,
    pub memtable_budget_bytes: usize,
}

pub fn median(v: &[u64]) -> u64 {
    let mut s = v.to_vec();
    s.sort_unstable();
    match s.len() {
        0 => 0,
        n if n % 2 == 1 => s[n / 2],
        n => (s[n / 2 - 1] + s[n / 2]) / 2,
    }
}

impl SplitSize {
    pub fn split_median_nanos(&self) -> u64 {
        median(&self.split_nanos)
    }
    pub fn merge_median_nanos(&self) -> u64 {
        median(&self.merge_nanos)
    }
}

#[derive(Clone, Debug, Default)]
pub struct SplitReport {
    pub sizes: Vec<SplitSize>,
}

impl SplitReport {
    /// Median split time of the largest size over the smallest's (the issue's <= 1.2x).
    pub fn split_ratio(&self) -> Option<f64> {
        let (first, last) = (self.sizes.first()?, self.sizes.last()?);
        if self.sizes.len() < 2 {
            return None;
        }
        Some(last.split_median_nanos() as f64 / first.split_median_nanos().max(1) as f64)
    }
}

pub fn run_split(
    env: &dyn BenchEnv,
    o: &BenchOptions,
    cache: &Arc<BlockCache>,
) -> StorageResult<SplitReport> {
    let local: Arc<dyn FileStore> = Arc::new(LocalFs::new(&o.dir)?);
    let fs = Arc::new(CountingFs::new(local));
    let mut report = SplitReport::default();
    let mut sizes = vec![("small", o.split_small_bytes)];
    if let Some(large) = o.split_large_bytes {
        sizes.push(("large", large));
    }
    let mut built = Vec::new();
    for (label, bytes) in sizes {
        built.push(build(env, &fs, cache, o, label, bytes)?);
    }
    // Interleave the sizes (small, large, small, large, ...) so that both see the same
    // disk load: on a shared disk the manifest fsyncs dominate and drift over time.
    for i in 0..o.split_repeats.max(1) {
        for b in &mut built {
            split_once(env, &fs, b, i, o)?;
        }
    }
    for b in built {
        tracing::info!(
            label = b.size.label,
            sst_bytes = b.size.sst_bytes,
            split_ms = b.size.split_median_nanos() as f64 / 1e6,
            "split bench"
        );
        report.sizes.push(b.size);
    }
    Ok(report)
}

fn clear(fs: &dyn FileStore, dir: &str) -> StorageResult<()> {
    for name in fs.list(dir)? {
        fs.delete(&join(dir, &name))?;
    }
    Ok(())
}

/// A built parent tablet of one size, split (and re-opened) once per repetition.
struct Built {
    size: SplitSize,
    root: String,
    parent: Option<Tablet>,
    opts: crate::tablet::TabletOptions,
}

impl Built {
    fn parent_dir(&self) -> String {
        join(&self.root, "parent")
    }
    /// Left child, right child, merged tablet of repetition `i`.
    fn dirs(&self, i: usize) -> [String; 3] {
        ["left", "right", "merged"].map(|d| join(&self.root, &format!("{d}{i}")))
    }
}

fn build(
    env: &dyn BenchEnv,
    fs: &Arc<CountingFs>,
    cache: &Arc<BlockCache>,
    o: &BenchOptions,
    label: &'static str,
    target_bytes: u64,
) -> StorageResult<Built> {
    let mut built = Built {
        size: SplitSize::default(),
        root: format!("split_{label}"),
        parent: None,
        opts: tablet_opts(cache),
    };
    let parent_dir = built.parent_dir();
    clear(fs.as_ref(), &parent_dir)?;
    for i in 0..o.split_repeats.max(1) {
        for d in built.dirs(i) {
            clear(fs.as_ref(), &d)?;
        }
    }
    let fs_dyn: Arc<dyn FileStore> = fs.clone();
    let opts = tablet_opts(cache);
    let mut size = SplitSize {
        label,
        target_bytes,
        memtable_budget_bytes: opts.memtable_size_bytes * (1 + opts.immutable_memtables_max),
        ..SplitSize::default()
    };
    let parent = Tablet::create(
        fs_dyn.clone(),
        &parent_dir,
        TabletId(1),
        KeyRange::all(),
        schema(),
        opts.clone(),
    )?;
    let value = vec![b'v'; o.value_size];
    let start = env.now_nanos();
    let mut keys = 0u64;
    let mut flush_nanos = 0;
    // Fill until the flushed SST bytes reach the target (memtable bytes overstate what a
    // flush writes, so fill, flush and top up until the files alone are large enough).
    while parent.approximate_size_bytes().0 < target_bytes {
        let ((n, peak), bg_peak) = with_background(env, &parent, || {
            let mut b = WriteBatch::new();
            let mut i = keys;
            let mut peak = 0usize;
            loop {
                let (sst, mem) = parent.approximate_size_bytes();
                peak = peak.max(mem);
                if sst + mem as u64 >= target_bytes {
                    return Ok((i, peak));
                }
                for _ in 0..1000 {
                    b.clear();
                    b.put(&key(i, o.key_size), FAMILY, b"", 0, &value);
                    parent.write(&b, false)?;
                    i += 1;
                }
            }
        })?;
        keys = n;
        size.memtable_peak_bytes = size.memtable_peak_bytes.max(peak).max(bg_peak);
        let flush_start = env.now_nanos();
        parent.flush()?;
        while parent.compact_step(0)? {}
        flush_nanos = env.now_nanos() - flush_start;
    }
    size.fill_nanos = env.now_nanos() - start;
    size.keys = keys;
    size.flush_nanos = flush_nanos;
    size.sst_bytes = parent.approximate_size_bytes().0;
    size.files = parent.live_files().len();
    built.size = size;
    built.parent = Some(parent);
    Ok(built)
}

/// Repetition `i` on one size: time `split_key` + `split` and `merge`, count SST bytes.
fn split_once(
    env: &dyn BenchEnv,
    fs: &Arc<CountingFs>,
    b: &mut Built,
    i: usize,
    o: &BenchOptions,
) -> StorageResult<()> {
    let fs_dyn: Arc<dyn FileStore> = fs.clone();
    let opts = b.opts.clone();
    // Each split closes the parent; reopening it (untimed) replays nothing.
    let t = match b.parent.take() {
        Some(t) => t,
        None => Tablet::open(fs_dyn.clone(), &b.parent_dir(), opts.clone())?,
    };
    let [left, right, merged] = b.dirs(i);
    let size = &mut b.size;
    let keys = size.keys;
    let sst_before = fs.appended_bytes("sst");
    let start = env.now_nanos();
    let split_row = t
        .split_key()?
        .ok_or_else(|| StorageError::InvalidArgument("the tablet has no split key".into()))?;
    let keyed = env.now_nanos();
    let ids = (TabletId(2 + 3 * i as u64), TabletId(3 + 3 * i as u64));
    t.split(&split_row, (ids.0, &left), (ids.1, &right))?;
    let split_done = env.now_nanos();
    let sst_after_split = fs.appended_bytes("sst");
    Tablet::merge(
        fs.as_ref(),
        &left,
        &right,
        TabletId(4 + 3 * i as u64),
        &merged,
    )?;
    let merge_done = env.now_nanos();
    let sst_after_merge = fs.appended_bytes("sst");
    size.split_sst_bytes_written += sst_after_split - sst_before;
    size.merge_sst_bytes_written += sst_after_merge - sst_after_split;
    size.split_key_nanos.push(keyed - start);
    size.split_nanos.push(split_done - start);
    size.merge_nanos.push(merge_done - split_done);
    if i == 0 {
        check(
            &fs_dyn,
            &opts,
            [&left, &right, &merged],
            &split_row,
            keys,
            o,
        )?;
    }
    Ok(())
}

/// The children hold exactly their halves and the merged tablet all of it (untimed).
fn check(
    fs: &Arc<dyn FileStore>,
    opts: &crate::tablet::TabletOptions,
    [left, right, merged]: [&String; 3],
    split_row: &[u8],
    keys: u64,
    o: &BenchOptions,
) -> StorageResult<()> {
    let ro = ReadOptions::default();
    let (first, last) = (key(0, o.key_size), key(keys - 1, o.key_size));
    let l = Tablet::open(fs.clone(), left, opts.clone())?;
    let r = Tablet::open(fs.clone(), right, opts.clone())?;
    let m = Tablet::open(fs.clone(), merged, opts.clone())?;
    let found = |t: &Tablet, k: &[u8]| -> StorageResult<bool> { Ok(!t.get(k, &ro)?.is_empty()) };
    let ok = found(&l, &first)?
        && found(&r, &last)?
        && found(&m, &first)?
        && found(&m, &last)?
        && found(&r, split_row)?
        && matches!(l.get(split_row, &ro), Err(StorageError::KeyNotInRange));
    if !ok {
        return Err(StorageError::InvalidArgument(
            "split or merge lost data in the benchmark check".into(),
        ));
    }
    // Unload so the directories are left as a tablet node would leave them.
    l.unload()?;
    r.unload()?;
    m.unload()?;
    Ok(())
}
