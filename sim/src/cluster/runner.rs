//! [`SimCluster`]: the cluster runner's outward API. Build a cluster from a [`ClusterConfig`],
//! create tables and force procedures through admin calls, drive a workload, inject faults,
//! run, and finish with a verdict (`verdict.rs`).
//!
//! The run loop stops the executor after every step that produced a client answer or changed
//! the meta store's revision, so the history gets exact return times and the observer sees
//! every meta state; otherwise it runs until the next planned operation.
//!
//! Must not: hide faults from the checkers (every crash and restart goes through here so the
//! driver and observer learn of it).

use super::build::{build, Built};
use super::disk::DiskControl;
use super::observe::Observer;
use super::workload::Driver;
use super::{master_id, node_id, ClusterConfig, ADMIN, META};
use crate::scenario::PlannedOp;
use crate::{Sim, SimError};
use shale_actors::client::{ClientError, OpInput, OpOutput, OpResult};
use shale_actors::cluster::ClusterNode;
use shale_actors::master::{Master, Phase};
use shale_actors::meta::{MemBackend, MetaStore, ProcedureRecord, Schema, TabletRecord};
use shale_actors::proto::admin::{AdminCall, AdminReply};
use shale_actors::{NodeId, Time};
use shale_storage::fs::SimFs;
use std::collections::BTreeMap;
use std::time::Duration;

/// What an admin call came back with.
pub type AdminOutcome = Result<AdminReply, ClientError>;

#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    #[error("simulator: {0}")]
    Sim(#[from] SimError),
    #[error("the cluster did not come up within {0:?}: {1}")]
    NoStart(Duration, String),
    #[error("operation {input:?} got no answer within {waited:?}")]
    OpTimeout {
        input: Box<OpInput>,
        waited: Duration,
    },
    #[error("admin call {call:?} failed: {error}")]
    Admin {
        call: Box<AdminCall>,
        error: ClientError,
    },
}

/// How long an admin call may take before the runner gives up on it.
const ADMIN_WAIT: Duration = Duration::from_secs(30);
/// How long a new cluster may take to elect a master and register every node.
const START_WAIT: Duration = Duration::from_secs(20);

pub struct SimCluster {
    pub sim: Sim<ClusterNode>,
    /// The shared file store every tablet node and master uses.
    pub fs: SimFs,
    /// The meta store's own disk.
    pub meta_disk: MemBackend,
    /// Each master's and tablet node's disk switches (errors, full); see `disk.rs`.
    pub disks: BTreeMap<NodeId, DiskControl>,
    pub(super) cfg: ClusterConfig,
    pub(super) driver: Driver,
    pub(super) observer: Observer,
}

impl SimCluster {
    /// Build the cluster and run until a master leads and every tablet node registered.
    pub fn new(cfg: ClusterConfig) -> Result<Self, ClusterError> {
        let Built {
            sim,
            fs,
            meta_disk,
            disks,
        } = build(&cfg)?;
        let mut c = SimCluster {
            sim,
            fs,
            meta_disk,
            disks,
            driver: Driver::new(cfg.shape.clients),
            observer: Observer::new(),
            cfg,
        };
        let deadline = c.now().plus(START_WAIT);
        let nodes = c.cfg.shape.nodes;
        let up = c.run_until_cond(deadline, |c| {
            c.leader().is_some()
                && (0..nodes).all(|i| c.node(node_id(i)).is_some_and(|n| n.epoch().is_some()))
        });
        if !up {
            return Err(ClusterError::NoStart(START_WAIT, c.describe()));
        }
        Ok(c)
    }

    pub fn config(&self) -> &ClusterConfig {
        &self.cfg
    }
    pub fn now(&self) -> Time {
        self.sim.now()
    }

    pub fn meta(&self) -> Option<&MetaStore> {
        self.sim.actor(META).and_then(ClusterNode::as_meta)
    }
    pub fn master(&self, id: NodeId) -> Option<&Master> {
        self.sim.actor(id).and_then(ClusterNode::as_master)
    }
    /// The master that leads (holds the lease and finished its rebuild), if any.
    pub fn leader(&self) -> Option<(NodeId, &Master)> {
        (0..self.cfg.shape.masters)
            .map(master_id)
            .filter_map(|id| self.master(id).map(|m| (id, m)))
            .find(|(_, m)| m.phase() == Phase::Leading)
    }
    pub fn node(&self, id: NodeId) -> Option<&shale_actors::node::TabletNode> {
        self.sim.actor(id).and_then(ClusterNode::as_node)
    }
    pub fn node_ids(&self) -> Vec<NodeId> {
        (0..self.cfg.shape.nodes).map(node_id).collect()
    }
    pub fn master_ids(&self) -> Vec<NodeId> {
        (0..self.cfg.shape.masters).map(master_id).collect()
    }

