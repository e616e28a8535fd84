//! Sorted string table files: immutable, checksummed, optionally LZ4-compressed runs of
//! entries with an index and a bloom filter on rows.
//!
//! Owns: the SST file format (`format.rs`), blocks (`block.rs`), the bloom filter
//! (`bloom.rs`), writing (`builder.rs`) and reading (`reader.rs`).
//! Must not: decide which files exist or when to write them (the engine's manifest and
//! compaction do), or interpret what the entries mean (`read.rs`).

pub mod block;
pub mod bloom;
pub mod builder;
pub mod format;
pub mod reader;

pub use builder::{SstInfo, SstOptions, SstWriter};
pub use format::Compression;
pub use reader::SstReader;

#[cfg(test)]
mod tests;
