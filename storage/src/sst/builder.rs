//! Writing an SST: entries in, data blocks, index, filter, properties and footer out.
//!
//! Owns: the order and content of everything written to a new SST. Must not: pick file names
//! or register the file anywhere (the engine does after `finish` succeeds).

use super::block::BlockBuilder;
use super::bloom;
use super::format::{frame_block, put_varint, BlockHandle, Compression, Footer};
use crate::error::{StorageError, StorageResult};
use crate::fs::WritableFile;
use crate::key::row_lower_bound;

#[derive(Clone, Debug)]
pub struct SstOptions {
    pub block_size_bytes: usize,
    pub restart_interval: usize,
    pub bloom_bits_per_key: usize,
    pub compression: Compression,
}

impl Default for SstOptions {
    fn default() -> Self {
        SstOptions {
            block_size_bytes: 4096,
            restart_interval: 16,
            bloom_bits_per_key: 10,
            compression: Compression::None,
        }
    }
}

/// What a finished SST holds; the engine records it in its manifest.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SstInfo {
    pub file_size: u64,
    pub entries: u64,
    /// Smallest and largest encoded keys; both empty for an SST with no entries.
    pub smallest: Vec<u8>,
    pub largest: Vec<u8>,
}

pub struct SstWriter {
    file: Box<dyn WritableFile>,
    path: String,
    opts: SstOptions,
    data: BlockBuilder,
    index: BlockBuilder,
    offset: u64,
    entries: u64,
    smallest: Vec<u8>,
    last_key: Vec<u8>,
    /// The escaped row prefix of the last key, so the row hash is taken once per row.
    last_row_prefix: Vec<u8>,
    row_hashes: Vec<u64>,
}

impl SstWriter {
    pub fn new(file: Box<dyn WritableFile>, path: String, opts: SstOptions) -> Self {
        SstWriter {
            file,
            path,
            data: BlockBuilder::new(opts.restart_interval),
            // Restart at every index entry: binary search lands exactly, and index keys are
            // whole cell keys that share little anyway.
            index: BlockBuilder::new(1),
            opts,
            offset: 0,
            entries: 0,
            smallest: Vec::new(),
            last_key: Vec::new(),
            last_row_prefix: Vec::new(),
            row_hashes: Vec::new(),
        }
    }

    /// Add an entry. Keys must be encoded cell keys in strictly increasing order.
    pub fn add(&mut self, key: &[u8], value: &[u8]) -> StorageResult<()> {
        if self.entries > 0 && key <= self.last_key.as_slice() {
            return Err(StorageError::InvalidArgument(format!(
                "sst {}: keys out of order",
                self.path
            )));
        }
        // The escaped row prefix ends in `00 01`, which cannot occur inside an escaped row, so
        // `starts_with` is an exact same-row test that spares decoding every key.
        if self.entries == 0 || !key.starts_with(&self.last_row_prefix) {
            let row = crate::key::row_of(key).map_err(|_| {
                StorageError::InvalidArgument(format!("sst {}: not a cell key", self.path))
            })?;
            self.row_hashes.push(bloom::hash64(&row));
            self.last_row_prefix = row_lower_bound(&row);
        }
        if self.entries == 0 {
            self.smallest = key.to_vec();
        }
        self.data.add(key, value);
        self.last_key.clear();
        self.last_key.extend_from_slice(key);
        self.entries += 1;
        if self.data.size_estimate() >= self.opts.block_size_bytes {
            self.flush_data_block()?;
        }
        Ok(())
    }

    /// Bytes written so far plus the open block: compaction cuts output files on this.
    pub fn estimated_size_bytes(&self) -> u64 {
        self.offset + self.data.size_estimate() as u64
    }

    fn write_block(
        &mut self,
        contents: &[u8],
        compression: Compression,
    ) -> StorageResult<BlockHandle> {
        let framed = frame_block(contents, compression);
        let handle = BlockHandle {
            offset: self.offset,
            size: (framed.len() - super::format::BLOCK_TRAILER_LEN) as u64,
        };
        self.file.append(&framed)?;
        self.offset += framed.len() as u64;
        Ok(handle)
    }

    fn flush_data_block(&mut self) -> StorageResult<()> {
        if self.data.is_empty() {
            return Ok(());
        }
        let last = self.data.last_key().to_vec();
        let contents = self.data.finish();
        let handle = self.write_block(&contents, self.opts.compression)?;
        // The index key is the block's exact last key: `block_boundaries` reports it, and a
        // seek for `t` goes to the first block whose last key is >= t.
        let mut v = Vec::with_capacity(20);
        handle.encode_into(&mut v);
        self.index.add(&last, &v);
        Ok(())
    }

    /// Write index, filter, properties and footer, then sync the file.
    pub fn finish(mut self) -> StorageResult<SstInfo> {
        self.flush_data_block()?;
        let index_contents = self.index.finish();
        let index = self.write_block(&index_contents, Compression::None)?;
        let filter_contents = bloom::build(&self.row_hashes, self.opts.bloom_bits_per_key);
        let filter = self.write_block(&filter_contents, Compression::None)?;
        let mut props_contents = Vec::new();
        put_varint(&mut props_contents, self.entries);
        put_varint(&mut props_contents, self.smallest.len() as u64);
        props_contents.extend_from_slice(&self.smallest);
        put_varint(&mut props_contents, self.last_key.len() as u64);
        props_contents.extend_from_slice(&self.last_key);
        let props = self.write_block(&props_contents, Compression::None)?;
        let footer = Footer {
            index,
            filter,
            props,
        }
        .encode();
        self.file.append(&footer)?;
        self.offset += footer.len() as u64;
        self.file.sync()?;
        Ok(SstInfo {
            file_size: self.offset,
            entries: self.entries,
            smallest: self.smallest,
            largest: self.last_key,
        })
    }
}
