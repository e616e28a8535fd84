//! The cluster runner: a whole simulated Shale cluster (one meta store, one or two masters,
//! tablet nodes, workload clients and an admin client) running the real actors in the
//! deterministic executor, with the checkers of architecture.md section 9 applied to it.
//!
//! Map: `mod.rs` shape, settings and node ids; `build.rs` the executor, factories and crash
//! hooks (what a crash loses); `disk.rs` each process's faultable view of the shared store;
//! `runner.rs` [`SimCluster`]: admin calls, faults, running; `workload.rs` client operations as checker inputs (KV model) and the closed-loop driver;
//! `observe.rs` invariants watched while the run goes (single owner, GC safety, legal tablet
//! transitions); `verdict.rs` the end-of-run phase: heal, liveness, final reads, history and
//! meta/master agreement checks, and the [`Violation`] list.
//!
//! Crash model (documented here because tests depend on it):
//! - A tablet node or master crash is a *process* crash: it loses its memory, timers and
//!   in-flight jobs. The shared file store is a separate service (as HDFS or an object store
//!   would be), so everything the process already handed to it, synced or not, survives; a
//!   process crash never cuts another process's files.
//! - [`SimCluster::power_cut`] models the whole file service losing power: every tablet node
//!   and master crashes at once and the shared store drops its unsynced bytes
//!   (`SimFs::crash`), then all restart.
//! - The meta store keeps its log on its own disk ([`shale_actors::meta::MemBackend`]); its
//!   crash drops the log records not yet synced, which it never acknowledged.
//! - A client crash loses the client's in-flight operations: they stay pending in the history
//!   (they may or may not have happened).
//!
//! Must not: reach into actor internals beyond their public accessors, read a wall clock or
//! use hash-ordered iteration (the runner's own decisions are part of the trace).

mod build;
mod disk;
mod observe;
mod runner;
mod verdict;
mod workload;

pub use disk::{DiskControl, NodeDisk};
pub use observe::tablet_transition_table;
pub use runner::{AdminOutcome, ClusterError, SimCluster};
pub use verdict::{LivenessReport, RunReport, Violation};
pub use workload::{kv_to_op, op_output_to_kv, FAMILY, QUALIFIER};

use crate::NetConfig;
use shale_actors::master::MasterConfig;
use shale_actors::meta::MetaConfig;
use shale_actors::node::NodeConfig;
use shale_actors::{Addr, NodeId};
use std::time::Duration;

/// The meta store's node id.
pub const META: NodeId = NodeId(1);
/// The admin client (DDL and forced procedures); never faulted by the runner's random plan.
pub const ADMIN: NodeId = NodeId(100);

/// The `i`th master (0-based).
pub fn master_id(i: usize) -> NodeId {
    NodeId(2 + i as u64)
}
/// The `i`th tablet node (0-based).
pub fn node_id(i: usize) -> NodeId {
    NodeId(11 + i as u64)
}
/// The `i`th workload client (0-based).
pub fn client_id(i: usize) -> NodeId {
    NodeId(101 + i as u64)
}

/// How many processes of each role.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shape {
    /// 1 or 2: the second is a standby that takes over when the first loses its lease.
    pub masters: usize,
    pub nodes: usize,
    pub clients: usize,
}

impl Shape {
    pub const fn new(masters: usize, nodes: usize, clients: usize) -> Self {
        Self {
            masters,
            nodes,
            clients,
        }
    }
}

/// Everything a [`SimCluster`] is built from.
#[derive(Clone, Debug)]
pub struct ClusterConfig {
    pub seed: u64,
    pub shape: Shape,
    pub net: NetConfig,
    pub buggify: bool,
    pub meta: MetaConfig,
    pub master: MasterConfig,
    /// Template for every tablet node (name and address are filled in per node).
    pub node: NodeConfig,
    /// Logical workload clients (each with one operation open at a time) per client process.
    pub workers_per_client: usize,
    /// Keep one executor trace line per event (for `shale sim --trace/--html`); slow.
    pub trace_lines: bool,
}

impl ClusterConfig {
    /// Short leases and intervals so failures resolve in a few simulated seconds; the
    /// balancer is off (split, merge and move happen only when forced) so tests are exact.
    pub fn new(seed: u64, shape: Shape) -> Self {
        let meta = MetaConfig {
            master_lease: Duration::from_secs(4),
            node_lease: Duration::from_secs(3),
            node_down_margin: Duration::from_secs(1),
            node_check_interval: Duration::from_millis(500),
            ..MetaConfig::default()
        };
        let mut master = MasterConfig::new(META, Addr("master".into()));
        master.lease_renew_interval_ms = 1_000;
        master.acquire_retry_ms = 500;
        master.meta_timeout_ms = 500;
        master.control_timeout_ms = 500;
        master.control_retries_max = 2;
        master.control_retry_backoff_ms = 100;
        master.proc_retry_ms = 300;
        master.query_interval_ms = 1_000;
        master.query_deadline_ms = 500;
        master.gc_grace_ms = 3_000;
        master.gc_list_every_rounds = 2;
        master.trash_grace_ms = 5_000;
        master.clock_skew_margin_ms = 1_000;
        master.load_retry_ms = 300;
        master.anti_flap_ms = 0;
        master.split_size_bytes = u64::MAX;
        master.merge_size_bytes = 0;
        master.moves_per_round_max = 0;
        let mut node = NodeConfig::new("node", Addr("node".into()), META);
        node.heartbeat_interval = Duration::from_millis(500);
        Self {
            seed,
            shape,
            net: NetConfig::default(),
            buggify: false,
            meta,
            master,
            node,
            workers_per_client: 4,
            trace_lines: false,
        }
    }

    pub fn with_buggify(mut self) -> Self {
        self.buggify = true;
        self
    }

    /// Turn the balancer on: split above `split_bytes`, merge neighbours below `merge_bytes`.
    pub fn with_balancer(mut self, split_bytes: u64, merge_bytes: u64) -> Self {
        self.master.split_size_bytes = split_bytes;
        self.master.merge_size_bytes = merge_bytes;
        self.master.moves_per_round_max = 1;
        self.master.anti_flap_ms = 5_000;
        self
    }
}
