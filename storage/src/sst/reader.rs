//! Reading an SST: open (footer, index, filter, properties, all verified), point filter checks,
//! and a two-level iterator (index in memory, data blocks through the block cache).
//!
//! Owns: the checks that make every byte read from an SST either verified data or
//! `StorageError::Corruption`. Must not: decide what entries mean or hide entries (clipping a
//! shared file to a child's range is `iter::ClippedIter`'s job).

use super::block::{Block, BlockIter};
use super::bloom::Bloom;
use super::format::{get_varint, read_block, BlockHandle, Footer, BLOCK_TRAILER_LEN, FOOTER_LEN};
use crate::cache::BlockCache;
use crate::error::{StorageError, StorageResult};
use crate::fs::ReadableFile;
use crate::iter::EntryIter;
use std::sync::Arc;

pub struct SstReader {
    file: Arc<dyn ReadableFile>,
    path: Arc<str>,
    file_id: u64,
    cache: Option<Arc<BlockCache>>,
    /// (last key of block, handle), keys strictly increasing, handles in file order.
    index: Vec<(Vec<u8>, BlockHandle)>,
    /// Offset where data blocks end (the index block starts); no data handle may cross it.
    data_end: u64,
    bloom: Bloom,
    entries: u64,
    smallest: Vec<u8>,
    largest: Vec<u8>,
    file_size: u64,
}

impl SstReader {
    pub fn open(
        file: Arc<dyn ReadableFile>,
        path: String,
        file_id: u64,
        cache: Option<Arc<BlockCache>>,
    ) -> StorageResult<Arc<SstReader>> {
        let bad = |why: String| StorageError::corruption(&path, why);
        let file_size = file.len();
        let footer_at = file_size.checked_sub(FOOTER_LEN as u64).ok_or_else(|| {
            bad(format!(
                "file of {file_size} bytes is shorter than a footer"
            ))
        })?;
        let mut fbuf = [0u8; FOOTER_LEN];
        file.read_at(footer_at, &mut fbuf)?;
        let footer = Footer::decode(&fbuf, &path)?;
        // Regions are laid out in order; each must end where the next begins.
        let regions = [footer.index, footer.filter, footer.props];
        let mut at = footer.index.offset;
        for h in regions {
            if h.offset != at {
                return Err(bad(format!("region {h:?} not at expected offset {at}")));
            }
            at = h.end().ok_or_else(|| bad("region overflows".into()))?;
        }
        if at != footer_at {
            return Err(bad("regions do not end at the footer".into()));
        }

        let index_block = Block::new(read_block(&*file, &path, footer.index, footer_at)?, &path)?;
        let index = parse_index(index_block, &path, footer.index.offset)?;
        let filter = read_block(&*file, &path, footer.filter, footer_at)?;
        let props = read_block(&*file, &path, footer.props, footer_at)?;
        let (entries, smallest, largest) =
            parse_props(&props).ok_or_else(|| bad("properties block does not parse".into()))?;
        let consistent = match index.last() {
            None => entries == 0 && smallest.is_empty() && largest.is_empty(),
            Some((last, _)) => entries > 0 && *last == largest && smallest <= largest,
        };
        if !consistent {
            return Err(bad("properties disagree with the index".into()));
        }
        Ok(Arc::new(SstReader {
            file,
            path: path.as_str().into(),
            file_id,
            cache,
            index,
            data_end: footer.index.offset,
            bloom: Bloom::new(filter),
            entries,
            smallest,
            largest,
            file_size,
        }))
    }

    pub fn iter(self: &Arc<Self>) -> Box<dyn EntryIter> {
        Box::new(SstIter {
            reader: self.clone(),
            block_idx: 0,
            block: None,
        })
    }

    /// False only if no key of `row` is in this file (bloom filter on raw row bytes).
    pub fn may_contain_row(&self, row: &[u8]) -> bool {
        self.bloom.may_contain(row)
    }

    /// `(last key of block, bytes of the file up to and including that block)` per data
    /// block: what the engine halves to pick a split key.
    pub fn block_boundaries(&self) -> Vec<(Vec<u8>, u64)> {
        self.index
            .iter()
            .map(|(k, h)| (k.clone(), h.offset + h.size + BLOCK_TRAILER_LEN as u64))
            .collect()
    }

