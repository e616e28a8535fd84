//! Leveled compaction picking: which files to merge next, and whether tombstones may go.
//!
//! Scores as in LevelDB: level 0 by file count against `l0_trigger_files`, level n >= 1 by
//! bytes against `level1_max_bytes * multiplier^(n-1)`. The highest score >= 1 wins. A level-0
//! compaction takes *every* L0 file (so L1 and below only ever hold data older than L0); a
//! level-n compaction takes one file, round-robin by a per-level pointer, plus the overlapping
//! files of level n+1. With nothing over budget, a file inherited from a parent tablet is
//! rewritten next, so shared files drain and the master can collect them.
//!
//! A single own file with nothing below it is moved by a manifest edit alone (a "trivial
//! move"). Inherited files are never moved, only rewritten, so a file shared by two siblings
//! stays at the same level in both (which `Tablet::merge` relies on).
//!
//! Must not: do I/O.

use std::sync::Arc;

use super::version::{TableFile, Version, LEVEL_COUNT};
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
    let lo = first
        .iter()
        .map(|f| f.meta.effective_smallest().to_vec())
        .min()
        .unwrap_or_default();
    let hi = first
        .iter()
        .map(|f| f.meta.largest.clone())
        .max()
        .unwrap_or_default();
    let below = v.overlapping(lg, output_level, &lo, &hi);
    let lo2 = below
        .iter()
        .map(|f| f.meta.effective_smallest().to_vec())
        .chain([lo])
        .min()
        .unwrap_or_default();
    let hi2 = below
        .iter()
        .map(|f| f.meta.largest.clone())
        .chain([hi])
        .max()
        .unwrap_or_default();
    let bottommost =
        ((output_level + 1)..LEVEL_COUNT).all(|l| v.overlapping(lg, l, &lo2, &hi2).is_empty());
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
