//! The meta store's data model: the records it holds and the keys that name them.
//!
//! Owns: the serde types for tables, tablets, nodes, procedures, stat rows and the master
//! lease, plus [`Versioned`], the compare-and-set envelope every stored record lives in.
//! Must not: decide which state transitions are legal (that is the master's business), or
//! know how records are stored or sent.

use crate::kernel::{Addr, Epoch, NodeId, Time};
use serde::{Deserialize, Serialize};
use std::fmt;

/// A tablet's identity. Never reused: the meta store keeps a high-water mark and refuses to
/// create a tablet below it, because file names carry the number of the tablet that wrote
/// them and a reused number would make another tablet's files look like its own. Ids a
/// procedure record lists (split children, a merged tablet) move the mark when the record is
/// written, and that procedure's own phase write may create them below it later.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct TabletId(pub u64);

/// A procedure's identity (the master's persisted phase machines). Never reused either.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct ProcedureId(pub u64);

impl fmt::Display for TabletId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "t{}", self.0)
    }
}
impl fmt::Display for ProcedureId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "p{}", self.0)
    }
}

/// A stored record and its compare-and-set version.
///
/// `version` is the global revision of the transaction that last wrote the record. Using the
/// global revision (rather than a per-record counter) means a record that is deleted and
/// created again never returns to an old version, so a stale compare-and-set cannot succeed
/// by coincidence (no ABA).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Versioned<T> {
    pub version: u64,
    pub value: T,
}

/// One column family of a table's schema.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FamilyDesc {
    pub name: String,
    /// Families in one locality group share an LSM.
    pub locality_group: String,
    pub max_versions: u32,
    pub min_versions: u32,
    /// Zero means cells never expire.
    pub ttl_secs: u64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Schema {
    pub families: Vec<FamilyDesc>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum TableStatus {
    Enabled,
    Disabled,
    /// Dropped by the user; its files wait in the trash for the grace period.
    Dropping,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TableRecord {
    pub name: String,
    pub schema: Schema,
    pub status: TableStatus,
    pub created_at: Time,
}

/// A tablet's state as the master drives it. The meta store stores whichever state it is
/// given; only the master knows which transitions are legal.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum TabletStatus {
    Offline,
    Loading,
    Ready,
    Unloading,
    Splitting,
    Merging,
    LoadFail,
    UnloadFail,
    Disabled,
    /// Replaced by children or a merged tablet; kept only until the procedure finishes.
    Retired,
}

/// Which node a tablet is assigned to, and at which of that node's incarnations. A load
/// carries the epoch so a restarted node (new epoch) refuses a stale assignment.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Assignment {
    pub node: NodeId,
    pub epoch: Epoch,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TabletRecord {
    pub id: TabletId,
    pub table: String,
    /// Inclusive start row; empty is -inf.
    pub start: Vec<u8>,
    /// Exclusive end row; empty is +inf.
    pub end: Vec<u8>,
    /// Where the tablet's files live in the file store.
    pub path: String,
    pub assigned: Option<Assignment>,
    pub status: TabletStatus,
    pub size_bytes: u64,
    /// The tablet's own version (raised by the master on split, merge and move; a merged
    /// tablet gets max(parents) + 1). Not the record's compare-and-set version.
    pub version: u64,
    pub parents: Vec<TabletId>,
}

impl TabletRecord {
    /// Does `[start, end)` contain `row`?
    pub fn contains(&self, row: &[u8]) -> bool {
        row >= self.start.as_slice() && (self.end.is_empty() || row < self.end.as_slice())
    }

    /// Is the range well formed (start < end unless end is +inf)?
    pub fn range_is_valid(&self) -> bool {
        self.end.is_empty() || self.start < self.end
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum NodeStatus {
    Up,
    /// The lease expired (plus margin); the node must register again (new epoch).
    Down,
    /// Taken out of service by an operator or the master.
    Decommissioned,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeRecord {
    pub id: NodeId,
    pub name: String,
    pub addr: Addr,
    pub status: NodeStatus,
    pub epoch: Epoch,
    /// Owned by the meta store, on its own clock. Heartbeats move it without a log write or a
    /// version bump (so they never disturb a master's compare-and-set); a put keeps the stored
    /// value. After a restart the meta store grants every Up node a fresh full lease, which is
    /// never shorter than what the node itself may believe it holds.
    pub lease_expiry: Time,
    pub registered_at: Time,
    /// The node's disk size as it registered (the seed's `total_disk_size`); free disk for
    /// placement is this minus the node's last storage report.
    pub total_disk_bytes: u64,
}

/// The master's persisted phase machines (seed 001). `phase` is a readable name for
/// operators; `payload` is whatever the master needs to resume, encoded by the master.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ProcedureKind {
    Load,
    Unload,
    Move,
    Split,
    Merge,
    CreateTable,
    DisableTable,
    EnableTable,
    DropTable,
    AlterTable,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcedureRecord {
    pub id: ProcedureId,
    pub kind: ProcedureKind,
    pub phase: String,
    /// The tablets this procedure holds locks on, so a restarted master can rebuild its locks.
    pub tablets: Vec<TabletId>,
    pub table: Option<String>,
    pub payload: Vec<u8>,
    pub started_at: Time,
}

/// What a stat row describes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum StatSubject {
    Node(NodeId),
    Tablet(TabletId),
}

/// The latest statistics of one node or tablet from a query round. Rates are per second.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatRow {
    pub subject: StatSubject,
    pub round: u64,
    pub at: Time,
    pub size_bytes: u64,
    pub reads_per_sec: u64,
    pub writes_per_sec: u64,
    pub scans_per_sec: u64,
    /// For a node: tablets it serves. For a tablet: zero.
    pub tablet_count: u32,
    /// For a tablet: shared files inherited from a parent that it still reads (drives GC).
    pub inherited_files: Vec<String>,
}

/// The master lease. `term` grows by one each time a different master (or the same one after
/// the lease lapsed) acquires it; every master write checks (holder, term).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MasterLease {
    pub holder: NodeId,
    /// The master's address, so clients can find it through the meta store.
    pub addr: Addr,
    pub term: u64,
    /// On the meta store's clock. Renewals move it without a log write (see
    /// [`NodeRecord::lease_expiry`] for why that is safe across a restart).
    pub expiry: Time,
}

/// The name of a record that transactions can check and write.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum RecordKey {
    Table(String),
    Tablet(TabletId),
    Node(NodeId),
    Procedure(ProcedureId),
    Stat(StatSubject),
}