    /// `table`'s tablet records in meta, in key order.
    pub fn tablets(&self, table: &str) -> Vec<TabletRecord> {
        let Some(meta) = self.meta() else {
            return Vec::new();
        };
        let mut v: Vec<TabletRecord> = meta
            .state()
            .snapshot()
            .tablets
            .values()
            .map(|t| t.value.clone())
            .filter(|t| t.table == table)
            .collect();
        v.sort_by(|a, b| a.start.cmp(&b.start));
        v
    }

    /// Procedure records in meta.
    pub fn procedures(&self) -> Vec<ProcedureRecord> {
        self.meta().map_or_else(Vec::new, |m| {
            m.state()
                .snapshot()
                .procedures
                .values()
                .map(|p| p.value.clone())
                .collect()
        })
    }

    /// One line about who is up, for error messages.
    pub fn describe(&self) -> String {
        let masters: Vec<String> = self
            .master_ids()
            .into_iter()
            .map(|id| format!("{id}:{:?}", self.master(id).map(Master::phase)))
            .collect();
        let nodes: Vec<String> = self
            .node_ids()
            .into_iter()
            .map(|id| format!("{id}:{:?}", self.node(id).and_then(|n| n.epoch())))
            .collect();
        format!(
            "t={:?} meta serving={:?} masters=[{}] nodes=[{}] procedures={}",
            self.now(),
            self.meta().map(MetaStore::is_serving),
            masters.join(" "),
            nodes.join(" "),
            self.procedures().len()
        )
    }

    // ---- running ----

    /// Run until true time `until`, issuing planned operations, draining answers and watching
    /// invariants.
    pub fn run_until(&mut self, until: Time) {
        self.run_until_cond(until, |_| false);
    }

    pub fn run_for(&mut self, d: Duration) {
        let until = self.now().plus(d);
        self.run_until(until);
    }

    /// Run until `done` holds (checked whenever the loop stops) or `deadline`; true if it held.
    pub fn run_until_cond(
        &mut self,
        deadline: Time,
        mut done: impl FnMut(&SimCluster) -> bool,
    ) -> bool {
        loop {
            self.observer.observe_meta(&self.sim);
            self.driver.collect(&self.sim);
            self.observer.check_serving(&self.sim, &self.fs);
            if done(self) {
                return true;
            }
            if self.now() >= deadline {
                return false;
            }
            self.driver.issue_due(&mut self.sim);
            let stop = self
                .driver
                .next_due()
                .filter(|t| *t > self.now())
                .map_or(deadline, |t| t.min(deadline));
            let watch = self.driver.watch();
            let rev = self.observer.last_revision();
            self.sim.run_while(stop, |s| {
                Observer::meta_revision(s).is_none_or(|r| Some(r) == rev)
                    && watch.iter().all(|(n, len)| {
                        s.actor(*n)
                            .and_then(ClusterNode::as_client)
                            .is_none_or(|c| c.history().len() == *len)
                    })
            });
        }
    }

    /// Add planned operations (times are from now).
    pub fn add_workload(&mut self, ops: impl IntoIterator<Item = PlannedOp>) {
        let now = self.now();
        self.driver.add(ops, now);
    }

    /// Run until every planned and open operation finished (or `deadline`).
    pub fn drain_workload(&mut self, within: Duration) -> bool {
        let deadline = self.now().plus(within);
        self.run_until_cond(deadline, |c| c.driver.is_idle())
    }

    pub fn workload_counts(&self) -> super::workload::WorkloadCounts {
        self.driver.counts
    }

    // ---- admin ----

    /// Run one client operation on the admin client until it finishes (outside the recorded
    /// history: for setup, DDL and spot reads).
    pub fn op(&mut self, input: OpInput) -> Result<OpResult, ClusterError> {
        let started = self
            .sim
            .invoke(ADMIN, |n, ctx| n.start_op(input.clone(), ctx))?;
        let op = match started {
            Some(Ok(op)) => op,
            Some(Err(e)) => return Ok(OpResult::Failed(e)),
            None => unreachable!("the admin node is a client"),
        };
        let find = |c: &SimCluster| {
            c.sim
                .actor(ADMIN)
                .and_then(ClusterNode::as_client)
                .and_then(|r| r.history().iter().rev().find(|d| d.op == op).cloned())
        };
        let deadline = self.now().plus(ADMIN_WAIT);
        self.run_until_cond(deadline, |c| find(c).is_some());
        let done = find(self).ok_or(ClusterError::OpTimeout {
            input: Box::new(input),
            waited: ADMIN_WAIT,
        })?;
        Ok(done.result)
    }

