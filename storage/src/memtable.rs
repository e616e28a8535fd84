//! The memtable: the in-memory, sorted write buffer of one LSM.
//!
//! Owns: the sorted map of encoded cell keys to values, its byte accounting (which the engine
//! compares against its memtable budget to decide when to flush) and a lock-free-between-calls
//! iterator. Must not: decide when to flush, know about the WAL, or interpret keys.
//!
//! Why `RwLock<BTreeMap<Arc<[u8]>, Arc<[u8]>>>` rather than a skiplist: measured with 1M
//! random 40-byte cell keys and 100-byte values (release, one thread), the B-tree inserted
//! 0.56-1.09M/s and did seek-plus-5-entry copies at 0.42-0.46M/s, against 0.21-0.32M/s and
//! 0.26M/s (seek plus one entry) for `crossbeam_skiplist::SkipMap`. The crate also forbids
//! `unsafe`, so a hand-written skiplist would be an index arena, and the engine serialises
//! writers through group commit, so the write lock is uncontended. Keys and values sit behind
//! `Arc` so an iterator copies a chunk of entries under a short read lock for the price of
//! reference-count bumps, then drops the lock.

use crate::error::StorageResult;
use crate::iter::EntryIter;
use std::collections::BTreeMap;
use std::ops::Bound;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, RwLock, RwLockReadGuard};

/// Bytes charged per entry beyond its key and value: two `Arc` headers and the B-tree slot.
/// An estimate; what matters is that the charge grows with what the map really holds.
pub const ENTRY_OVERHEAD_BYTES: usize = 64;

/// Entries an iterator copies per lock acquisition at most. It starts small (a point read
/// touches one or two entries) and doubles up to this while a scan keeps going.
const CHUNK_MAX: usize = 256;
const CHUNK_MIN: usize = 4;

type Map = BTreeMap<Arc<[u8]>, Arc<[u8]>>;
type Chunk = Vec<(Arc<[u8]>, Arc<[u8]>)>;

#[derive(Default)]
pub struct Memtable {
    map: RwLock<Map>,
    bytes: AtomicUsize,
    len: AtomicUsize,
}

impl Memtable {
    pub fn new() -> Self {
        Self::default()
    }

