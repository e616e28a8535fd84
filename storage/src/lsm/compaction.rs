//! Leveled compaction picking: which files to merge next, and whether tombstones may go.
//!
//! Scores as in LevelDB: level 0 by file count against `l0_trigger_files`, level n >= 1 by
//! bytes against `level1_max_bytes * multiplier^(n-1)`. The highest score >= 1 wins. A level-0
//! compaction takes *every* L0 file (so L1 and below only ever hold data older than L0); a
//! level-n compaction takes one file, round-robin by a per-level pointer, plus the overlapping
//! files of level n+1. With nothing over budget, a file inherited from a parent tablet is
//! rewritten next, so shared files drain and the master can collect them.
//!
//! Files are chosen by the *rows* they touch (see `row_bounds`): a row tombstone sorts first
//! in its row but covers the row's later keys, which may sit in another file. Together with
//! outputs that are cut only between rows (`build.rs`), this keeps every row whole within one
//! file per level >= 1, so a compaction always sees every entry a tombstone could cover.
//!
//! A single own file with nothing below it is moved by a manifest edit alone (a "trivial
//! move"). Inherited files are never moved, only rewritten, so a file shared by two siblings
//! stays at the same level in both (which `Tablet::merge` relies on).
//!
//! Must not: do I/O.

use std::sync::Arc;

use super::version::{TableFile, Version, LEVEL_COUNT};
use crate::key::{row_lower_bound, row_of};
use crate::manifest::TabletId;

#[derive(Clone, Debug)]
pub struct CompactionOptions {
    pub l0_trigger_files: usize,
    pub level1_max_bytes: u64,
    pub level_size_multiplier: u64,
}

impl Default for CompactionOptions {
    fn default() -> Self {
        CompactionOptions {
            l0_trigger_files: 4,
            level1_max_bytes: 64 << 20,
            level_size_multiplier: 10,
        }
    }
}

#[derive(Clone)]
pub struct CompactionPick {
    pub lg: usize,
    pub level: usize,
    pub output_level: usize,
    pub inputs: Vec<Arc<TableFile>>,
    /// No file outside the inputs below the output level holds these keys: tombstones may go.
    pub bottommost: bool,
    /// Move `inputs[0]` to `output_level` without rewriting it.
    pub trivial_move: bool,
    pub reason: &'static str,
}

fn level_max_bytes(opts: &CompactionOptions, level: usize) -> u64 {
    assert!(level >= 1);
    let mut max = opts.level1_max_bytes;
    for _ in 1..level {
        max = max.saturating_mul(opts.level_size_multiplier);
    }
    max
}

/// The score of every (lg, level) that can compact down; >= 1 means over budget.
pub fn scores(v: &Version, opts: &CompactionOptions) -> Vec<(f64, usize, usize)> {
    let mut out = Vec::new();
    for lg in 0..v.lgs.len() {
        for level in 0..LEVEL_COUNT - 1 {
            let s = if level == 0 {
                v.lgs[lg][0].len() as f64 / opts.l0_trigger_files.max(1) as f64
            } else {
                v.level_bytes(lg, level) as f64 / level_max_bytes(opts, level) as f64
            };
            out.push((s, lg, level));
        }
    }
    out
}

