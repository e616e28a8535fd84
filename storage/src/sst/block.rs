//! Data and index blocks: prefix-compressed entries with restart points.
//!
//! Owns: the layout of a block's decoded contents and a bidirectional cursor over it.
//! Must not: checksum, compress or do I/O (that is `format.rs`), or know what keys mean.
//!
//! Layout: `entry* | restart offset (u32 LE)* | restart count (u32 LE)`, where an entry is
//! `varint shared | varint unshared | varint value_len | key[shared..] | value`. Every
//! `restart_interval`-th entry stores its whole key (`shared == 0`), so a seek binary-searches
//! the restarts and then scans at most one interval. Decoding trusts nothing: every length and
//! offset is bounds-checked and a violation is `Corruption`, even though the block CRC makes
//! one unlikely.

use super::format::{get_varint, put_varint};
use crate::error::{StorageError, StorageResult};
use std::sync::Arc;

pub struct BlockBuilder {
    buf: Vec<u8>,
    restarts: Vec<u32>,
    counter: usize,
    restart_interval: usize,
    last_key: Vec<u8>,
    entries: usize,
}

impl BlockBuilder {
    pub fn new(restart_interval: usize) -> Self {
        BlockBuilder {
            buf: Vec::new(),
            restarts: vec![0],
            counter: 0,
            restart_interval: restart_interval.max(1),
            last_key: Vec::new(),
            entries: 0,
        }
    }

    /// Append an entry; keys must be strictly increasing (the caller checks).
    pub fn add(&mut self, key: &[u8], value: &[u8]) {
        let mut shared = 0;
        if self.counter < self.restart_interval {
            shared = key
                .iter()
                .zip(&self.last_key)
                .take_while(|(a, b)| a == b)
                .count();
        } else {
            self.restarts.push(self.buf.len() as u32);
            self.counter = 0;
        }
        put_varint(&mut self.buf, shared as u64);
        put_varint(&mut self.buf, (key.len() - shared) as u64);
        put_varint(&mut self.buf, value.len() as u64);
        self.buf.extend_from_slice(&key[shared..]);
        self.buf.extend_from_slice(value);
        self.last_key.truncate(shared);
        self.last_key.extend_from_slice(&key[shared..]);
        self.counter += 1;
        self.entries += 1;
    }

    pub fn size_estimate(&self) -> usize {
        self.buf.len() + 4 * self.restarts.len() + 4
    }
    pub fn is_empty(&self) -> bool {
        self.entries == 0
    }
    pub fn last_key(&self) -> &[u8] {
        &self.last_key
    }

    /// The finished contents; the builder is reset for the next block.
    pub fn finish(&mut self) -> Vec<u8> {
        let mut out = std::mem::take(&mut self.buf);
        for r in &self.restarts {
            out.extend_from_slice(&r.to_le_bytes());
        }
        out.extend_from_slice(&(self.restarts.len() as u32).to_le_bytes());
        self.restarts = vec![0];
        self.counter = 0;
        self.last_key.clear();
        self.entries = 0;
        out
    }
}

/// A decoded block whose restart array has been validated.
pub struct Block {
    data: Vec<u8>,
    restarts_offset: usize,
    num_restarts: usize,
}

fn u32_at(data: &[u8], at: usize) -> Option<usize> {
    let b = data.get(at..at.checked_add(4)?)?;
    Some(u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize)
}

impl Block {
    pub fn new(data: Vec<u8>, path: &str) -> StorageResult<Block> {
        let bad = |why: &str| StorageError::corruption(path, format!("block: {why}"));
        let n = data
            .len()
            .checked_sub(4)
            .and_then(|at| u32_at(&data, at))
            .ok_or_else(|| bad("too short"))?;
        let restarts_offset = n
            .checked_mul(4)
            .and_then(|b| b.checked_add(4))
            .and_then(|b| data.len().checked_sub(b))
            .ok_or_else(|| bad("restart array larger than block"))?;
        if n == 0 {
            return Err(bad("no restart points"));
        }
        let mut prev = None;
        for i in 0..n {
            let r = u32_at(&data, restarts_offset + 4 * i).ok_or_else(|| bad("restart array"))?;
            let ok = match prev {
                None => r == 0,
                Some(p) => r > p && r < restarts_offset,
            };
            if !ok {
                return Err(bad("restart points out of order"));
            }
            prev = Some(r);
        }
        Ok(Block {
            data,
            restarts_offset,
            num_restarts: n,
        })
    }

    /// Bytes of memory this block holds (its cache charge).
    pub fn size_bytes(&self) -> usize {
        self.data.capacity()
    }