    fn read(&self) -> RwLockReadGuard<'_, Map> {
        // A poisoned lock means a writer panicked mid-insert; BTreeMap insertion leaves the map
        // consistent, so the data is still sound to read.
        self.map.read().unwrap_or_else(|p| p.into_inner())
    }

    /// Insert an entry (`key` = encoded cell key), copying key and value once each into
    /// their shared allocations. Re-inserting an identical key replaces the value; keys carry
    /// sequence numbers, so the engine never does that in practice.
    pub fn insert(&self, key: &[u8], value: &[u8]) {
        let charge = key.len() + value.len() + ENTRY_OVERHEAD_BYTES;
        let key: Arc<[u8]> = Arc::from(key);
        let value: Arc<[u8]> = Arc::from(value);
        let old = {
            let mut map = self.map.write().unwrap_or_else(|p| p.into_inner());
            map.insert(key.clone(), value)
        };
        match old {
            Some(old) => {
                // Replaced: only the value size changed.
                self.bytes.fetch_add(charge, Ordering::Relaxed);
                self.bytes.fetch_sub(
                    key.len() + old.len() + ENTRY_OVERHEAD_BYTES,
                    Ordering::Relaxed,
                );
            }
            None => {
                self.bytes.fetch_add(charge, Ordering::Relaxed);
                self.len.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// Bytes held: keys, values and a fixed per-entry overhead.
    pub fn approximate_bytes(&self) -> usize {
        self.bytes.load(Ordering::Relaxed)
    }

    pub fn len(&self) -> usize {
        self.len.load(Ordering::Relaxed)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// An iterator that sees every entry inserted before each of its seeks, and possibly later
    /// ones. It holds no lock between calls.
    pub fn iter(self: &Arc<Self>) -> Box<dyn EntryIter> {
        Box::new(MemtableIter {
            mem: self.clone(),
            chunk: Vec::new(),
            pos: 0,
            forward: true,
            exhausted: true,
            chunk_len: CHUNK_MIN,
        })
    }
}

/// Walks a [`Memtable`] through chunks copied under brief read locks.
struct MemtableIter {
    mem: Arc<Memtable>,
    /// Entries in iteration order (ascending when `forward`, descending otherwise).
    chunk: Chunk,
    pos: usize,
    forward: bool,
    /// The map has nothing beyond the chunk's end in the chunk's direction.
    exhausted: bool,
    chunk_len: usize,
}

impl MemtableIter {
    fn fill(&mut self, from: Bound<&[u8]>, forward: bool) {
        self.chunk.clear();
        self.pos = 0;
        self.forward = forward;
        let map = self.mem.read();
        let want = self.chunk_len + 1;
        if forward {
            let range = map.range::<[u8], _>((from, Bound::Unbounded));
            self.chunk
                .extend(range.take(want).map(|(k, v)| (k.clone(), v.clone())));
        } else {
            let range = map.range::<[u8], _>((Bound::Unbounded, from));
            self.chunk
                .extend(range.rev().take(want).map(|(k, v)| (k.clone(), v.clone())));
        }
        drop(map);
        // One extra entry tells whether anything lies beyond the chunk; keep it out.
        self.exhausted = self.chunk.len() < want;
        if !self.exhausted {
            self.chunk.pop();
        }
    }

    /// Step within the current direction, refilling from just past the last entry seen.
    fn advance(&mut self) {
        self.pos += 1;
        if self.pos < self.chunk.len() || self.exhausted {
            return;
        }
        let Some((last, _)) = self.chunk.last().cloned() else {
            return;
        };
        self.chunk_len = (self.chunk_len * 2).min(CHUNK_MAX);
        self.fill(Bound::Excluded(&last), self.forward);
    }

    fn current_key(&self) -> Option<Arc<[u8]>> {
        self.chunk.get(self.pos).map(|e| e.0.clone())
    }
}

impl EntryIter for MemtableIter {
    fn seek_to_first(&mut self) -> StorageResult<()> {
        self.chunk_len = CHUNK_MIN;
        self.fill(Bound::Unbounded, true);
        Ok(())
    }
    fn seek_to_last(&mut self) -> StorageResult<()> {
        self.chunk_len = CHUNK_MIN;
        self.fill(Bound::Unbounded, false);
        Ok(())
    }
    fn seek(&mut self, target: &[u8]) -> StorageResult<()> {
        self.chunk_len = CHUNK_MIN;
        self.fill(Bound::Included(target), true);
        Ok(())
    }
    fn seek_for_prev(&mut self, target: &[u8]) -> StorageResult<()> {
        self.chunk_len = CHUNK_MIN;
        self.fill(Bound::Included(target), false);
        Ok(())
    }
    fn next(&mut self) -> StorageResult<()> {
        if self.forward {
            self.advance();
        } else if let Some(k) = self.current_key() {
            self.chunk_len = CHUNK_MIN;
            self.fill(Bound::Excluded(&k), true);
        }
        Ok(())
    }
    fn prev(&mut self) -> StorageResult<()> {
        if !self.forward {
            self.advance();
        } else if let Some(k) = self.current_key() {
            self.chunk_len = CHUNK_MIN;
            self.fill(Bound::Excluded(&k), false);
        }
        Ok(())
    }
    fn valid(&self) -> bool {
        self.pos < self.chunk.len()
    }
    fn key(&self) -> &[u8] {
        &self.chunk[self.pos].0
    }
    fn value(&self) -> &[u8] {
        &self.chunk[self.pos].1
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn bytes_and_len_track_inserts() {
        let m = Memtable::new();
        assert!(m.is_empty());
        m.insert(b"k1", &[0; 100]);
        m.insert(b"k2", &[0; 10]);
        assert_eq!(m.len(), 2);
        assert_eq!(
            m.approximate_bytes(),
            2 + 100 + 2 + 10 + 2 * ENTRY_OVERHEAD_BYTES
        );
        m.insert(b"k1", &[0; 1]);
        assert_eq!(m.len(), 2);
        assert_eq!(
            m.approximate_bytes(),
            2 + 1 + 2 + 10 + 2 * ENTRY_OVERHEAD_BYTES
        );
    }

    #[test]
    fn iterator_sees_inserts_made_between_calls_without_deadlock() {
        let m = Arc::new(Memtable::new());
        for i in 0..10u8 {
            m.insert(&[i * 2], &[i]);
        }
        let mut it = m.iter();
        assert!(it.seek_to_first().is_ok());
        let mut seen = Vec::new();
        while it.valid() {
            let k = it.key().to_vec();
            seen.push(k[0]);
            // Holding the iterator while inserting must not block: no lock is kept.
            if k[0] < 100 {
                m.insert(&[k[0] + 101], &[]);
            }
            assert!(it.next().is_ok());
        }
        assert_eq!(&seen[..10], &[0, 2, 4, 6, 8, 10, 12, 14, 16, 18]);
    }

    #[test]
    fn shared_between_threads() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<Memtable>();
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        /// Random seeks and walks in both directions, across chunk refills (many keys).
        #[test]
        fn walks_match_model(keys in prop::collection::btree_set(prop::collection::vec(0u8..4, 0..6), 0..600),
                             ops in prop::collection::vec(crate::testutil::arb_op(), 1..60),
                             walk in 0usize..300) {
            let m = Arc::new(Memtable::new());
            for k in &keys {
                m.insert(k, &k.iter().rev().copied().collect::<Vec<u8>>());
            }
            let entries: Vec<_> = keys.iter().map(|k| (k.clone(), k.iter().rev().copied().collect())).collect();
            let mut model = crate::testutil::Model::new(entries);
            let mut it = m.iter();
            // A long forward walk (several refills), then a long backward walk, then random ops.
            let mut script = vec![crate::testutil::Op::First];
            script.extend(std::iter::repeat_n(crate::testutil::Op::Next, walk));
            script.extend(std::iter::repeat_n(crate::testutil::Op::Prev, walk / 2));
            script.extend(ops);
            crate::testutil::check_iter(it.as_mut(), &mut model, &script)?;
        }
    }
}
