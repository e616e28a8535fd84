//! The block cache: decoded SST blocks shared by all readers of one engine, within a byte
//! budget.
//!
//! Owns: which decoded blocks stay in memory and the accounting that keeps their total charge
//! at or under the budget. Must not: read files (readers fill it) or know block contents.
//!
//! Design: 16 shards, each an LRU under its own mutex, each with 1/16 of the budget, so the
//! sum of shard usages can never exceed the total. A block larger than a shard's budget is
//! simply not cached. Recency is a logical tick per shard kept in a `BTreeMap` (tick -> key):
//! O(log n) per hit, no unsafe linked list. Blocks are handed out as `Arc`, so an evicted
//! block lives on while an iterator still holds it; the budget bounds what the cache keeps,
//! not what readers pin.

use crate::sst::block::Block;
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};

const SHARDS: usize = 16;
/// Bookkeeping charged per cached block on top of its bytes (map entries, Arc header).
pub const BLOCK_OVERHEAD_BYTES: usize = 96;

type CacheKey = (u64, u64);

struct Entry {
    block: Arc<Block>,
    charge: usize,
    tick: u64,
}

#[derive(Default)]
struct Shard {
    map: HashMap<CacheKey, Entry>,
    lru: BTreeMap<u64, CacheKey>,
    usage: usize,
    capacity: usize,
    next_tick: u64,
}

impl Shard {
    fn touch(&mut self, key: CacheKey) -> Option<Arc<Block>> {
        let tick = self.next_tick;
        let e = self.map.get_mut(&key)?;
        self.lru.remove(&e.tick);
        e.tick = tick;
        self.lru.insert(tick, key);
        self.next_tick += 1;
        Some(e.block.clone())
    }

    fn remove(&mut self, key: CacheKey) {
        if let Some(e) = self.map.remove(&key) {
            self.lru.remove(&e.tick);
            self.usage -= e.charge;
        }
    }

    fn insert(&mut self, key: CacheKey, block: Arc<Block>, charge: usize) {
        self.remove(key);
        if charge > self.capacity {
            return;
        }
        while self.usage + charge > self.capacity {
            let Some((_, victim)) = self.lru.pop_first() else {
                break;
            };
            if let Some(e) = self.map.remove(&victim) {
                self.usage -= e.charge;
            }
        }
        let tick = self.next_tick;
        self.next_tick += 1;
        self.lru.insert(tick, key);
        self.map.insert(
            key,
            Entry {
                block,
                charge,
                tick,
            },
        );
        self.usage += charge;
        debug_assert!(self.usage <= self.capacity);
    }
}

/// Blocks of one file spread over shards by offset; both parts of the key feed the choice.
fn shard_index(key: CacheKey) -> usize {
    let h = key.0.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ key.1.wrapping_mul(0xC2B2_AE3D_27D4_EB4F);
    ((h >> 32) as usize) % SHARDS
}

pub struct BlockCache {
    shards: Vec<Mutex<Shard>>,
    capacity_bytes: usize,
}

impl BlockCache {
    pub fn new(capacity_bytes: usize) -> Arc<Self> {
        let shards = (0..SHARDS)
            .map(|i| {
                // Spread the remainder so shard capacities sum exactly to the budget.
                let capacity = capacity_bytes / SHARDS + usize::from(i < capacity_bytes % SHARDS);
                Mutex::new(Shard {
                    capacity,
                    ..Shard::default()
                })
            })
            .collect();
        Arc::new(BlockCache {
            shards,
            capacity_bytes,
        })
    }

    fn shard(&self, key: CacheKey) -> MutexGuard<'_, Shard> {
        let i = shard_index(key);
        // A panic while holding a shard lock leaves the shard consistent enough: at worst an
        // entry's charge is stale, and usage is still bounded by the capacity check.
        self.shards[i].lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn get(&self, file_id: u64, block_offset: u64) -> Option<Arc<Block>> {
        self.shard((file_id, block_offset))
            .touch((file_id, block_offset))
    }

    pub fn insert(&self, file_id: u64, block_offset: u64, block: Arc<Block>) {
        let charge = block.size_bytes() + BLOCK_OVERHEAD_BYTES;
        self.shard((file_id, block_offset))
            .insert((file_id, block_offset), block, charge);
    }

    /// Drop every block of a file (after the engine deletes it, so ids can never alias).
    pub fn evict_file(&self, file_id: u64) {
        for s in &self.shards {
            let mut s = s.lock().unwrap_or_else(|p| p.into_inner());
            let keys: Vec<CacheKey> = s.map.keys().filter(|k| k.0 == file_id).copied().collect();
            for k in keys {
                s.remove(k);
            }
        }
    }

    /// Bytes charged by cached blocks; never more than `capacity_bytes`.
    pub fn usage_bytes(&self) -> usize {
        self.shards
            .iter()
            .map(|s| {
                s.lock()
                    .map(|s| s.usage)
                    .unwrap_or_else(|p| p.into_inner().usage)
            })
            .sum()
    }

    pub fn capacity_bytes(&self) -> usize {
        self.capacity_bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sst::block::BlockBuilder;

    fn block(n: usize) -> Arc<Block> {
        let mut b = BlockBuilder::new(16);
        b.add(b"k", &vec![7u8; n]);
        let mut data = b.finish();
        data.shrink_to_fit();
        Arc::new(Block::new(data, "t").expect("valid"))
    }

    #[test]
    fn usage_never_exceeds_budget() {
        let budget = 64 * 1024;
        let cache = BlockCache::new(budget);
        let mut peak = 0;
        for i in 0..2000u64 {
            cache.insert(i % 7, i * 4096, block(100 + (i as usize * 37) % 3000));
            if i % 3 == 0 {
                let _ = cache.get(i % 7, (i / 2) * 4096);
            }
            peak = peak.max(cache.usage_bytes());
            assert!(cache.usage_bytes() <= budget);
        }
        // The cache does fill up: a budget that is never used would pass trivially.
        assert!(peak > budget / 2, "peak {peak}");
    }

    #[test]
    fn lru_keeps_recently_used_blocks() {
        // One shard's worth of budget per key set: use keys that land in one shard.
        let cache = BlockCache::new(SHARDS * 3 * (block(1000).size_bytes() + BLOCK_OVERHEAD_BYTES));
        let s0 = shard_index((1, 0));
        let same_shard: Vec<u64> = (0..10_000u64)
            .filter(|&o| shard_index((1, o)) == s0)
            .take(4)
            .collect();
        let [a, b, c, d] = [same_shard[0], same_shard[1], same_shard[2], same_shard[3]];
        cache.insert(1, a, block(1000));
        cache.insert(1, b, block(1000));
        cache.insert(1, c, block(1000));
        assert!(cache.get(1, a).is_some()); // a is now most recent; b is least
        cache.insert(1, d, block(1000));
        assert!(cache.get(1, b).is_none(), "least recently used is evicted");
        assert!(cache.get(1, a).is_some());
        assert!(cache.get(1, c).is_some());
        assert!(cache.get(1, d).is_some());
    }

    #[test]
    fn oversized_blocks_are_not_cached_and_evict_file_frees() {
        let cache = BlockCache::new(SHARDS * 2000);
        cache.insert(1, 0, block(5000));
        assert_eq!(cache.usage_bytes(), 0);
        cache.insert(2, 0, block(100));
        cache.insert(2, 4096, block(100));
        assert!(cache.usage_bytes() > 0);
        cache.evict_file(2);
        assert_eq!(cache.usage_bytes(), 0);
        assert!(cache.get(2, 0).is_none());
    }
}