    fn restart_point(&self, i: usize) -> usize {
        u32_at(&self.data, self.restarts_offset + 4 * i).unwrap_or(self.restarts_offset)
    }
}

/// A cursor over one block. Owns an `Arc` of the block so it can outlive cache eviction.
pub struct BlockIter {
    block: Arc<Block>,
    path: Arc<str>,
    key: Vec<u8>,
    value_start: usize,
    value_end: usize,
    /// Offset of the current entry; `restarts_offset` when invalid.
    current: usize,
    next_offset: usize,
    restart_index: usize,
}

#[allow(clippy::should_implement_trait)] // fallible and bidirectional: not an Iterator
impl BlockIter {
    pub fn new(block: Arc<Block>, path: Arc<str>) -> Self {
        let end = block.restarts_offset;
        BlockIter {
            block,
            path,
            key: Vec::new(),
            value_start: 0,
            value_end: 0,
            current: end,
            next_offset: end,
            restart_index: 0,
        }
    }

    pub fn valid(&self) -> bool {
        self.current < self.block.restarts_offset
    }
    pub fn key(&self) -> &[u8] {
        &self.key
    }
    pub fn value(&self) -> &[u8] {
        &self.block.data[self.value_start..self.value_end]
    }

    fn invalidate(&mut self) {
        self.current = self.block.restarts_offset;
        self.next_offset = self.current;
    }

    fn corrupt(&mut self, why: &str) -> StorageError {
        self.invalidate();
        StorageError::corruption(&*self.path, format!("block entry: {why}"))
    }

    fn seek_to_restart(&mut self, i: usize) {
        self.key.clear();
        self.restart_index = i;
        self.next_offset = self.block.restart_point(i);
        self.current = self.block.restarts_offset;
    }

    /// Decode the entry at `next_offset`; at the end of entries the cursor becomes invalid.
    fn parse_next(&mut self) -> StorageResult<()> {
        let p = self.next_offset;
        let limit = self.block.restarts_offset;
        if p >= limit {
            self.invalidate();
            return Ok(());
        }
        let data = &self.block.data[..limit];
        let mut pos = p;
        let (Some(shared), Some(unshared), Some(vlen)) = (
            get_varint(data, &mut pos),
            get_varint(data, &mut pos),
            get_varint(data, &mut pos),
        ) else {
            return Err(self.corrupt("truncated header"));
        };
        let (shared, unshared, vlen) = (shared as usize, unshared as usize, vlen as usize);
        if shared > self.key.len() {
            return Err(self.corrupt("shared prefix longer than previous key"));
        }
        let key_end = pos.checked_add(unshared).filter(|&e| e <= limit);
        let Some(value_end) = key_end
            .and_then(|k| k.checked_add(vlen))
            .filter(|&e| e <= limit)
        else {
            return Err(self.corrupt("entry runs past block end"));
        };
        let key_end = pos + unshared;
        self.key.truncate(shared);
        self.key.extend_from_slice(&self.block.data[pos..key_end]);
        self.value_start = key_end;
        self.value_end = value_end;
        self.current = p;
        self.next_offset = value_end;
        while self.restart_index + 1 < self.block.num_restarts
            && self.block.restart_point(self.restart_index + 1) <= self.current
        {
            self.restart_index += 1;
        }
        Ok(())
    }

    pub fn seek_to_first(&mut self) -> StorageResult<()> {
        self.seek_to_restart(0);
        self.parse_next()
    }

    pub fn seek_to_last(&mut self) -> StorageResult<()> {
        self.seek_to_restart(self.block.num_restarts - 1);
        self.parse_next()?;
        while self.valid() && self.next_offset < self.block.restarts_offset {
            self.parse_next()?;
        }
        Ok(())
    }

    /// First entry with key >= target.
    pub fn seek(&mut self, target: &[u8]) -> StorageResult<()> {
        // Binary search for the last restart whose key is < target.
        let (mut lo, mut hi) = (0usize, self.block.num_restarts - 1);
        while lo < hi {
            let mid = (lo + hi).div_ceil(2);
            self.seek_to_restart(mid);
            self.parse_next()?;
            if !self.valid() {
                return Err(self.corrupt("restart point at block end"));
            }
            if self.key.as_slice() < target {
                lo = mid;
            } else {
                hi = mid - 1;
            }
        }
        self.seek_to_restart(lo);
        self.parse_next()?;
        while self.valid() && self.key.as_slice() < target {
            self.parse_next()?;
        }
        Ok(())
    }