    /// Send an admin call through the admin client and run until it is answered.
    pub fn admin(&mut self, call: AdminCall) -> Result<AdminOutcome, ClusterError> {
        Ok(match self.op(OpInput::Admin(call))? {
            OpResult::Done(OpOutput::Admin(reply)) => Ok(reply),
            OpResult::Done(other) => unreachable!("an admin call answered {other:?}"),
            OpResult::Failed(e) | OpResult::Unknown(e) => Err(e),
        })
    }

    /// An admin call that must succeed.
    pub fn admin_ok(&mut self, call: AdminCall) -> Result<AdminReply, ClusterError> {
        match self.admin(call.clone())? {
            Ok(r) => Ok(r),
            Err(error) => Err(ClusterError::Admin {
                call: Box::new(call),
                error,
            }),
        }
    }

    /// The schema tests use: one family, [`super::FAMILY`], keeping 3 versions.
    pub fn schema() -> Schema {
        Schema {
            families: vec![shale_actors::meta::FamilyDesc {
                name: super::FAMILY.into(),
                locality_group: "default".into(),
                max_versions: 3,
                min_versions: 0,
                ttl_secs: 0,
            }],
        }
    }

    /// Create `name` pre-split at `split_keys` and wait until all its tablets are Ready.
    pub fn create_table(&mut self, name: &str, split_keys: &[&[u8]]) -> Result<(), ClusterError> {
        self.admin_ok(AdminCall::CreateTable {
            name: name.into(),
            schema: Self::schema(),
            split_keys: split_keys.iter().map(|k| k.to_vec()).collect(),
        })?;
        let want = split_keys.len() + 1;
        let deadline = self.now().plus(ADMIN_WAIT);
        let ok = self.run_until_cond(deadline, |c| {
            let t = c.tablets(name);
            t.len() == want
                && t.iter()
                    .all(|t| t.status == shale_actors::meta::TabletStatus::Ready)
        });
        if ok {
            Ok(())
        } else {
            Err(ClusterError::NoStart(
                ADMIN_WAIT,
                format!("table {name} not Ready: {}", self.describe()),
            ))
        }
    }

    // ---- faults ----

    /// Crash a process (what it loses: see the module docs of `cluster`).
    pub fn crash(&mut self, id: NodeId) -> Result<(), ClusterError> {
        self.sim.crash(id)?;
        self.after_crash(id);
        Ok(())
    }

    fn after_crash(&mut self, id: NodeId) {
        if id == META {
            self.observer.meta_restarted();
        }
        self.driver.client_crashed(id);
    }

    /// Crash (if running) and never restart.
    pub fn stop(&mut self, id: NodeId) -> Result<(), ClusterError> {
        self.sim.stop(id)?;
        self.after_crash(id);
        Ok(())
    }

    pub fn restart(&mut self, id: NodeId) -> Result<(), ClusterError> {
        self.sim.restart(id)?;
        Ok(())
    }

    /// Crash and restart at once.
    pub fn reboot(&mut self, id: NodeId) -> Result<(), ClusterError> {
        self.crash(id)?;
        self.restart(id)
    }

    /// The shared file service loses power: every tablet node and master crashes, the store
    /// drops its unsynced bytes, and they all restart.
    pub fn power_cut(&mut self) -> Result<(), ClusterError> {
        let ids: Vec<NodeId> = self
            .node_ids()
            .into_iter()
            .chain(self.master_ids())
            .collect();
        for id in &ids {
            if self.sim.actor(*id).is_some() {
                self.crash(*id)?;
            }
        }
        self.fs.crash();
        for id in ids {
            self.restart(id)?;
        }
        Ok(())
    }

    pub fn partition(&mut self, a: &[NodeId], b: &[NodeId]) {
        self.sim.partition(a, b);
    }
    pub fn partition_one_way(&mut self, from: &[NodeId], to: &[NodeId]) {
        self.sim.partition_one_way(from, to);
    }
    /// Remove partitions and clogs.
    pub fn heal(&mut self) {
        self.sim.heal_all();
    }
    pub fn set_clock_offset(&mut self, id: NodeId, offset: i64) -> Result<(), ClusterError> {
        self.sim.set_clock_offset(id, offset)?;
        Ok(())
    }
    pub fn pause(&mut self, id: NodeId, d: Duration) -> Result<(), ClusterError> {
        self.sim.pause(id, d)?;
        Ok(())
    }
    /// Swap the network model from now on (loss, duplication, latency).
    pub fn set_net(&mut self, net: crate::NetConfig) -> Result<(), ClusterError> {
        self.sim.set_net(net)?;
        Ok(())
    }
}
