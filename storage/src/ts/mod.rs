//! Time-series tables on the storage side: typed values, day partitions and partition files.
//!
//! Owns: column types and the value checker (`value.rs`), civil dates and the partition
//! arithmetic (`civil.rs`), and the partition file format with its publish protocol
//! (`files.rs`). Must not: know about the meta store, nodes or the network; callers say
//! which table, day and directory.

pub mod civil;
pub mod files;
pub mod value;

pub use civil::{PartitionSlot, PartitionSpec, TimeError};
pub use files::{
    is_published, partition_dir, read_partition, write_partition, IngestOptions, Published, Row,
    TsError,
};
pub use value::{check_values, ColumnType, Value, ValueError};

#[cfg(test)]
mod tests;
