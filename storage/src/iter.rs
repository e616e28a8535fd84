//! Entry iterators: the one cursor interface every sorted source (memtable, SST, merged view,
//! a split child's clipped view of a shared file) presents to the read path and to compaction.
//!
//! Owns: the [`EntryIter`] trait, [`MergingIter`] (k-way merge, both directions),
//! [`ClippedIter`] (visible range `[lower, upper)` in encoded-key space) and [`VecIter`]
//! (sorted owned entries, for tests and small in-memory sources).
//! Must not: interpret keys (that is `key.rs` and `read.rs`), read clocks, or do I/O itself.
//!
//! Contract shared by every implementation: keys are encoded cell keys compared bytewise;
//! `key()`/`value()` may only be called while `valid()`; `next()`/`prev()` may only be called
//! while `valid()`. After an error the iterator is invalid until the next seek.

use crate::error::StorageResult;
use std::sync::Arc;

/// A bidirectional cursor over key-ordered entries.
pub trait EntryIter: Send {
    fn seek_to_first(&mut self) -> StorageResult<()>;
    fn seek_to_last(&mut self) -> StorageResult<()>;
    /// Position at the first entry whose key is `>= target`.
    fn seek(&mut self, target: &[u8]) -> StorageResult<()>;
    /// Position at the last entry whose key is `<= target`.
    fn seek_for_prev(&mut self, target: &[u8]) -> StorageResult<()>;
    fn next(&mut self) -> StorageResult<()>;
    fn prev(&mut self) -> StorageResult<()>;
    fn valid(&self) -> bool;
    /// The encoded cell key (see `key.rs`). Only while `valid()`.
    fn key(&self) -> &[u8];
    /// Only while `valid()`.
    fn value(&self) -> &[u8];
}

/// Iterates a sorted, owned list of entries. Keys must be strictly increasing; [`VecIter::new`]
/// sorts and drops exact duplicate keys (keeping the last given) so callers cannot break that.
pub struct VecIter {
    entries: Arc<Vec<(Vec<u8>, Vec<u8>)>>,
    /// `entries.len()` means "not valid".
    pos: usize,
}

impl VecIter {
    pub fn new(mut entries: Vec<(Vec<u8>, Vec<u8>)>) -> Self {
        // Stable sort, then keep the last of equal keys: "last write wins" for a test source.
        entries.sort_by(|a, b| a.0.cmp(&b.0));
        let mut deduped: Vec<(Vec<u8>, Vec<u8>)> = Vec::with_capacity(entries.len());
        for e in entries {
            match deduped.last_mut() {
                Some(last) if last.0 == e.0 => *last = e,
                _ => deduped.push(e),
            }
        }
        Self::from_sorted(Arc::new(deduped))
    }

    /// Shares an already sorted, duplicate-free list (checked in debug builds).
    pub fn from_sorted(entries: Arc<Vec<(Vec<u8>, Vec<u8>)>>) -> Self {
        debug_assert!(entries.windows(2).all(|w| w[0].0 < w[1].0));
        let pos = entries.len();
        VecIter { entries, pos }
    }

    fn invalidate(&mut self) {
        self.pos = self.entries.len();
    }
}

