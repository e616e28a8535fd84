//! The meta store's messages: [`MetaRequest`] in, [`MetaResponse`] out.
//!
//! Owns: the wire shape of every call and reply. Self-contained and serde so the cluster can
//! wrap them in its own message enum (e.g. `ClusterMsg::Meta(MetaRequest)`).
//! Must not: depend on how requests are carried or answered (that is the actor's job).
//!
//! Retries: a request carries a [`RequestId`] chosen by its sender, unique per sender. `Txn`
//! and `RegisterNode` are remembered by (sender, id, hash of the call) once committed, so a
//! retry after a lost reply or an `OutcomeUnknown` gets the original answer instead of running
//! twice. The lease calls need no table: acquiring a lease one already holds renews it, and
//! releasing one no longer held succeeds; reads and heartbeats are naturally idempotent. A sender that
//! restarts should start its ids above any it used before (e.g. put its epoch in the high
//! bits); the hash keeps a reused id with a different call from being answered wrongly.

use super::catalog::{ColumnSpec, NodeInfo, PartitionInfo, TsTableInfo};
use super::model::{
    MasterLease, NodeStatus, Record, RecordKey, RecordKind, TabletLocation, Versioned,
};
use super::state::MetaSnapshot;
use super::txn::Txn;
use super::MetaError;
use crate::kernel::{Addr, Epoch, NodeId};
use serde::{Deserialize, Serialize};

/// What the meta store actor exchanges: requests in, responses out. One type because an
/// actor has one message type; a cluster-wide enum wraps it (`ClusterMsg::Meta(MetaMsg)`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum MetaMsg {
    Request(MetaRequest),
    Response(MetaResponse),
}

