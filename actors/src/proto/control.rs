//! The control path: master to tablet node, and back.
//!
//! Every command carries the master's lease term and the node epoch the master believes in; a
//! node refuses a command from an older term than one it has seen, or for another epoch
//! (fencing). Commands are idempotent, because the master retries them after a lost reply or
//! its own failover: loading a tablet already served at that version answers `Loaded`,
//! unloading one not served answers `Unloaded`, a split whose children already exist answers
//! with the split it made.

use super::RequestId;
use crate::kernel::Epoch;
use crate::meta::{Schema, TabletId};
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ControlMsg {
    Request(ControlRequest),
    Response(ControlResponse),
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ControlRequest {
    pub id: RequestId,
    /// The master's lease term.
    pub term: u64,
    /// The node epoch the master believes in.
    pub node_epoch: Epoch,
    pub cmd: ControlCmd,
}

/// Everything a node needs to open a tablet.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TabletSpec {
    pub id: TabletId,
    pub table: String,
    #[serde(with = "serde_bytes")]
    pub start: Vec<u8>,
    #[serde(with = "serde_bytes")]
    pub end: Vec<u8>,
    /// The tablet's folder in the file store.
    pub path: String,
    pub version: u64,
    pub schema: Schema,
}

/// How a load finds the tablet's files.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum LoadMode {
    /// A new, empty tablet (table creation). Refused if files already exist at the path, so a
    /// lost manifest is never papered over with an empty tablet.
    Create,
    /// An existing tablet (after a split, a move, a restart).
    Open,
    /// A merged tablet: if no manifest exists at the path yet, write one that is the union of
    /// the two parents' files (no data copied), then open it.
    MergeOf {
        left_path: String,
        right_path: String,
    },
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ControlCmd {
    Load {
        tablet: TabletSpec,
        mode: LoadMode,
    },
    /// Flush, sync, retire the WAL, stop serving. Reply: `Unloaded`.
    Unload {
        tablet: TabletId,
        version: u64,
    },
    /// Close the tablet to writes (barrier), flush, pick the split key (or use `key`), write
    /// both children's manifests referencing the parent's files, stop serving the parent.
    /// Reply: `Split`. The children are loaded by later `Load { mode: Open }` commands.
    Split {
        tablet: TabletId,
        version: u64,
        #[serde(with = "serde_bytes")]
        key: Option<Vec<u8>>,
        left: (TabletId, String),
        right: (TabletId, String),
    },
    /// Report load and per-tablet statistics for round `round`. Reply: `Report`.
    Query {
        round: u64,
    },
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ControlResponse {
    pub id: RequestId,
    pub result: Result<ControlReply, ControlError>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ControlReply {
    Loaded {
        tablet: TabletId,
        version: u64,
        size_bytes: u64,
    },
    Unloaded {
        tablet: TabletId,
    },
    Split {
        tablet: TabletId,
        #[serde(with = "serde_bytes")]
        key: Vec<u8>,
        left_size_bytes: u64,
        right_size_bytes: u64,
    },
    Report(NodeReport),
}

/// One node's answer to a query round.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeReport {
    pub round: u64,
    pub epoch: Epoch,
    pub tablets: Vec<TabletReport>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TabletReport {
    pub id: TabletId,
    pub version: u64,
    /// Serving, or in a transition (loading, unloading, splitting).
    pub state: ServedState,
    pub size_bytes: u64,
    /// Requests per second over the last query interval.
    pub read_rate: Rate,
    pub write_rate: Rate,
    pub scan_rate: Rate,
    /// Files this tablet reads that another tablet wrote (paths in the file store); the
    /// master's GC deletes a shared file only when no tablet reports it.
    pub inherited_files: Vec<String>,
    /// A split key that halves the tablet's data, when it is large enough to have one.
    #[serde(with = "serde_bytes")]
    pub split_key: Option<Vec<u8>>,
}

/// A rate (per second) carried as its `f64` bits, so reports stay `Eq` and hash/compare deterministically.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
pub struct Rate(pub u64);

impl Rate {
    pub fn new(v: f64) -> Self {
        Rate(v.to_bits())
    }
    pub fn get(self) -> f64 {
        f64::from_bits(self.0)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ServedState {
    Loading,
    Serving,
    Unloading,
    Splitting,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum ControlError {
    /// The command's master term is older than one this node has obeyed.
    #[error("stale master term {asked}, node has seen {seen}")]
    StaleTerm { asked: u64, seen: u64 },
    #[error("node epoch is {current:?}, not {asked:?}")]
    StaleEpoch { asked: Epoch, current: Epoch },
    #[error("tablet {tablet:?} is served at version {served}, not {asked}")]
    StaleVersion {
        tablet: TabletId,
        asked: u64,
        served: u64,
    },
    #[error("tablet {tablet:?} is not served here")]
    NotServing { tablet: TabletId },
    /// Another command is in progress on the tablet; retry after it.
    #[error("tablet {tablet:?} is busy with another command")]
    Busy { tablet: TabletId },
    #[error("node lease expired")]
    LeaseExpired,
    /// `LoadMode::Create` found files, `Open` found none, a split key outside the range...
    #[error("refused: {0}")]
    Refused(String),
    /// The engine failed; the tablet is not served (LoadFail) or unchanged.
    #[error("storage error: {0}")]
    Storage(String),
}
