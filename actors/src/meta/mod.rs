//! The meta store: the durable holder of the cluster's truth (tables, tablets, nodes,
//! procedures, stat rows and the master lease).
//!
//! Every write is a conditional transaction ([`Txn`]: checks + ops, all or nothing), so a
//! stale master can never overwrite a newer decision. Writes are acknowledged only once
//! durable: the [`MetaStore`] actor applies a transaction to its in-memory state at once (so
//! later transactions are checked against it), queues its log record, and a single disk job
//! at a time appends and syncs a batch (group commit). Every reply, reads included, is held
//! until everything it may have observed is durable, so no client ever sees a state a crash
//! could take back. Persistence sits behind [`MetaBackend`]; [`MemBackend`] models a disk.
//!
//! Map: `model.rs` records; `txn.rs` checks and ops; `eval.rs` the rules a write must pass;
//! `state.rs` the state, apply and invariants;
//! `read.rs` reads and location lookup; `lease.rs` master lease and node registry;
//! `actor.rs` the actor, group commit and recovery; `codec.rs` log/snapshot bytes;
//! `backend.rs` the persistence trait and the in-memory backend; `msg.rs` the messages.
//! The time-series catalog (seed 004): `catalog.rs` its records and apply path;
//! `registry.rs` node info and storage reports; `idmap.rs` the id mapping; `schema.rs`
//! typed tables; `partition.rs` day partitions; `placement.rs` where a new partition goes.
//!
//! Must not: decide tablet state transitions or placement (the master does; partitions of
//! time-series tables are the exception, placed here because they never move on their own),
//! touch a clock, socket or thread. The storage crate is used only for its file store and
//! the pure time-series helpers (`shale_storage::ts`).

mod actor;
mod backend;
pub mod catalog;
pub mod codec;
#[cfg(any(test, feature = "testkit"))]
pub mod conformance;
mod error;
mod eval;
mod fs_backend;
mod idmap;
mod lease;
pub mod model;
mod msg;
mod partition;
pub mod placement;
mod read;
mod registry;
mod schema;
mod state;
mod txn;

pub use actor::{MetaCounters, MetaJobOutput, MetaStore, MetaTimer};
pub use backend::{Loaded, MemBackend, MetaBackend};
pub use catalog::{
    CatalogOp, ColumnInfo, ColumnSpec, NodeInfo, PartitionInfo, PartitionRecord, StorageReport,
    TsTableInfo,
};
pub use error::{BackendError, MetaError};
pub use fs_backend::FsBackend;
pub use model::*;
pub use msg::{fingerprint, MetaCall, MetaMsg, MetaReply, MetaRequest, MetaResponse, RequestId};
pub use state::{
    Change, DedupEntry, DedupRecord, EvalEnv, IdMarks, LogRecord, MetaSnapshot, MetaState, Origin,
};
pub use txn::{Check, Op, Txn, TxnLimits, Write};

use std::time::Duration;

/// The meta store's settings. Every queue and batch has a named bound.
#[derive(Clone, Debug)]
pub struct MetaConfig {
    /// How long a master lease lasts from a grant or renewal.
    pub master_lease: Duration,
    /// How long a node lease lasts from a registration or heartbeat.
    pub node_lease: Duration,
    /// Extra time past a node's lease expiry before it is marked Down (clock-skew margin).
    pub node_down_margin: Duration,
    /// How often node leases are checked.
    pub node_check_interval: Duration,
    /// Wait before retrying a failed recovery load.
    pub load_retry_interval: Duration,
    /// After this many log records since the last snapshot, the next disk job writes a
    /// snapshot and truncates the log instead of appending.
    pub log_records_before_snapshot_max: u64,
    /// Log records in one append + sync (group commit).
    pub batch_len_max: usize,
    /// Committed-in-memory records waiting for the disk; beyond it writes get `Busy`.
    pub pending_len_max: usize,
    /// Replies waiting for durability; beyond it every request gets `Busy`.
    pub held_replies_max: usize,
    /// Remembered answers for retried requests.
    pub dedup_entries_max: usize,
    /// The most records one scan or locate returns.
    pub scan_limit_max: u32,
    /// The most distinct nodes one table's day of partitions is spread over
    /// (`placement.rs`).
    pub placement_spread_max: usize,
    pub txn: TxnLimits,
    /// Estimates the simulator uses for the disk jobs' durations.
    pub commit_estimate: Duration,
    pub snapshot_estimate: Duration,
    pub load_estimate: Duration,
}

impl Default for MetaConfig {
    fn default() -> Self {
        Self {
            master_lease: Duration::from_secs(10),
            // Failover budget (docs/operations.md, "Failover"): a dead node's tablets are
            // reassigned after at most lease + margin + one query interval, plus the loads.
            node_lease: Duration::from_millis(2_500),
            node_down_margin: Duration::from_millis(500),
            node_check_interval: Duration::from_millis(250),
            load_retry_interval: Duration::from_millis(500),
            log_records_before_snapshot_max: 10_000,
            batch_len_max: 256,
            pending_len_max: 4_096,
            held_replies_max: 8_192,
            dedup_entries_max: 4_096,
            scan_limit_max: 1_000,
            placement_spread_max: 8,
            txn: TxnLimits {
                checks_max: 256,
                ops_max: 256,
                key_bytes_max: 64 << 10,
                name_bytes_max: 1_024,
                payload_bytes_max: 1 << 20,
                list_len_max: 1_024,
            },
            commit_estimate: Duration::from_millis(2),
            snapshot_estimate: Duration::from_millis(20),
            load_estimate: Duration::from_millis(20),
        }
    }
}

#[cfg(test)]
mod tests;
