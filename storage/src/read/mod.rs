//! Bigtable read semantics over a merged, key-ordered entry stream.
//!
//! Owns: the schema rules a read applies (max/min versions, TTL, locality groups), read
//! options (columns, time range, versions, snapshot), turning one row's entries into cells,
//! row-at-a-time scan helpers in both directions, and the compaction filter
//! (`compaction.rs`), which keeps exactly what these reads could still observe.
//! Must not: read a clock (`now_micros` comes from the caller), merge sources (the engine
//! hands in one merged iterator), or know which files or memtables exist.
//!
//! Order of evaluation for one column: entries newer than `snapshot_seq` are ignored;
//! tombstones delete what they cover (see `visibility.rs`); of the remaining versions, newest
//! first, the family keeps the first `max_versions`, and drops those past their TTL except the
//! first `min_versions`; then the read's own filters apply (time range, then its version cap).
//! Retention is applied before the time range so that what a read can see never depends on
//! whether compaction has run yet.
//!
//! Garbage collection is lazy, as in Bigtable: a version beyond `max_versions` (or expired)
//! is invisible, and compaction deletes it. If the newer versions that hid it are later
//! deleted, a read may expose it again until a compaction has collected it.

mod compaction;
mod visibility;

pub use compaction::CompactionFilter;

use crate::error::{StorageError, StorageResult};
use crate::iter::EntryIter;
use crate::key::row_lower_bound;
use std::collections::{BTreeMap, BTreeSet};
use visibility::{parse, retained, unescape, Class, Classifier};

/// Retention rules of one column family.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FamilyRules {
    /// Versions kept per column (at least 1).
    pub max_versions: u32,
    /// Newest versions kept per column even when past their TTL.
    pub min_versions: u32,
    /// Cells older than this (by timestamp, against the caller's `now_micros`) expire.
    pub ttl_secs: Option<u64>,
    /// The locality group (one LSM per tablet and group) that stores this family.
    pub locality_group: String,
}

pub const DEFAULT_LOCALITY_GROUP: &str = "default";

impl FamilyRules {
    pub fn new(max_versions: u32) -> Self {
        FamilyRules {
            max_versions,
            ..FamilyRules::default()
        }
    }
}

