//! The tablet node: serves tablets of the shared file store through the storage engine.
//!
//! A node registers with the meta store (a new epoch per incarnation), heartbeats to keep its
//! lease, and serves only while that lease is valid, counted from when each request was sent,
//! on its own clock. The master drives it with control commands (load, unload, split, query),
//! fenced by the master's term and the node's epoch; clients send data operations fenced by
//! the node epoch and the tablet version. All engine work (loads, commits, reads, flushes,
//! compactions, splits, unloads) runs as jobs capturing an `Arc<Tablet>`.
//!
//! Map: `actor.rs` the actor, dispatch and job bookkeeping; `lease.rs` registration,
//! heartbeats and lease lapse; `control.rs` master commands; `data.rs` admission of data
//! operations (fencing, validation, timestamps, the per-tablet write lane); `dedup.rs` drops
//! duplicated copies of mutations; `served.rs` the per-tablet state; `work.rs` the job
//! closures (engine calls); `convert.rs` wire <-> engine shapes.
//!
//! Must not: delete shared files (the master's GC does), read a clock or do disk work on its
//! own turn, or guess when a request cannot be served at exactly the version it names.

mod actor;
mod control;
mod convert;
mod data;
pub(crate) mod dedup;
mod lease;
mod served;
mod work;

pub use actor::{NodeCounters, NodeTimer, TabletNode};
pub use work::NodeJobOutput;

use crate::kernel::{Addr, NodeId};
use shale_storage::tablet::TabletOptions;
use std::time::Duration;

/// A tablet node's settings. Every queue has a named bound.
#[derive(Clone)]
pub struct NodeConfig {
    /// Unique node name registered with the meta store.
    pub name: String,
    /// Where clients and the master reach this node.
    pub addr: Addr,
    /// The meta store.
    pub meta: NodeId,
    pub heartbeat_interval: Duration,
    /// Disk size offered to time-series partitions, registered with the meta store (the
    /// seed's `total_disk_size`). Zero: the node takes no partitions.
    pub total_disk_bytes: u64,
    /// How often the node reports its used disk (`report_storage_info`; the seed's 5 min).
    pub storage_report_interval: Duration,
    /// The used disk to report. None: the approximate size of the tablets the node serves
    /// (SSTs plus memtables, the figure the master's query round collects), since the file
    /// store is shared and has no per-node usage.
    pub used_disk_bytes: Option<u64>,
    /// Wait before resending a registration that got no answer.
    pub register_retry_interval: Duration,
    /// Options every tablet is opened with. If `tablet.cache` is unset, the node opens its
    /// tablets over a block cache of its own of `block_cache_bytes`.
    pub tablet: TabletOptions,
    /// Budget of the block cache shared by the node's tablets (made afresh by each
    /// incarnation, so nothing cached survives a restart). Zero: no cache, every block read
    /// from the file store.
    pub block_cache_bytes: usize,
    /// Tablets served (and loading) at once; further loads are refused.
    pub tablets_max: usize,
    /// Admitted writes and read-modify-writes waiting in one tablet's lane; beyond it `Busy`.
    pub lane_ops_max: usize,
    /// Write requests committed by one group-commit job.
    pub group_ops_max: usize,
    /// Read jobs (gets and scans) running at once on the node; beyond it `Busy`.
    pub reads_in_flight_max: usize,
    /// Flush and compaction jobs running at once on the node.
    pub background_jobs_max: usize,
    /// Completed splits remembered so a retried split command gets the same answer.
    pub done_splits_max: usize,
    /// Control requests waiting on one tablet's running command (retries join it).
    pub control_waiters_max: usize,
    /// Data mutations remembered by (sender, request id), so a duplicated copy delivered
    /// later is dropped instead of applied twice (`dedup.rs`).
    pub seen_mutations_max: usize,
    pub value_bytes_max: usize,
    /// Added to the clock when a tablet is loaded, as the floor of its server timestamps, so
    /// a tablet moved from a node whose clock runs ahead (within this margin) still orders new
    /// writes after old ones.
    pub clock_skew_margin: Duration,
    /// Estimates the simulator uses for job durations.
    pub commit_estimate: Duration,
    pub read_estimate: Duration,
    pub load_estimate: Duration,
    pub flush_estimate: Duration,
    pub split_estimate: Duration,
    /// Planted bugs live in this run (tests only).
    #[cfg(feature = "planted-bugs")]
    pub planted: crate::planted::PlantedBugs,
}

/// The default block cache of a tablet node: 64 MiB.
pub const BLOCK_CACHE_BYTES_DEFAULT: usize = 64 << 20;

impl NodeConfig {
    pub fn new(name: impl Into<String>, addr: Addr, meta: NodeId) -> Self {
        Self {
            name: name.into(),
            addr,
            meta,
            // Five heartbeats per default node lease (2.5 s): four may be lost in a row.
            heartbeat_interval: Duration::from_millis(500),
            total_disk_bytes: 0,
            storage_report_interval: Duration::from_secs(300),
            used_disk_bytes: None,
            register_retry_interval: Duration::from_millis(500),
            tablet: TabletOptions::default(),
            block_cache_bytes: BLOCK_CACHE_BYTES_DEFAULT,
            tablets_max: 4_096,
            lane_ops_max: 4_096,
            group_ops_max: 512,
            reads_in_flight_max: 256,
            background_jobs_max: 2,
            done_splits_max: 256,
            control_waiters_max: 16,
            // Far more than a node receives within a message's lifetime in the network.
            seen_mutations_max: 65_536,
            value_bytes_max: crate::proto::limits::VALUE_BYTES_MAX_DEFAULT,
            clock_skew_margin: Duration::from_millis(500),
            commit_estimate: Duration::from_millis(2),
            read_estimate: Duration::from_micros(300),
            load_estimate: Duration::from_millis(10),
            flush_estimate: Duration::from_millis(10),
            split_estimate: Duration::from_millis(10),
            #[cfg(feature = "planted-bugs")]
            planted: crate::planted::PlantedBugs::NONE,
        }
    }
}

impl std::fmt::Debug for NodeConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NodeConfig")
            .field("name", &self.name)
            .field("addr", &self.addr)
            .field("meta", &self.meta)
            .finish_non_exhaustive()
    }
}
