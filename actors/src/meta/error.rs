//! Typed errors of the meta store: what a caller is told ([`MetaError`], serializable because
//! it crosses the network) and what a backend reports ([`BackendError`]).
//!
//! Must not: carry anything a caller cannot act on (no internal pointers, no stack traces).

use super::model::{RecordKey, TabletId};
use crate::kernel::{Epoch, NodeId};
use serde::{Deserialize, Serialize};

/// Why a request failed. `Busy`, `Unavailable` and `OutcomeUnknown` are worth a retry with the
/// same request id; the others are answers.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum MetaError {
    /// A check failed: the record's current version (None if absent) is not what the
    /// transaction expected.
    #[error("version conflict on {key}: expected {expected:?}, current {current:?}")]
    VersionConflict {
        key: RecordKey,
        /// None means "expected absent".
        expected: Option<u64>,
        current: Option<u64>,
    },
    #[error("not found: {0}")]
    NotFound(RecordKey),
    /// The master lease is not held by the caller with that term, or it expired.
    #[error("master lease not held by {holder} in term {term} (current: {current_holder:?} term {current_term})")]
    LeaseNotHeld {
        holder: NodeId,
        term: u64,
        current_holder: Option<NodeId>,
        current_term: u64,
    },
    /// Another master holds an unexpired lease.
    #[error("master lease held by {holder} in term {term}")]
    LeaseTaken { holder: NodeId, term: u64 },
    /// Two tablets of one table would overlap after the transaction.
    #[error("tablets {a} and {b} of table {table:?} would overlap")]
    TabletsOverlap {
        table: String,
        a: TabletId,
        b: TabletId,
    },
    /// The request is malformed or breaks a rule of the store (limits, references, reuse of
    /// a retired id).
    #[error("bad request: {0}")]
    BadRequest(String),
    /// The name is registered to another node id (names are bound to one id for good).
    #[error("node name {name:?} belongs to node {node}")]
    NodeNameTaken { name: String, node: NodeId },
    /// The address is in use by another live node.
    #[error("address {addr} is in use by live node {node}")]
    NodeAddressTaken { addr: String, node: NodeId },
    /// No node with this id is registered.
    #[error("unknown node {0}")]
    UnknownNode(NodeId),
    /// No node with this name is registered.
    #[error("unknown node name {0:?}")]
    UnknownNodeName(String),
    /// No time-series table with this name.
    #[error("unknown table {0:?}")]
    UnknownTable(String),
    /// The table exists with a different definition (tables are immutable).
    #[error("table {0:?} already exists with a different definition")]
    TableExists(String),
    /// A schema that cannot be stored: duplicate or gapped column indexes, duplicate names,
    /// names too long, too many columns.
    #[error("bad schema: {0}")]
    BadSchema(String),
    #[error("bad partition count per day {0}: must be 1..=1440 and divide 1440")]
    BadPartitionCount(u32),
    #[error("timestamp {0} ms is outside 1970-01-01..=9999-12-31 UTC")]
    TimestampOutOfRange(u64),
    #[error("table {table:?} has no partition {date}/{index}")]
    UnknownPartition {
        table: String,
        date: u32,
        index: u32,
    },
    /// No live node has free disk for a new partition.
    #[error("no live node with free disk to place a partition on")]
    NoLiveNode,
    /// An id space (u32, as in the seed's schema) is used up.
    #[error("{0} ids exhausted")]
    IdsExhausted(String),
    /// A heartbeat from a node the store does not know, or from an older incarnation.
    #[error("node {node} is not registered with epoch {epoch}")]
    NodeUnknown { node: NodeId, epoch: Epoch },
    /// The node was marked down (lease expired); it must register again and get a new epoch.
    #[error("node {0} is down; register again")]
    NodeDown(NodeId),
    /// Too many requests are waiting for the disk; retry later.
    #[error("meta store busy")]
    Busy,
    /// The store is recovering or its storage failed; the request was not applied.
    #[error("meta store unavailable")]
    Unavailable,
    /// The storage failed while the request's write was in flight: it may or may not have
    /// been applied. Retry with the same request id to learn which.
    #[error("outcome unknown: storage failed during commit")]
    OutcomeUnknown,
}

/// A backend could not load or persist the log or snapshot.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum BackendError {
    /// A record in the middle of the log, or the snapshot, fails its checks: not a torn
    /// tail, real damage. Recovery refuses to guess.
    #[error("corrupt {what} at byte {offset}: {reason}")]
    Corrupt {
        what: &'static str,
        offset: u64,
        reason: String,
    },
    /// The stored data was written by a newer build, in a format version this build cannot
    /// read (`codec::META_FORMAT_VERSION`). Nothing was decoded or changed; retrying cannot
    /// help. Run a build that supports `found` (or restore data written by this one).
    #[error(
        "{what} is in meta format version {found}, newer than this build supports \
         (up to {supported}); nothing was read or changed: run a Shale build that supports \
         format {found} (docs/operations.md, \"Upgrades and format versions\")"
    )]
    UnsupportedFormat {
        what: &'static str,
        found: u32,
        supported: u32,
    },
    #[error("encode failed: {0}")]
    Encode(String),
    #[error("I/O error: {0}")]
    Io(String),
    /// Injected by a test backend.
    #[error("injected failure: {0}")]
    Injected(&'static str),
}
