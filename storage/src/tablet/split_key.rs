//! Picking the split row from the SSTs' in-memory block indexes, in time that grows with the
//! number of files and the logarithm of their block counts, not with the tablet's size.
//!
//! The rule (unchanged from the first version, which sorted every block of every file): with
//! `g(k)` = bytes of the visible blocks whose last key is at most `k`, take the smallest block
//! boundary `k` with `2·g(k) >= total`, then the first boundary at or after it whose row
//! leaves data on both sides and lies inside the range. A block is visible when its last key
//! lies inside the file's clip. Each file's visible blocks are a contiguous run of its index,
//! so `g` is a sum of one binary search per file, and the smallest qualifying boundary is
//! found by binary-searching each file's run against `g`.
//!
//! Must not: read data blocks or copy the indexes (a 1 GiB tablet has a quarter of a million
//! blocks; the split pause must not depend on that).

use crate::error::StorageResult;
use crate::key::{row_lower_bound, row_of};
use crate::lsm::{TableFile, Version};
use crate::manifest::KeyRange;

/// One file's visible blocks: the run `[lo, hi)` of its index.
struct Run<'a> {
    file: &'a TableFile,
    lo: usize,
    hi: usize,
}

impl Run<'_> {
    fn key(&self, i: usize) -> &[u8] {
        self.file.reader.block_boundary(i).0
    }
    /// Bytes of the file up to the end of block `i - 1` (0 for `i == 0`).
    fn end_before(&self, i: usize) -> u64 {
        match i.checked_sub(1) {
            Some(p) => self.file.reader.block_boundary(p).1,
            None => 0,
        }
    }
    fn bytes(&self) -> u64 {
        self.end_before(self.hi) - self.end_before(self.lo)
    }
    /// First index in the run whose last key satisfies `!below(key)`.
    fn partition(&self, below: impl Fn(&[u8]) -> bool) -> usize {
        let (mut lo, mut hi) = (self.lo, self.hi);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            if below(self.key(mid)) {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        lo
    }
    /// Bytes of the run's blocks whose last key is at most `k`.
    fn bytes_through(&self, k: &[u8]) -> u64 {
        let p = self.partition(|key| key <= k);
        self.end_before(p) - self.end_before(self.lo)
    }
}

fn runs(version: &Version) -> Vec<Run<'_>> {
    version
        .files()
        .map(|f| {
            let n = f.reader.block_count();
            let mut run = Run {
                file: f,
                lo: 0,
                hi: n,
            };
            if let Some(l) = &f.meta.clip_lower {
                run.lo = run.partition(|key| key < l.as_slice());
            }
            if let Some(u) = &f.meta.clip_upper {
                run.hi = run.partition(|key| key < u.as_slice());
            }
            run.hi = run.hi.max(run.lo);
            run
        })
        .filter(|r| r.lo < r.hi)
        .collect()
}

/// The split row of the data `version` holds for a tablet covering `range`, or `None` if no
/// row leaves data on both sides.
pub(crate) fn pick_split_row(
    version: &Version,
    range: &KeyRange,
) -> StorageResult<Option<Vec<u8>>> {
    let runs = runs(version);
    let total: u64 = runs.iter().map(|r| r.bytes()).sum();
    if total == 0 {
        return Ok(None);
    }
    let g = |k: &[u8]| -> u64 { runs.iter().map(|r| r.bytes_through(k)).sum() };
    // The smallest boundary with 2·g(k) >= total: per run, the first such block (g grows
    // with the key); then the smallest of those. The largest boundary always qualifies.
    let mut half: Option<&[u8]> = None;
    for r in &runs {
        let i = r.partition(|key| g(key) * 2 < total);
        if i < r.hi && half.is_none_or(|h| r.key(i) < h) {
            half = Some(r.key(i));
        }
    }
    let Some(half) = half else {
        return Ok(None);
    };
    // Splitting at row R sends R to the right child, so R must be above the range start and
    // above the smallest visible row (both children get data).
    let mut first_row: Option<Vec<u8>> = None;
    for f in version.files() {
        let r = row_of(f.meta.effective_smallest())?;
        if first_row.as_ref().is_none_or(|fr| r < *fr) {
            first_row = Some(r);
        }
    }
    let mut floor = first_row.unwrap_or_default().max(range.start.clone());
    // Keys of rows above `floor` start at the lower bound of `floor ++ [0]`, the next row.
    floor.push(0);
    let above_floor = row_lower_bound(&floor);
    let from = half.max(above_floor.as_slice());
    let mut best: Option<&[u8]> = None;
    for r in &runs {
        let i = r.partition(|key| key < from);
        if i < r.hi && best.is_none_or(|b| r.key(i) < b) {
            best = Some(r.key(i));
        }
    }
    let Some(best) = best else {
        return Ok(None);
    };
    let row = row_of(best)?;
    if !range.end.is_empty() && row >= range.end {
        return Ok(None);
    }
    Ok(Some(row))
}
