//! One LSM tree per (tablet, locality group): versions of SST files by level, the level
//! iterator, building SSTs from a stream, and leveled compaction picking.
//!
//! Must not: own memtables, the WAL or the manifest (the tablet does), or spawn work: a
//! compaction is a unit the caller runs as a job through `Tablet::compact_step`.

pub mod build;
pub mod compaction;
pub mod level_iter;
pub mod version;

pub use build::{build_tables, BuildOutput, OutputSpec};
pub use compaction::{pick_compaction, CompactionOptions, CompactionPick};
pub use level_iter::LevelIter;
pub use version::{TableFile, Version, LEVEL_COUNT};