/// The record kinds, for scans.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum RecordKind {
    Table,
    Tablet,
    Node,
    Procedure,
    Stat,
}

impl RecordKey {
    pub fn kind(&self) -> RecordKind {
        match self {
            RecordKey::Table(_) => RecordKind::Table,
            RecordKey::Tablet(_) => RecordKind::Tablet,
            RecordKey::Node(_) => RecordKind::Node,
            RecordKey::Procedure(_) => RecordKind::Procedure,
            RecordKey::Stat(_) => RecordKind::Stat,
        }
    }
}

impl fmt::Display for RecordKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RecordKey::Table(name) => write!(f, "table {name:?}"),
            RecordKey::Tablet(id) => write!(f, "tablet {id}"),
            RecordKey::Node(id) => write!(f, "node {id}"),
            RecordKey::Procedure(id) => write!(f, "procedure {id}"),
            RecordKey::Stat(StatSubject::Node(id)) => write!(f, "stat of node {id}"),
            RecordKey::Stat(StatSubject::Tablet(id)) => write!(f, "stat of tablet {id}"),
        }
    }
}

/// Any record's value.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Record {
    Table(TableRecord),
    Tablet(TabletRecord),
    Node(NodeRecord),
    Procedure(ProcedureRecord),
    Stat(StatRow),
}

impl Record {
    pub fn key(&self) -> RecordKey {
        match self {
            Record::Table(t) => RecordKey::Table(t.name.clone()),
            Record::Tablet(t) => RecordKey::Tablet(t.id),
            Record::Node(n) => RecordKey::Node(n.id),
            Record::Procedure(p) => RecordKey::Procedure(p.id),
            Record::Stat(s) => RecordKey::Stat(s.subject),
        }
    }
}

/// Where a client should send requests for a row: answered by the meta store directly.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TabletLocation {
    pub tablet: TabletId,
    pub start: Vec<u8>,
    pub end: Vec<u8>,
    pub status: TabletStatus,
    /// The tablet's own version; a node refuses requests for another version.
    pub version: u64,
    /// The record's compare-and-set version, so a cache can tell which answer is newer.
    pub record_version: u64,
    pub assigned: Option<Assignment>,
    /// The assigned node's address, if the node is registered.
    pub addr: Option<Addr>,
}