    /// Data blocks in the file.
    pub fn block_count(&self) -> usize {
        self.index.len()
    }

    /// Block `i`'s `(last key, bytes of the file up to and including it)`, without copying:
    /// lets the split-key search binary-search the in-memory index instead of walking it.
    pub fn block_boundary(&self, i: usize) -> (&[u8], u64) {
        let (k, h) = &self.index[i];
        (k, h.offset + h.size + BLOCK_TRAILER_LEN as u64)
    }

    pub fn smallest(&self) -> &[u8] {
        &self.smallest
    }
    pub fn largest(&self) -> &[u8] {
        &self.largest
    }
    pub fn file_size(&self) -> u64 {
        self.file_size
    }
    pub fn entries(&self) -> u64 {
        self.entries
    }
    pub fn path(&self) -> &str {
        &self.path
    }

    /// Memory this open reader holds outside the block cache (index and bloom filter), so
    /// the engine can account for it: like RocksDB's default, they are pinned, not cached.
    pub fn memory_bytes(&self) -> usize {
        let index: usize = self
            .index
            .iter()
            .map(|(k, _)| k.capacity() + std::mem::size_of::<(Vec<u8>, BlockHandle)>())
            .sum();
        index + self.bloom.size_bytes() + self.smallest.capacity() + self.largest.capacity()
    }

    fn load_block(&self, idx: usize) -> StorageResult<Arc<Block>> {
        let handle = self.index[idx].1;
        if let Some(b) = self
            .cache
            .as_ref()
            .and_then(|c| c.get(self.file_id, handle.offset))
        {
            return Ok(b);
        }
        let data = read_block(&*self.file, &self.path, handle, self.data_end)?;
        let block = Arc::new(Block::new(data, &self.path)?);
        if let Some(c) = &self.cache {
            c.insert(self.file_id, handle.offset, block.clone());
        }
        Ok(block)
    }
}

fn parse_index(
    block: Block,
    path: &str,
    data_end: u64,
) -> StorageResult<Vec<(Vec<u8>, BlockHandle)>> {
    let bad = |why: &str| StorageError::corruption(path, format!("index: {why}"));
    let mut it = BlockIter::new(Arc::new(block), path.into());
    let mut out: Vec<(Vec<u8>, BlockHandle)> = Vec::new();
    let mut expect_offset = 0u64;
    it.seek_to_first()?;
    while it.valid() {
        let h = BlockHandle::decode(it.value()).ok_or_else(|| bad("block handle"))?;
        // Data blocks tile the data region exactly, in key order.
        if h.offset != expect_offset {
            return Err(bad("data blocks not contiguous"));
        }
        expect_offset = h
            .end()
            .filter(|&e| e <= data_end)
            .ok_or_else(|| bad("block past data end"))?;
        if out.last().is_some_and(|(k, _)| k.as_slice() >= it.key()) {
            return Err(bad("keys out of order"));
        }
        out.push((it.key().to_vec(), h));
        it.next()?;
    }
    if expect_offset != data_end {
        return Err(bad("data region not covered by the index"));
    }
    Ok(out)
}

fn parse_props(b: &[u8]) -> Option<(u64, Vec<u8>, Vec<u8>)> {
    let mut pos = 0;
    let entries = get_varint(b, &mut pos)?;
    let bytes = |pos: &mut usize| -> Option<Vec<u8>> {
        let n = usize::try_from(get_varint(b, pos)?).ok()?;
        let v = b.get(*pos..pos.checked_add(n)?)?.to_vec();
        *pos += n;
        Some(v)
    };
    let smallest = bytes(&mut pos)?;
    let largest = bytes(&mut pos)?;
    (pos == b.len()).then_some((entries, smallest, largest))
}

/// Two-level cursor: a position in the in-memory index plus a cursor in one data block.
struct SstIter {
    reader: Arc<SstReader>,
    block_idx: usize,
    block: Option<BlockIter>,
}

impl SstIter {
    fn open_block(&mut self, idx: usize) -> StorageResult<&mut BlockIter> {
        self.block = None;
        let b = self.reader.load_block(idx)?;
        self.block_idx = idx;
        Ok(self
            .block
            .insert(BlockIter::new(b, self.reader.path.clone())))
    }

    fn block_valid(&self) -> bool {
        self.block.as_ref().is_some_and(|b| b.valid())
    }

