//! Shale's storage engine: one LSM tree per (tablet, locality group) over a pluggable,
//! synchronous file store, with splits and merges that copy no data.
//!
//! Architecture invariant: this crate is a leaf. It knows nothing of actors, the network,
//! async runtimes, clocks or the global RNG. Every byte of I/O goes through [`fs::FileStore`],
//! so the same engine runs on a local disk and on the simulator's [`fs::SimFs`].
#![deny(clippy::unwrap_used)]

pub mod bench;
pub mod cache;
pub mod error;
pub mod fs;
pub mod iter;
pub mod key;
pub mod lsm;
pub mod manifest;
pub mod memtable;
pub mod read;
pub mod sst;
pub mod tablet;
pub mod ts;
pub mod wal;

#[cfg(test)]
mod testutil;

pub use error::{StorageError, StorageResult};
