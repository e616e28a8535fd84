//! The client's location cache: which tablet (id, version, node, epoch) holds which key
//! range of a table, filled from the meta store's `Locate` answers and invalidated when a node
//! refuses a request as stale.
//!
//! Must not: guess. A lookup answers only from a cached range that contains the key; a stale
//! entry is caught by the node (version and epoch fencing), never trusted past that.

use crate::meta::{TabletId, TabletLocation};
use std::collections::BTreeMap;

#[derive(Debug, Default)]
pub struct LocationCache {
    tables: BTreeMap<String, BTreeMap<Vec<u8>, TabletLocation>>,
    len: usize,
    len_max: usize,
}

fn contains(loc: &TabletLocation, row: &[u8]) -> bool {
    row >= loc.start.as_slice() && (loc.end.is_empty() || row < loc.end.as_slice())
}

/// Do `[a_start, a_end)` and `[b_start, b_end)` overlap (empty end = +inf)?
fn overlaps(a: &TabletLocation, b: &TabletLocation) -> bool {
    let a_before_b = !a.end.is_empty() && a.end <= b.start;
    let b_before_a = !b.end.is_empty() && b.end <= a.start;
    !(a_before_b || b_before_a)
}

impl LocationCache {
    pub fn new(len_max: usize) -> Self {
        Self {
            tables: BTreeMap::new(),
            len: 0,
            len_max: len_max.max(1),
        }
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Insert a fresh answer, replacing every cached range it overlaps (they are older).
    pub fn insert(&mut self, table: &str, loc: TabletLocation) {
        if self.len >= self.len_max {
            // Simple and safe: a cache is only a hint; start over rather than track recency.
            self.tables.clear();
            self.len = 0;
        }
        let entries = self.tables.entry(table.to_string()).or_default();
        let stale: Vec<Vec<u8>> = entries
            .values()
            .filter(|e| overlaps(e, &loc))
            .map(|e| e.start.clone())
            .collect();
        for k in stale {
            entries.remove(&k);
            self.len -= 1;
        }
        entries.insert(loc.start.clone(), loc);
        self.len += 1;
    }

    /// The cached tablet holding `row`.
    pub fn lookup(&self, table: &str, row: &[u8]) -> Option<&TabletLocation> {
        let entries = self.tables.get(table)?;
        let (_, loc) = entries.range(..=row.to_vec()).next_back()?;
        contains(loc, row).then_some(loc)
    }

    /// The cached tablet holding the greatest rows below `end` (empty `end` = +inf): the
    /// next tablet of a reverse scan.
    pub fn lookup_before(&self, table: &str, end: &[u8]) -> Option<&TabletLocation> {
        let entries = self.tables.get(table)?;
        if end.is_empty() {
            return entries.values().next_back().filter(|l| l.end.is_empty());
        }
        let (_, loc) = entries.range(..end.to_vec()).next_back()?;
        (loc.end.is_empty() || loc.end.as_slice() >= end).then_some(loc)
    }

    /// Where a `Locate` should start so that its answer reaches `end` from below: the end of
    /// the highest cached range below `end`, but not below `floor`.
    pub fn locate_hint_before(&self, table: &str, end: &[u8], floor: &[u8]) -> Vec<u8> {
        let best = self.tables.get(table).and_then(|entries| {
            entries
                .values()
                .filter(|l| !l.end.is_empty() && (end.is_empty() || l.end.as_slice() < end))
                .map(|l| l.end.clone())
                .max()
        });
        match best {
            Some(b) if b.as_slice() > floor => b,
            _ => floor.to_vec(),
        }
    }

    pub fn invalidate(&mut self, table: &str, tablet: TabletId) {
        if let Some(entries) = self.tables.get_mut(table) {
            let before = entries.len();
            entries.retain(|_, l| l.tablet != tablet);
            self.len -= before - entries.len();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::meta::TabletStatus;

    fn loc(id: u64, start: &str, end: &str) -> TabletLocation {
        TabletLocation {
            tablet: TabletId(id),
            start: start.as_bytes().to_vec(),
            end: end.as_bytes().to_vec(),
            status: TabletStatus::Ready,
            version: 1,
            record_version: 1,
            assigned: None,
            addr: None,
        }
    }

    #[test]
    fn lookups_follow_ranges_and_newer_answers_replace_overlaps() {
        let mut c = LocationCache::new(16);
        c.insert("t", loc(1, "", "m"));
        c.insert("t", loc(2, "m", ""));
        assert_eq!(c.lookup("t", b"a").map(|l| l.tablet), Some(TabletId(1)));
        assert_eq!(c.lookup("t", b"m").map(|l| l.tablet), Some(TabletId(2)));
        assert_eq!(c.lookup("u", b"a"), None);
        assert_eq!(
            c.lookup_before("t", b"").map(|l| l.tablet),
            Some(TabletId(2))
        );
        assert_eq!(
            c.lookup_before("t", b"m").map(|l| l.tablet),
            Some(TabletId(1))
        );
        // A split of tablet 2 replaces it.
        c.insert("t", loc(3, "m", "t"));
        assert_eq!(c.len(), 2);
        assert_eq!(c.lookup("t", b"z"), None);
        assert_eq!(c.lookup_before("t", b""), None);
        assert_eq!(c.locate_hint_before("t", b"", b""), b"t".to_vec());
        c.invalidate("t", TabletId(1));
        assert_eq!(c.lookup("t", b"a"), None);
        assert_eq!(c.len(), 1);
    }

    #[test]
    fn the_cache_is_bounded() {
        let mut c = LocationCache::new(2);
        c.insert("t", loc(1, "", "b"));
        c.insert("t", loc(2, "b", "c"));
        c.insert("t", loc(3, "c", ""));
        assert!(c.len() <= 2);
        assert_eq!(c.lookup("t", b"d").map(|l| l.tablet), Some(TabletId(3)));
    }
}