/// Chosen by the sender; matches a response to its request.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct RequestId(pub u64);

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MetaRequest {
    pub id: RequestId,
    pub call: MetaCall,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum MetaCall {
    /// A conditional transaction. Reply: `Committed`.
    Txn(Txn),
    /// Reply: `Record`.
    Get(RecordKey),
    /// Records of one kind in key order, after `after` (exclusive). Reply: `Records`.
    Scan {
        kind: RecordKind,
        after: Option<RecordKey>,
        limit: u32,
    },
    /// The tablet holding `row` in `table` and up to `limit - 1` tablets after it, for a
    /// client's location cache. Reply: `Locations`.
    Locate {
        table: String,
        row: Vec<u8>,
        limit: u32,
    },
    /// Everything, for a master rebuilding after failover. Reply: `Snapshot`.
    Snapshot,
    /// Acquire the master lease for the sender. Granted if free, expired, or already the
    /// sender's. Reply: `Lease`.
    AcquireMasterLease { addr: Addr },
    /// Extend the sender's unexpired lease of this term. Reply: `Lease`.
    RenewMasterLease { term: u64 },
    /// Give the lease up so another master need not wait for expiry. Reply: `Released`.
    ReleaseMasterLease { term: u64 },
    /// Who is master (clients use it to find the master's address). Reply: `LeaseState`.
    GetMasterLease,
    /// Register the sender as a worker (tablet) node; its node id is the sender's id, and a
    /// name stays bound to that id. Each registration gets a new, larger epoch. Reply:
    /// `Registered`.
    RegisterNode {
        name: String,
        addr: Addr,
        total_disk_bytes: u64,
    },
    /// The sender's heartbeat with its status: `Up` extends the lease; `Down` (leaving) or
    /// `Decommissioned` is logged and ends the lease. Reply: `HeartbeatAck`.
    Heartbeat { epoch: Epoch, status: NodeStatus },
    /// The id of the node registered under `name`. Reply: `NodeIdIs`.
    GetNodeId { name: String },
    /// Reply: `Node`.
    GetNodeInfo { node: NodeId },
    /// Nodes in id order after `after`. Reply: `Nodes`.
    ListNodes { after: Option<NodeId>, limit: u32 },
    /// A node's used disk; kept with the store's time in a bounded history. Reply:
    /// `StorageReported`.
    ReportStorage { node: NodeId, used_disk_bytes: u64 },
    /// The id of `key` in the global id mapping, created on first use. Reply: `Id`.
    IdOf { key: String },
    /// Create a time-series table; the same definition again is a no-op. Reply: `Table`.
    InsertTableInfo {
        table: String,
        partition_count_per_day: u32,
        columns: Vec<ColumnSpec>,
    },
    /// Reply: `Table`.
    GetTableInfo { table: String },
    /// The partitions of the UTC day holding `timestamp_ms`. With `create`, the day's missing
    /// partitions are created and placed first (writers); without, only existing ones are
    /// returned (readers). Reply: `Partitions`.
    GetPartitionInfos {
        table: String,
        timestamp_ms: u64,
        create: bool,
    },
    /// Move one partition to another live node: the only way a partition changes node.
    /// Reply: `Partitions` with the moved partition.
    MovePartition {
        table: String,
        date: u32,
        index: u32,
        to: NodeId,
    },
}

impl MetaCall {
    /// Calls whose committed answer is remembered for retries.
    pub fn is_deduplicated(&self) -> bool {
        matches!(self, MetaCall::Txn(_) | MetaCall::RegisterNode { .. })
    }

    /// Calls that may append to the log (bounded by `pending_len_max`; if the disk fails
    /// while one waits, its outcome is unknown).
    pub fn may_write(&self) -> bool {
        match self {
            MetaCall::Heartbeat { status, .. } => *status != NodeStatus::Up,
            MetaCall::GetPartitionInfos { create, .. } => *create,
            _ => matches!(
                self,
                MetaCall::Txn(_)
                    | MetaCall::RegisterNode { .. }
                    | MetaCall::AcquireMasterLease { .. }
                    | MetaCall::ReleaseMasterLease { .. }
                    | MetaCall::ReportStorage { .. }
                    | MetaCall::IdOf { .. }
                    | MetaCall::InsertTableInfo { .. }
                    | MetaCall::MovePartition { .. }
            ),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MetaResponse {
    pub id: RequestId,
    pub result: Result<MetaReply, MetaError>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum MetaReply {
    /// The transaction committed at `revision`; every record it put now has version
    /// `revision`.
    Committed {
        revision: u64,
    },
    Record(Option<Versioned<Record>>),
    Records {
        records: Vec<Versioned<Record>>,
        /// More records follow the last one returned.
        more: bool,
    },
    Locations(Vec<TabletLocation>),
    /// The durable image, without the retry table. Boxed: it is large.
    Snapshot(Box<MetaSnapshot>),
    /// The lease the sender now holds. `duration_ms` is the lease length the sender should
    /// count from the moment it *sent* the request, on its own clock.
    Lease {
        lease: MasterLease,
        duration_ms: u64,
    },
    Released,
    LeaseState(Option<MasterLease>),
    Registered {
        node: NodeId,
        epoch: Epoch,
        /// Count from when the request was sent, on the node's own clock.
        lease_ms: u64,
    },
    HeartbeatAck {
        lease_ms: u64,
    },
    NodeIdIs(NodeId),
    Node(Box<NodeInfo>),
    Nodes {
        nodes: Vec<NodeInfo>,
        more: bool,
    },
    StorageReported,
    Id(u32),
    Table(Box<TsTableInfo>),
    Partitions(Vec<PartitionInfo>),
}

/// A stable 64-bit hash (FNV-1a) of a call's encoding, for the retry table.
pub fn fingerprint(call: &MetaCall) -> u64 {
    // Encoding a call cannot fail (no maps with non-string keys, no unsupported types); if it
    // ever did, every such call would share one fingerprint and a reused id could be answered
    // from the table, which the id rule in the module docs already forbids.
    let bytes = bincode::serialize(call).unwrap_or_default();
    bytes.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}
