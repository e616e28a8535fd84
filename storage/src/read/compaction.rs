//! The compaction filter: over a key-ordered stream, keep exactly the entries that reads could
//! still observe.
//!
//! Owns: the keep/drop decision per entry. Must not: read or write files, or pick inputs.
//!
//! Drops, at any level: puts deleted by a tombstone in the input, puts shadowed by a newer
//! write of the same cell, versions beyond `max_versions`, versions past their TTL beyond
//! `min_versions`, and tombstones made redundant by a wider one in the input. Counting only
//! the input's versions is safe: other levels can only add versions, so a version dropped here
//! is at least as deep in the full stream.
//! Tombstones themselves are dropped only when `bottommost` is set. The engine may set it only
//! when no older entry for these rows exists outside the input (nothing below the output
//! level): then every cell a tombstone could delete is in the input and is dropped with it.
//! Entries of families the schema does not know are kept untouched.
//!
//! Snapshots: the filter judges visibility as of the newest state. A reader holding an older
//! `snapshot_seq` may lose shadowed versions it could still see, so the engine must not run a
//! compaction over entries newer than its oldest live snapshot while that snapshot is held.

use super::visibility::{parse, retained, unescape, Class, Classifier};
use super::Schema;
use crate::error::StorageResult;
use crate::key::CellKind;

pub struct CompactionFilter {
    schema: Schema,
    now_micros: u64,
    bottommost: bool,
    row_prefix: Vec<u8>,
    family_esc: Vec<u8>,
    rules: Option<super::FamilyRules>,
    classifier: Classifier,
    dropped: u64,
}

impl CompactionFilter {
    pub fn new(schema: Schema, now_micros: u64, bottommost: bool) -> Self {
        CompactionFilter {
            schema,
            now_micros,
            bottommost,
            row_prefix: Vec::new(),
            family_esc: Vec::new(),
            rules: None,
            classifier: Classifier::default(),
            dropped: 0,
        }
    }

    /// Decide for the next entry of the stream (keys strictly increasing across calls).
    pub fn keep(&mut self, key: &[u8]) -> StorageResult<bool> {
        let p = parse(key)?;
        if self.row_prefix.as_slice() != p.row_prefix {
            self.row_prefix.clear();
            self.row_prefix.extend_from_slice(p.row_prefix);
            self.classifier.reset();
            self.family_esc.clear();
            self.rules = None;
        }
        if self.family_esc.as_slice() != p.family_esc {
            self.family_esc.clear();
            self.family_esc.extend_from_slice(p.family_esc);
            self.rules = self.schema.families.get(&unescape(p.family_esc)).cloned();
        }
        // Redundancy is judged against the tombstones seen before this one.
        let redundant = p.kind.is_tombstone() && self.classifier.tombstone_redundant(&p);
        let class = self.classifier.classify(&p);
        let keep = match class {
            Class::Tombstone => !self.bottommost && !redundant,
            Class::Covered | Class::Shadowed => false,
            Class::Version(i) => match &self.rules {
                // A put in a family the schema lacks: not ours to judge.
                None => p.kind == CellKind::Put,
                Some(r) => retained(i, p.ts, r, self.now_micros),
            },
        };
        if !keep {
            self.dropped += 1;
        }
        Ok(keep)
    }

    /// Entries dropped so far (for compaction statistics).
    pub fn dropped(&self) -> u64 {
        self.dropped
    }
}