/// Pick the next unit of compaction work, if any. `pointers[lg][level]` is the round-robin
/// cursor (the largest key of the last file compacted there) and is advanced.
pub fn pick_compaction(
    v: &Version,
    opts: &CompactionOptions,
    me: TabletId,
    pointers: &mut [Vec<Vec<u8>>],
) -> Option<CompactionPick> {
    let best = scores(v, opts)
        .into_iter()
        .filter(|(s, _, _)| *s >= 1.0)
        .max_by(|a, b| a.0.total_cmp(&b.0));
    if let Some((_, lg, level)) = best {
        let first = if level == 0 {
            v.lgs[lg][0].clone()
        } else {
            let files = &v.lgs[lg][level];
            let ptr = &pointers[lg][level];
            let f = files
                .iter()
                .find(|f| f.meta.effective_smallest() > &ptr[..])
                .or_else(|| files.first())?;
            pointers[lg][level] = f.meta.largest.clone();
            vec![f.clone()]
        };
        return Some(expand(v, me, lg, level, first, "over budget"));
    }
    // Nothing over budget: drain one inherited file, shallowest first.
    for lg in 0..v.lgs.len() {
        for level in 0..LEVEL_COUNT {
            if let Some(f) = v.lgs[lg][level].iter().find(|f| f.meta.writer != me) {
                if level == LEVEL_COUNT - 1 {
                    let bottommost = true;
                    return Some(CompactionPick {
                        lg,
                        level,
                        output_level: level,
                        inputs: vec![f.clone()],
                        bottommost,
                        trivial_move: false,
                        reason: "rewrite inherited",
                    });
                }
                let first = if level == 0 {
                    v.lgs[lg][0].clone()
                } else {
                    vec![f.clone()]
                };
                return Some(expand(v, me, lg, level, first, "drain inherited"));
            }
        }
    }
    None
}

/// The smallest and largest row any of `files` can show.
fn row_span<'a>(files: impl Iterator<Item = &'a Arc<TableFile>>) -> (Vec<u8>, Vec<u8>) {
    let mut lo: Option<Vec<u8>> = None;
    let mut hi: Option<Vec<u8>> = None;
    for f in files {
        // Bounds come from verified SSTs; a key that does not parse widens to everything.
        let l = row_of(f.meta.effective_smallest()).unwrap_or_default();
        let h = row_of(&f.meta.largest).unwrap_or_else(|_| vec![0xFF; 1 << 17]);
        if lo.as_ref().is_none_or(|x| l < *x) {
            lo = Some(l);
        }
        if hi.as_ref().is_none_or(|x| h > *x) {
            hi = Some(h);
        }
    }
    (lo.unwrap_or_default(), hi.unwrap_or_default())
}

/// Encoded-key bounds `[lo, hi]` covering every key of the rows `lo_row..=hi_row`. Row,
/// family and column tombstones cover keys after their own, up to the end of their row, so
/// files are chosen by the rows they touch, not just by their keys.
fn row_bounds(lo_row: &[u8], hi_row: &[u8]) -> (Vec<u8>, Vec<u8>) {
    let mut end = row_lower_bound(hi_row);
    // `esc(row) 00 02` sorts after every key of the row and before the next row.
    if let Some(last) = end.last_mut() {
        *last = 0x02;
    }
    (row_lower_bound(lo_row), end)
}

fn expand(
    v: &Version,
    me: TabletId,
    lg: usize,
    level: usize,
    first: Vec<Arc<TableFile>>,
    reason: &'static str,
) -> CompactionPick {
    assert!(!first.is_empty());
    assert!(level < LEVEL_COUNT - 1);
    let output_level = level + 1;
    let (lo_row, hi_row) = row_span(first.iter());
    let (lo, hi) = row_bounds(&lo_row, &hi_row);
    let below = v.overlapping(lg, output_level, &lo, &hi);
    let (lo_row, hi_row) = row_span(first.iter().chain(below.iter()));
    let (lo, hi) = row_bounds(&lo_row, &hi_row);
    let bottommost =
        ((output_level + 1)..LEVEL_COUNT).all(|l| v.overlapping(lg, l, &lo, &hi).is_empty());
    let own_plain = |f: &TableFile| {
        f.meta.writer == me && f.meta.clip_lower.is_none() && f.meta.clip_upper.is_none()
    };
    let trivial_move = first.len() == 1 && below.is_empty() && own_plain(&first[0]);
    let mut inputs = first;
    inputs.extend(below);
    CompactionPick {
        lg,
        level,
        output_level,
        inputs,
        bottommost,
        trivial_move,
        reason,
    }
}