    /// Last entry with key <= target.
    pub fn seek_for_prev(&mut self, target: &[u8]) -> StorageResult<()> {
        self.seek(target)?;
        if !self.valid() {
            return self.seek_to_last();
        }
        if self.key.as_slice() > target {
            self.prev()?;
        }
        Ok(())
    }

    pub fn next(&mut self) -> StorageResult<()> {
        self.parse_next()
    }

    /// Step back: rescan from the restart point before the current entry.
    pub fn prev(&mut self) -> StorageResult<()> {
        let original = self.current;
        while self.block.restart_point(self.restart_index) >= original {
            if self.restart_index == 0 {
                self.invalidate();
                return Ok(());
            }
            self.restart_index -= 1;
        }
        self.seek_to_restart(self.restart_index);
        loop {
            self.parse_next()?;
            if !self.valid() {
                return Err(self.corrupt("entry boundaries disagree"));
            }
            if self.next_offset >= original {
                return Ok(());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn build(keys: &[Vec<u8>], interval: usize) -> Arc<Block> {
        let mut b = BlockBuilder::new(interval);
        for k in keys {
            b.add(k, &[k.len() as u8]);
        }
        Arc::new(Block::new(b.finish(), "t").expect("valid block"))
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(100))]
        #[test]
        fn block_cursor_matches_model(
            keys in prop::collection::btree_set(prop::collection::vec(0u8..4, 0..5), 1..60),
            interval in 1usize..5,
            ops in prop::collection::vec(crate::testutil::arb_op(), 1..50),
        ) {
            let keys: Vec<_> = keys.into_iter().collect();
            let block = build(&keys, interval);
            let entries = keys.iter().map(|k| (k.clone(), vec![k.len() as u8])).collect();
            let mut model = crate::testutil::Model::new(entries);
            let mut it = BlockCursor(BlockIter::new(block, "t".into()));
            crate::testutil::check_iter(&mut it, &mut model, &ops)?;
        }

        /// Garbage never panics: it parses or it is Corruption.
        #[test]
        fn garbage_blocks_do_not_panic(data in prop::collection::vec(any::<u8>(), 0..64), target in prop::collection::vec(any::<u8>(), 0..4)) {
            if let Ok(b) = Block::new(data, "t") {
                let mut it = BlockIter::new(Arc::new(b), "t".into());
                let _ = it.seek_to_first().and_then(|()| { while it.valid() { it.next()?; } Ok(()) });
                let _ = it.seek_to_last().and_then(|()| { while it.valid() { it.prev()?; } Ok(()) });
                let _ = it.seek(&target);
                let _ = it.seek_for_prev(&target);
            }
        }
    }

    /// Adapts `BlockIter` to the shared model checker.
    struct BlockCursor(BlockIter);
    impl crate::iter::EntryIter for BlockCursor {
        fn seek_to_first(&mut self) -> StorageResult<()> {
            self.0.seek_to_first()
        }
        fn seek_to_last(&mut self) -> StorageResult<()> {
            self.0.seek_to_last()
        }
        fn seek(&mut self, t: &[u8]) -> StorageResult<()> {
            self.0.seek(t)
        }
        fn seek_for_prev(&mut self, t: &[u8]) -> StorageResult<()> {
            self.0.seek_for_prev(t)
        }
        fn next(&mut self) -> StorageResult<()> {
            self.0.next()
        }
        fn prev(&mut self) -> StorageResult<()> {
            self.0.prev()
        }
        fn valid(&self) -> bool {
            self.0.valid()
        }
        fn key(&self) -> &[u8] {
            self.0.key()
        }
        fn value(&self) -> &[u8] {
            self.0.value()
        }
    }

    #[test]
    fn prefix_compression_shrinks_shared_prefixes() {
        let keys: Vec<Vec<u8>> = (0..100u32)
            .map(|i| format!("common-prefix-{i:05}").into_bytes())
            .collect();
        let mut b = BlockBuilder::new(16);
        for k in &keys {
            b.add(k, b"");
        }
        let raw: usize = keys.iter().map(|k| k.len()).sum();
        assert!(b.finish().len() < raw / 2);
    }

    #[test]
    fn bad_restart_arrays_are_corruption() {
        for data in [
            vec![],
            vec![0, 0, 0],
            vec![0, 0, 0, 0],
            vec![5, 0, 0, 0, 1, 0, 0, 0],
            vec![9, 9, 9, 9],
        ] {
            assert!(matches!(
                Block::new(data, "t"),
                Err(StorageError::Corruption { .. })
            ));
        }
    }
}
