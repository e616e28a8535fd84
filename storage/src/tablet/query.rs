//! Reads: point gets and scans over one consistent snapshot (a version, the memtables and a
//! visible sequence number taken together under `inner`), clipped to the tablet's range.
//!
//! Sources per read: every memtable generation, level-0 files each on their own, and one
//! [`LevelIter`] per deeper level; a point get skips files whose visible range misses the
//! row or whose bloom filter rules the row out. Only the locality groups holding the asked
//! families are read (row tombstones are stored in every group, so each is self-contained).
//!
//! Must not: return a key outside the tablet's range (a request for one is `KeyNotInRange`),
//! or see a write that is not yet visible.

use std::sync::Arc;

use super::{lock, MemSet, ScanRequest, ScanResult, Tablet};
use crate::error::{StorageError, StorageResult};
use crate::iter::{ClippedIter, EntryIter, MergingIter};
use crate::key::row_lower_bound;
use crate::lsm::{LevelIter, Version};
use crate::read::{read_row, scan_rows, Cell, ColumnFilter, ReadOptions};

struct Snapshot {
    version: Arc<Version>,
    mems: Vec<Arc<MemSet>>,
    seq: u64,
}

/// The smallest encoded key above every key of `row`.
fn row_upper_bound(row: &[u8]) -> Vec<u8> {
    let mut b = row_lower_bound(row);
    if let Some(last) = b.last_mut() {
        *last = 0x02;
    }
    b
}

impl Tablet {
    fn snapshot(&self) -> StorageResult<Snapshot> {
        let inner = lock(&self.inner);
        inner.check_open()?;
        let mut mems = vec![inner.mem.clone()];
        mems.extend(inner.imm.iter().cloned());
        Ok(Snapshot {
            version: inner.version.clone(),
            mems,
            seq: inner.visible_sequence,
        })
    }

    fn lgs_for(&self, opts: &ReadOptions) -> StorageResult<Vec<usize>> {
        if opts.columns.is_empty() {
            return Ok((0..self.lg_names.len()).collect());
        }
        let mut lgs = Vec::new();
        for c in &opts.columns {
            let fam = match c {
                ColumnFilter::Family(f) | ColumnFilter::Column(f, _) => f,
            };
            lgs.push(self.lg_of_family(fam)?);
        }
        lgs.sort_unstable();
        lgs.dedup();
        Ok(lgs)
    }

    /// Sources holding keys in `[lo, hi]` (`hi` absent: unbounded); with `row`, files whose bloom filter excludes it
    /// are skipped.
    fn sources(
        &self,
        snap: &Snapshot,
        lgs: &[usize],
        lo: &[u8],
        hi: Option<&[u8]>,
        row: Option<&[u8]>,
    ) -> Vec<Box<dyn EntryIter>> {
        let mut out: Vec<Box<dyn EntryIter>> = Vec::new();
        for m in &snap.mems {
            for &lg in lgs {
                if !m.lgs[lg].is_empty() {
                    out.push(m.lgs[lg].iter());
                }
            }
        }
        for &lg in lgs {
            for (level, files) in snap.version.lgs[lg].iter().enumerate() {
                let hit: Vec<_> = files
                    .iter()
                    .filter(|f| f.meta.overlaps(lo, hi.unwrap_or(&f.meta.largest)))
                    .filter(|f| row.is_none_or(|r| f.reader.may_contain_row(r)))
                    .cloned()
                    .collect();
                if level == 0 || hit.len() == 1 {
                    out.extend(hit.iter().map(|f| f.iter()));
                } else if !hit.is_empty() {
                    out.push(Box::new(LevelIter::new(hit)));
                }
            }
        }
        out
    }

    fn read_opts(&self, opts: &ReadOptions, snap: &Snapshot) -> ReadOptions {
        let mut o = opts.clone();
        o.snapshot_seq = o.snapshot_seq.min(snap.seq);
        o
    }

    /// The visible cells of `row`.
    pub fn get(&self, row: &[u8], opts: &ReadOptions) -> StorageResult<Vec<Cell>> {
        if !self.range.contains(row) {
            return Err(StorageError::KeyNotInRange);
        }
        let snap = self.snapshot()?;
        let lgs = self.lgs_for(opts)?;
        let (lo, hi) = (row_lower_bound(row), row_upper_bound(row));
        let mut it = MergingIter::new(self.sources(&snap, &lgs, &lo, Some(&hi), Some(row)));
        read_row(&mut it, row, &self.schema, &self.read_opts(opts, &snap))
    }

    /// Rows of `req`'s range that lie in this tablet. A range that misses the tablet
    /// entirely is `KeyNotInRange`; one that overlaps it is clipped to it.
    pub fn scan(&self, req: &ScanRequest) -> StorageResult<ScanResult> {
        let range = &self.range;
        let start = req.start.clone().max(range.start.clone());
        let end = match (req.end.is_empty(), range.end.is_empty()) {
            (true, true) => None,
            (true, false) => Some(range.end.clone()),
            (false, true) => Some(req.end.clone()),
            (false, false) => Some(req.end.clone().min(range.end.clone())),
        };
        if end.as_ref().is_some_and(|e| *e <= start) {
            return Err(StorageError::KeyNotInRange);
        }
        if req.row_limit == 0 {
            return Ok(ScanResult::default());
        }
        let snap = self.snapshot()?;
        let lgs = self.lgs_for(&req.opts)?;
        let lo = row_lower_bound(&start);
        let upper = end.as_ref().map(|e| row_lower_bound(e));
        let merged = MergingIter::new(self.sources(&snap, &lgs, &lo, upper.as_deref(), None));
        // Clipped to the scan's (and so the tablet's) range: nothing outside can leak out.
        let mut it = ClippedIter::new(Box::new(merged), Some(lo), upper);
        let opts = self.read_opts(&req.opts, &snap);
        let rows = scan_rows(
            &mut it,
            &self.schema,
            &opts,
            &start,
            end.as_deref(),
            req.reverse,
            req.row_limit,
        )?;
        for (r, _) in &rows {
            assert!(
                range.contains(r),
                "a scan never returns a row outside the tablet"
            );
        }
        let limit_reached = rows.len() == req.row_limit;
        Ok(ScanResult {
            rows,
            limit_reached,
        })
    }
}
