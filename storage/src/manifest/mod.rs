//! The manifest: which files make up a tablet, and the counters that must survive a crash.
//!
//! Owns: [`VersionEdit`] and its encoding, [`ManifestState`] (edits folded together), the
//! MANIFEST log and the atomic CURRENT switch ([`store`]).
//! Must not: open SSTs or decide compactions; `lsm/` turns a state into a readable version.

pub mod edit;
pub mod store;

pub use edit::{FileMeta, KeyRange, ManifestState, TabletId, VersionEdit};
pub use store::{read_current, recover, set_current, ManifestWriter};