impl EntryIter for VecIter {
    fn seek_to_first(&mut self) -> StorageResult<()> {
        self.pos = 0;
        Ok(())
    }
    fn seek_to_last(&mut self) -> StorageResult<()> {
        self.pos = self
            .entries
            .len()
            .checked_sub(1)
            .unwrap_or(self.entries.len());
        Ok(())
    }
    fn seek(&mut self, target: &[u8]) -> StorageResult<()> {
        self.pos = self.entries.partition_point(|e| e.0.as_slice() < target);
        Ok(())
    }
    fn seek_for_prev(&mut self, target: &[u8]) -> StorageResult<()> {
        let after = self.entries.partition_point(|e| e.0.as_slice() <= target);
        match after.checked_sub(1) {
            Some(p) => self.pos = p,
            None => self.invalidate(),
        }
        Ok(())
    }
    fn next(&mut self) -> StorageResult<()> {
        debug_assert!(self.valid());
        self.pos = (self.pos + 1).min(self.entries.len());
        Ok(())
    }
    fn prev(&mut self) -> StorageResult<()> {
        debug_assert!(self.valid());
        match self.pos.checked_sub(1) {
            Some(p) => self.pos = p,
            None => self.invalidate(),
        }
        Ok(())
    }
    fn valid(&self) -> bool {
        self.pos < self.entries.len()
    }
    fn key(&self) -> &[u8] {
        &self.entries[self.pos].0
    }
    fn value(&self) -> &[u8] {
        &self.entries[self.pos].1
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Direction {
    Forward,
    Backward,
}

/// Merges children into one ordered stream. Ties between children holding the same key are
/// broken by child index (lower index first when moving forward), so the merged order is the
/// total order on `(key, child)` in both directions and a direction switch never skips or
/// repeats an entry. Children are few (memtables + L0 files + levels), so the current child is
/// found by a linear scan, as LevelDB does; a heap would only pay off for many children.
pub struct MergingIter {
    children: Vec<Box<dyn EntryIter>>,
    current: Option<usize>,
    direction: Direction,
}

impl MergingIter {
    pub fn new(children: Vec<Box<dyn EntryIter>>) -> Self {
        MergingIter {
            children,
            current: None,
            direction: Direction::Forward,
        }
    }

    fn find_smallest(&mut self) {
        let mut best: Option<usize> = None;
        for (i, c) in self.children.iter().enumerate() {
            if !c.valid() {
                continue;
            }
            best = match best {
                Some(b) if self.children[b].key() <= c.key() => Some(b),
                _ => Some(i),
            };
        }
        self.current = best;
    }

    fn find_largest(&mut self) {
        let mut best: Option<usize> = None;
        for (i, c) in self.children.iter().enumerate() {
            if !c.valid() {
                continue;
            }
            // `>=` so the highest index wins a tie: backward order is reverse (key, child).
            best = match best {
                Some(b) if self.children[b].key() > c.key() => Some(b),
                _ => Some(i),
            };
        }
        self.current = best;
    }

    fn on_error<T>(&mut self, e: crate::error::StorageError) -> StorageResult<T> {
        self.current = None;
        Err(e)
    }
}

impl EntryIter for MergingIter {
    fn seek_to_first(&mut self) -> StorageResult<()> {
        for i in 0..self.children.len() {
            if let Err(e) = self.children[i].seek_to_first() {
                return self.on_error(e);
            }
        }
        self.direction = Direction::Forward;
        self.find_smallest();
        Ok(())
    }

    fn seek_to_last(&mut self) -> StorageResult<()> {
        for i in 0..self.children.len() {
            if let Err(e) = self.children[i].seek_to_last() {
                return self.on_error(e);
            }
        }
        self.direction = Direction::Backward;
        self.find_largest();
        Ok(())
    }

    fn seek(&mut self, target: &[u8]) -> StorageResult<()> {
        for i in 0..self.children.len() {
            if let Err(e) = self.children[i].seek(target) {
                return self.on_error(e);
            }
        }
        self.direction = Direction::Forward;
        self.find_smallest();
        Ok(())
    }

    fn seek_for_prev(&mut self, target: &[u8]) -> StorageResult<()> {
        for i in 0..self.children.len() {
            if let Err(e) = self.children[i].seek_for_prev(target) {
                return self.on_error(e);
            }
        }
        self.direction = Direction::Backward;
        self.find_largest();
        Ok(())
    }

    fn next(&mut self) -> StorageResult<()> {
        let Some(cur) = self.current else {
            return Ok(());
        };
        if self.direction == Direction::Backward {
            // Every other child sits at its largest (key, i) < (K, cur); move each to its
            // smallest (key, i) > (K, cur): a key >= K for i > cur, a key > K for i < cur.
            let k = self.children[cur].key().to_vec();
            for i in 0..self.children.len() {
                if i == cur {
                    continue;
                }
                let child = &mut self.children[i];
                let r = child.seek(&k).and_then(|()| {
                    if i < cur && child.valid() && child.key() == k.as_slice() {
                        child.next()
                    } else {
                        Ok(())
                    }
                });
                if let Err(e) = r {
                    return self.on_error(e);
                }
            }
            self.direction = Direction::Forward;
        }
        if let Err(e) = self.children[cur].next() {
            return self.on_error(e);
        }
        self.find_smallest();
        Ok(())
    }

    fn prev(&mut self) -> StorageResult<()> {
        let Some(cur) = self.current else {
            return Ok(());
        };
        if self.direction == Direction::Forward {
            // Mirror of `next`: move each other child to its largest (key, i) < (K, cur):
            // a key <= K for i < cur, a key < K for i > cur.
            let k = self.children[cur].key().to_vec();
            for i in 0..self.children.len() {
                if i == cur {
                    continue;
                }
                let child = &mut self.children[i];
                let r = child.seek_for_prev(&k).and_then(|()| {
                    if i > cur && child.valid() && child.key() == k.as_slice() {
                        child.prev()
                    } else {
                        Ok(())
                    }
                });
                if let Err(e) = r {
                    return self.on_error(e);
                }
            }
            self.direction = Direction::Backward;
        }
        if let Err(e) = self.children[cur].prev() {
            return self.on_error(e);
        }
        self.find_largest();
        Ok(())
    }

    fn valid(&self) -> bool {
        self.current.is_some()
    }
    fn key(&self) -> &[u8] {
        match self.current {
            Some(c) => self.children[c].key(),
            None => &[],
        }
    }
    fn value(&self) -> &[u8] {
        match self.current {
            Some(c) => self.children[c].value(),
            None => &[],
        }
    }
}

/// Shows only the inner iterator's keys in `[lower, upper)` (either bound may be absent).
/// This is how a split child reads a file it shares with its sibling: the file is unchanged,
/// the view is clipped, and no key outside the child's range can ever leak out.
pub struct ClippedIter {
    inner: Box<dyn EntryIter>,
    lower: Option<Vec<u8>>,
    upper: Option<Vec<u8>>,
    valid: bool,
}

impl ClippedIter {
    pub fn new(inner: Box<dyn EntryIter>, lower: Option<Vec<u8>>, upper: Option<Vec<u8>>) -> Self {
        ClippedIter {
            inner,
            lower,
            upper,
            valid: false,
        }
    }

    fn in_range(&self, key: &[u8]) -> bool {
        let above_lower = self.lower.as_deref().is_none_or(|l| key >= l);
        let below_upper = self.upper.as_deref().is_none_or(|u| key < u);
        above_lower && below_upper
    }

    /// Recompute validity after any inner move; errors leave the view invalid.
    fn settle(&mut self, r: StorageResult<()>) -> StorageResult<()> {
        self.valid = false;
        r?;
        self.valid = self.inner.valid() && self.in_range(self.inner.key());
        Ok(())
    }
}

impl EntryIter for ClippedIter {
    fn seek_to_first(&mut self) -> StorageResult<()> {
        let r = match self.lower.clone() {
            Some(l) => self.inner.seek(&l),
            None => self.inner.seek_to_first(),
        };
        self.settle(r)
    }

    fn seek_to_last(&mut self) -> StorageResult<()> {
        let r = match self.upper.clone() {
            // The last key < upper: land on the first key >= upper and step back once.
            Some(u) => self.inner.seek(&u).and_then(|()| {
                if self.inner.valid() {
                    self.inner.prev()
                } else {
                    self.inner.seek_to_last()
                }
            }),
            None => self.inner.seek_to_last(),
        };
        self.settle(r)
    }

    fn seek(&mut self, target: &[u8]) -> StorageResult<()> {
        let r = match self.lower.as_deref() {
            Some(l) if target < l => {
                let l = l.to_vec();
                self.inner.seek(&l)
            }
            _ => self.inner.seek(target),
        };
        self.settle(r)
    }

    fn seek_for_prev(&mut self, target: &[u8]) -> StorageResult<()> {
        match self.upper.as_deref() {
            Some(u) if target >= u => self.seek_to_last(),
            _ => {
                let r = self.inner.seek_for_prev(target);
                self.settle(r)
            }
        }
    }

    fn next(&mut self) -> StorageResult<()> {
        debug_assert!(self.valid);
        let r = self.inner.next();
        self.settle(r)
    }

    fn prev(&mut self) -> StorageResult<()> {
        debug_assert!(self.valid);
        let r = self.inner.prev();
        self.settle(r)
    }

    fn valid(&self) -> bool {
        self.valid
    }
    fn key(&self) -> &[u8] {
        self.inner.key()
    }
    fn value(&self) -> &[u8] {
        self.inner.value()
    }
}

#[cfg(test)]
#[path = "iter_tests.rs"]
mod tests;