impl Default for FamilyRules {
    fn default() -> Self {
        FamilyRules {
            max_versions: 1,
            min_versions: 0,
            ttl_secs: None,
            locality_group: DEFAULT_LOCALITY_GROUP.to_string(),
        }
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Schema {
    pub families: BTreeMap<Vec<u8>, FamilyRules>,
}

impl Schema {
    /// The rules of `family`; an unknown family is `InvalidArgument`.
    pub fn family(&self, family: &[u8]) -> StorageResult<&FamilyRules> {
        self.families.get(family).ok_or_else(|| {
            StorageError::InvalidArgument(format!(
                "unknown column family {:?}",
                String::from_utf8_lossy(family)
            ))
        })
    }

    /// The distinct locality groups, sorted.
    pub fn locality_groups(&self) -> BTreeSet<String> {
        self.families
            .values()
            .map(|r| r.locality_group.clone())
            .collect()
    }

    /// The families stored in locality group `group`.
    pub fn families_in(&self, group: &str) -> Vec<Vec<u8>> {
        self.families
            .iter()
            .filter(|(_, r)| r.locality_group == group)
            .map(|(f, _)| f.clone())
            .collect()
    }

    /// Refuse schemas reads could not honour: an empty family name (reserved for row
    /// tombstones), zero max versions, or min versions above max.
    pub fn validate(&self) -> StorageResult<()> {
        for (name, r) in &self.families {
            if name.is_empty() {
                return Err(StorageError::InvalidArgument(
                    "empty column family name".into(),
                ));
            }
            if r.max_versions == 0 || r.min_versions > r.max_versions {
                return Err(StorageError::InvalidArgument(format!(
                    "family {:?}: need 1 <= max_versions and min_versions <= max_versions",
                    String::from_utf8_lossy(name)
                )));
            }
        }
        Ok(())
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ColumnFilter {
    /// Every column of a family.
    Family(Vec<u8>),
    /// One column: (family, qualifier).
    Column(Vec<u8>, Vec<u8>),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReadOptions {
    /// Columns to return; empty means every family of the schema.
    pub columns: Vec<ColumnFilter>,
    /// `[min, max)` in microseconds.
    pub time_range: (u64, u64),
    /// At most this many versions per column (after the family's own retention).
    pub max_versions: Option<u32>,
    /// The caller's clock, for TTL. Storage never reads one.
    pub now_micros: u64,
    /// Entries written after this sequence number are ignored.
    pub snapshot_seq: u64,
}

impl Default for ReadOptions {
    fn default() -> Self {
        ReadOptions {
            columns: Vec::new(),
            time_range: (0, u64::MAX),
            max_versions: None,
            now_micros: 0,
            snapshot_seq: u64::MAX,
        }
    }
}

impl ReadOptions {
    /// Every named family must exist in the schema.
    pub fn validate(&self, schema: &Schema) -> StorageResult<()> {
        for c in &self.columns {
            let (ColumnFilter::Family(f) | ColumnFilter::Column(f, _)) = c;
            schema.family(f)?;
        }
        Ok(())
    }

    fn wants(&self, family: &[u8], qualifier: &[u8]) -> bool {
        self.columns.is_empty()
            || self.columns.iter().any(|c| match c {
                ColumnFilter::Family(f) => f == family,
                ColumnFilter::Column(f, q) => f == family && q == qualifier,
            })
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cell {
    pub row: Vec<u8>,
    pub family: Vec<u8>,
    pub qualifier: Vec<u8>,
    pub ts: u64,
    pub value: Vec<u8>,
}

/// Turns one row's entries into cells.
struct RowReader<'a> {
    schema: &'a Schema,
    opts: &'a ReadOptions,
    row: Vec<u8>,
    classifier: Classifier,
    /// Current column, unescaped, and whether the read wants it.
    column: Vec<u8>,
    family: Vec<u8>,
    qualifier: Vec<u8>,
    rules: Option<&'a FamilyRules>,
    wanted: bool,
    returned: u32,
    cells: Vec<Cell>,
}

impl<'a> RowReader<'a> {
    fn new(schema: &'a Schema, opts: &'a ReadOptions, row: Vec<u8>) -> Self {
        RowReader {
            schema,
            opts,
            row,
            classifier: Classifier::default(),
            column: Vec::new(),
            family: Vec::new(),
            qualifier: Vec::new(),
            rules: None,
            wanted: false,
            returned: 0,
            cells: Vec::new(),
        }
    }

    fn push(&mut self, key: &[u8], value: &[u8]) -> StorageResult<()> {
        let p = parse(key)?;
        if p.seq > self.opts.snapshot_seq {
            return Ok(());
        }
        if self.column.as_slice() != p.column {
            self.column.clear();
            self.column.extend_from_slice(p.column);
            self.family = unescape(p.family_esc);
            self.qualifier = unescape(p.qualifier_esc);
            // Families outside the schema (including the empty one row tombstones use) are
            // never returned.
            self.rules = self.schema.families.get(&self.family);
            self.wanted = self.rules.is_some() && self.opts.wants(&self.family, &self.qualifier);
            self.returned = 0;
        }
        let Class::Version(index) = self.classifier.classify(&p) else {
            return Ok(());
        };
        let Some(rules) = self.rules.filter(|_| self.wanted) else {
            return Ok(());
        };
        if !retained(index, p.ts, rules, self.opts.now_micros) {
            return Ok(());
        }
        let (lo, hi) = self.opts.time_range;
        if p.ts < lo || p.ts >= hi || self.opts.max_versions.is_some_and(|m| self.returned >= m) {
            return Ok(());
        }
        self.returned += 1;
        self.cells.push(Cell {
            row: self.row.clone(),
            family: self.family.clone(),
            qualifier: self.qualifier.clone(),
            ts: p.ts,
            value: value.to_vec(),
        });
        Ok(())
    }
}

/// The visible cells of `row`, in key order (family, qualifier, newest version first).
pub fn read_row(
    it: &mut dyn EntryIter,
    row: &[u8],
    schema: &Schema,
    opts: &ReadOptions,
) -> StorageResult<Vec<Cell>> {
    opts.validate(schema)?;
    let prefix = row_lower_bound(row);
    it.seek(&prefix)?;
    let mut reader = RowReader::new(schema, opts, row.to_vec());
    while it.valid() && it.key().starts_with(&prefix) {
        reader.push(it.key(), it.value())?;
        it.next()?;
    }
    Ok(reader.cells)
}

/// Read the row the iterator is positioned in, from its current entry to the row's end,
/// leaving the iterator at the next row's first entry (or invalid). `None` if not valid.
/// Position with `seek(row_lower_bound(row))` first to read a whole row.
pub fn read_row_at(
    it: &mut dyn EntryIter,
    schema: &Schema,
    opts: &ReadOptions,
) -> StorageResult<Option<(Vec<u8>, Vec<Cell>)>> {
    if !it.valid() {
        return Ok(None);
    }
    let prefix = parse(it.key())?.row_prefix.to_vec();
    let mut reader = RowReader::new(schema, opts, unescape(&prefix[..prefix.len() - 2]));
    while it.valid() && it.key().starts_with(&prefix) {
        reader.push(it.key(), it.value())?;
        it.next()?;
    }
    Ok(Some((reader.row, reader.cells)))
}

/// The row of the current entry, if valid.
pub fn current_row(it: &dyn EntryIter) -> StorageResult<Option<Vec<u8>>> {
    if !it.valid() {
        return Ok(None);
    }
    Ok(Some(crate::key::row_of(it.key())?))
}

/// Position on the last entry of the greatest row `< row` and return that row
/// (`None` if there is none): the step of a reverse scan.
pub fn prev_row(it: &mut dyn EntryIter, row: &[u8]) -> StorageResult<Option<Vec<u8>>> {
    it.seek(&row_lower_bound(row))?;
    if it.valid() {
        it.prev()?;
    } else {
        it.seek_to_last()?;
    }
    current_row(it)
}

/// Position on the first entry of the least row `> row` and return that row.
pub fn next_row(it: &mut dyn EntryIter, row: &[u8]) -> StorageResult<Option<Vec<u8>>> {
    // The smallest key above every key of `row`: its escaped prefix with the terminator
    // bumped from `00 01` to `00 02`, which no key of `row` reaches and every later row passes.
    let mut bound = row_lower_bound(row);
    if let Some(last) = bound.last_mut() {
        *last = 0x02;
    }
    it.seek(&bound)?;
    current_row(it)
}

/// Rows in `[start, end)` (`end = None`: unbounded) that have at least one visible cell, in
/// row order or reverse row order, at most `row_limit` of them.
pub fn scan_rows(
    it: &mut dyn EntryIter,
    schema: &Schema,
    opts: &ReadOptions,
    start: &[u8],
    end: Option<&[u8]>,
    reverse: bool,
    row_limit: usize,
) -> StorageResult<Vec<(Vec<u8>, Vec<Cell>)>> {
    opts.validate(schema)?;
    let in_range = |r: &[u8]| r >= start && end.is_none_or(|e| r < e);
    let mut out = Vec::new();
    if !reverse {
        it.seek(&row_lower_bound(start))?;
        while out.len() < row_limit {
            let Some((row, cells)) = read_row_at(it, schema, opts)? else {
                break;
            };
            if !in_range(&row) {
                break;
            }
            if !cells.is_empty() {
                out.push((row, cells));
            }
        }
        return Ok(out);
    }
    let mut row = match end {
        Some(e) => prev_row(it, e)?,
        None => {
            it.seek_to_last()?;
            current_row(it)?
        }
    };
    while out.len() < row_limit {
        let Some(r) = row else { break };
        if !in_range(&r) {
            break;
        }
        let cells = read_row(it, &r, schema, opts)?;
        if !cells.is_empty() {
            out.push((r.clone(), cells));
        }
        row = prev_row(it, &r)?;
    }
    Ok(out)
}

#[cfg(test)]
mod tests;