    /// Moving forward off a block's end: continue at the next block's first entry.
    fn skip_forward(&mut self) -> StorageResult<()> {
        while !self.block_valid() {
            let next = self.block_idx + 1;
            if self.block.is_none() || next >= self.reader.index.len() {
                self.block = None;
                return Ok(());
            }
            self.open_block(next)?.seek_to_first()?;
            if !self.block_valid() {
                // The index listed a block with no entries: the file is not what we wrote.
                return Err(self.corrupt("empty data block"));
            }
        }
        Ok(())
    }

    fn skip_backward(&mut self) -> StorageResult<()> {
        while !self.block_valid() {
            if self.block.is_none() || self.block_idx == 0 {
                self.block = None;
                return Ok(());
            }
            self.open_block(self.block_idx - 1)?.seek_to_last()?;
            if !self.block_valid() {
                return Err(self.corrupt("empty data block"));
            }
        }
        Ok(())
    }

    fn corrupt(&mut self, why: &str) -> StorageError {
        self.block = None;
        StorageError::corruption(&*self.reader.path, why.to_string())
    }

    /// A block's keys must agree with the index: above the previous block's last key and at
    /// most its own. Checked on every move, so even a block that passed its CRC but came from
    /// the wrong place can never yield a key out of order.
    fn check_bound(&mut self) -> StorageResult<()> {
        if let Some(b) = &self.block {
            if b.valid() {
                let index = &self.reader.index;
                let above_prev =
                    self.block_idx == 0 || b.key() > index[self.block_idx - 1].0.as_slice();
                if !above_prev || b.key() > index[self.block_idx].0.as_slice() {
                    return Err(self.corrupt("block key outside its index bounds"));
                }
            }
        }
        Ok(())
    }

    fn guard(&mut self, r: StorageResult<()>) -> StorageResult<()> {
        if r.is_err() {
            self.block = None;
        }
        r?;
        self.check_bound()
    }
}

impl EntryIter for SstIter {
    fn seek_to_first(&mut self) -> StorageResult<()> {
        self.block = None;
        if self.reader.index.is_empty() {
            return Ok(());
        }
        let r = self
            .open_block(0)
            .and_then(|b| b.seek_to_first())
            .and_then(|()| self.skip_forward());
        self.guard(r)
    }

    fn seek_to_last(&mut self) -> StorageResult<()> {
        self.block = None;
        let Some(last) = self.reader.index.len().checked_sub(1) else {
            return Ok(());
        };
        let r = self
            .open_block(last)
            .and_then(|b| b.seek_to_last())
            .and_then(|()| self.skip_backward());
        self.guard(r)
    }

    fn seek(&mut self, target: &[u8]) -> StorageResult<()> {
        self.block = None;
        let idx = self
            .reader
            .index
            .partition_point(|(k, _)| k.as_slice() < target);
        if idx >= self.reader.index.len() {
            return Ok(());
        }
        let r = self
            .open_block(idx)
            .and_then(|b| b.seek(target))
            .and_then(|()| self.skip_forward());
        self.guard(r)
    }

    fn seek_for_prev(&mut self, target: &[u8]) -> StorageResult<()> {
        self.block = None;
        let idx = self
            .reader
            .index
            .partition_point(|(k, _)| k.as_slice() < target);
        if idx >= self.reader.index.len() {
            return self.seek_to_last();
        }
        let r = self
            .open_block(idx)
            .and_then(|b| b.seek_for_prev(target))
            .and_then(|()| self.skip_backward());
        self.guard(r)
    }

    fn next(&mut self) -> StorageResult<()> {
        let r = match self.block.as_mut() {
            Some(b) => b.next().and_then(|()| self.skip_forward()),
            None => Ok(()),
        };
        self.guard(r)
    }

    fn prev(&mut self) -> StorageResult<()> {
        let r = match self.block.as_mut() {
            Some(b) => b.prev().and_then(|()| self.skip_backward()),
            None => Ok(()),
        };
        self.guard(r)
    }

    fn valid(&self) -> bool {
        self.block_valid()
    }
    fn key(&self) -> &[u8] {
        self.block.as_ref().map_or(&[], |b| b.key())
    }
    fn value(&self) -> &[u8] {
        self.block.as_ref().map_or(&[], |b| b.value())
    }
}
