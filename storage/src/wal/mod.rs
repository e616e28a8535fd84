//! The write-ahead log: one per tablet, rolled with each memtable switch.
//!
//! Owns: record framing ([`record`], shared with the manifest), the [`WriteBatch`] encoding,
//! appending groups of batches ([`WalWriter`]), replay up to a torn tail ([`replay_wal`]) and
//! group commit across threads ([`GroupCommit`]).
//! Must not: know about memtables, SSTs or the manifest; the tablet wires those together.

pub mod batch;
pub mod codec;
pub mod group;
pub mod reader;
pub mod record;
pub mod writer;

pub use batch::{Mutation, WriteBatch};
pub use group::GroupCommit;
pub use reader::{replay_wal, WalReplay};
pub use writer::WalWriter;
