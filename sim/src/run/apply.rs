//! Applying a scenario's faults to a [`SimCluster`]: resolving symbolic targets ("master",
//! "node serving tablet users:k42", "any node") at the moment a fault applies, performing it,
//! and scheduling its undo when it has a `for`.
//!
//! Mapping (documented in docs/scenario-format.md):
//! - process faults go through the runner (so the driver and observer learn of them);
//! - `disk_error` and `disk_full` switch the target's own view of the shared store
//!   ([`crate::cluster::DiskControl`]); `slow_disk` multiplies its job durations by ten
//!   ([`Fault::SlowJobs`]); `torn_write` is a power cut of the shared store that keeps a
//!   random prefix of every unsynced tail (the store is shared, so it tears every writer);
//! - a timed `partition` is undone by removing every partition (the executor keeps no
//!   per-partition identity), a timed clock skew by setting the offset back to zero.
//!
//! A fault whose target does not exist at that moment (no leader, tablet not assigned, node
//! already down) is a no-op, recorded as such. Must not: judge the run.

use super::events::{EventLog, RunEvent};
use crate::cluster::{node_id, SimCluster, ADMIN, META};
use crate::scenario::{FaultKind, ScriptedFault, Target};
use crate::{Fault, JobConfig, NetConfig, NodeId, NodeStatus, Time};
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use shale_actors::client::OpInput;
use shale_actors::master::Phase;
use shale_actors::proto::admin::AdminCall;
use std::collections::BTreeMap;
use std::time::Duration;

/// Slow-disk factor: a job takes ten times its estimate.
pub const SLOW_DISK_FACTOR: u32 = 10;
/// Error rate of a `disk_error` that names none.
const DISK_ERROR_DEFAULT: f64 = 0.05;

/// Something the runner must do at a given time.
#[derive(Clone, Debug)]
pub enum Action {
    /// Apply fault `i` of the schedule.
    Apply(usize),
    Restart(NodeId),
    Heal,
    Unclog(NodeId),
    ClockBack(NodeId),
    NetBack,
    JobsBack,
    DiskBack(NodeId),
    DiskFast(NodeId),
}

/// Actions by due time (true time, then insertion order).
#[derive(Default)]
pub struct Agenda {
    items: BTreeMap<(Time, u64), Action>,
    seq: u64,
}

impl Agenda {
    pub fn push(&mut self, at: Time, a: Action) {
        self.seq += 1;
        self.items.insert((at, self.seq), a);
    }
    pub fn next_time(&self) -> Option<Time> {
        self.items.keys().next().map(|(t, _)| *t)
    }
    /// The next action due at or before `now`.
    pub fn pop_due(&mut self, now: Time) -> Option<Action> {
        let key = *self.items.keys().next().filter(|(t, _)| *t <= now)?;
        self.items.remove(&key)
    }
}

/// The runner's state for applying faults.
pub struct Applier {
    pub rng: ChaCha8Rng,
    /// The scenario's network and job models, restored when a degradation ends.
    pub net: NetConfig,
    pub jobs: JobConfig,
    pub agenda: Agenda,
}

impl Applier {
    /// Undo everything a fault left switched on (the liveness phase heals the rest).
    pub fn heal_all(&mut self, c: &mut SimCluster) {
        let _ = c.sim.set_net(self.net.clone());
        let _ = c.sim.set_jobs(self.jobs.clone());
        for d in c.disks.values() {
            d.clear();
        }
        for id in c.node_ids() {
            let _ = c.sim.apply_fault(Fault::SlowJobs {
                node: id,
                factor: 1,
            });
        }
    }

    pub fn undo(&mut self, c: &mut SimCluster, a: &Action, log: &mut EventLog) {
        let now = c.now();
        let text = format!("{a:?}");
        let r = match a {
            Action::Apply(_) => return,
            Action::Restart(id) => {
                if c.sim.status(*id) == Some(NodeStatus::Down) {
                    c.restart(*id).map_err(|e| e.to_string())
                } else {
                    Ok(())
                }
            }
            Action::Heal => {
                c.sim.heal();
                Ok(())
            }
            Action::Unclog(id) => {
                c.sim.unclog(*id);
                Ok(())
            }
            Action::ClockBack(id) => c.set_clock_offset(*id, 0).map_err(|e| e.to_string()),
            Action::NetBack => c.sim.set_net(self.net.clone()).map_err(|e| e.to_string()),
            Action::JobsBack => c.sim.set_jobs(self.jobs.clone()).map_err(|e| e.to_string()),
            Action::DiskBack(id) => {
                if let Some(d) = c.disks.get(id) {
                    d.clear();
                }
                Ok(())
            }
            Action::DiskFast(id) => c
                .sim
                .apply_fault(Fault::SlowJobs {
                    node: *id,
                    factor: 1,
                })
                .map_err(|e| e.to_string()),
        };
        log.push(RunEvent::undo(now, text, r.err()));
    }

    /// Resolve a target to node ids now (empty: nothing to hit).
    pub fn resolve(&mut self, c: &SimCluster, t: &Target, other: &[NodeId]) -> Vec<NodeId> {
        let up = |id: &NodeId| c.sim.status(*id) == Some(NodeStatus::Up);
        match t {
            Target::ActiveMaster => c
                .leader()
                .map(|(id, _)| id)
                .or_else(|| c.master_ids().into_iter().find(up))
                .into_iter()
                .collect(),
            Target::StandbyMaster => {
                let v: Vec<NodeId> = c
                    .master_ids()
                    .into_iter()
                    .filter(|id| up(id) && c.master(*id).map(|m| m.phase()) != Some(Phase::Leading))
                    .collect();
                self.pick(v)
            }
            Target::AnyMaster => {
                let v = c.master_ids().into_iter().filter(up).collect();
                self.pick(v)
            }
            Target::Meta => vec![META],
            Target::Node(n) => vec![node_id(*n as usize - 1)],
            Target::AnyNode => {
                let v = c.node_ids().into_iter().filter(up).collect();
                self.pick(v)
            }
            Target::ServingTablet { table, row } => c
                .tablets(table)
                .into_iter()
                .find(|t| {
                    t.start.as_slice() <= row.as_bytes()
                        && (t.end.is_empty() || row.as_bytes() < t.end.as_slice())
                })
                .and_then(|t| t.assigned)
                .map(|a| a.node)
                .into_iter()
                .collect(),
            Target::Rest => c.sim.node_ids().filter(|id| !other.contains(id)).collect(),
        }
    }

    fn pick(&mut self, v: Vec<NodeId>) -> Vec<NodeId> {
        if v.is_empty() {
            return v;
        }
        let i = self.rng.gen_range(0..v.len());
        vec![v[i]]
    }

    /// Apply fault `f` now; returns the nodes it hit (empty for a no-op).
    pub fn apply(&mut self, c: &mut SimCluster, f: &ScriptedFault, log: &mut EventLog) {
        let now = c.now();
        let targets = match &f.target {
            Some(t) => self.resolve(c, t, &[]),
            None => Vec::new(),
        };
        let needs_target = f.target.is_some();
        let r = if needs_target && targets.is_empty() {
            Err("target not found".to_string())
        } else {
            self.perform(c, f, &targets, now)
        };
        log.push(RunEvent::fault(now, f, targets, r.err()));
    }

    fn perform(
        &mut self,
        c: &mut SimCluster,
        f: &ScriptedFault,
        targets: &[NodeId],
        now: Time,
    ) -> Result<(), String> {
        let err = |e: crate::cluster::ClusterError| e.to_string();
        let status = |c: &SimCluster, id: NodeId| c.sim.status(id);
        let until = f.lasting.map(|d| now.plus(d.0));
        for &id in targets {
            match f.fault {
                FaultKind::Crash => {
                    if status(c, id) != Some(NodeStatus::Up) {
                        return Err(format!("{id} is not up"));
                    }
                    c.crash(id).map_err(err)?;
                    if let Some(t) = until {
                        self.agenda.push(t, Action::Restart(id));
                    }
                }
                FaultKind::Restart => {
                    if status(c, id) != Some(NodeStatus::Down) {
                        return Err(format!("{id} is not down"));
                    }
                    c.restart(id).map_err(err)?;
                }
                FaultKind::Reboot => {
                    if status(c, id) != Some(NodeStatus::Up) {
                        return Err(format!("{id} is not up"));
                    }
                    c.reboot(id).map_err(err)?;
                }
                FaultKind::Stop => {
                    c.stop(id).map_err(err)?;
                }
                FaultKind::Partition | FaultKind::OneWayPartition => {
                    let peers = match &f.peer {
                        Some(p) => self.resolve(c, p, targets),
                        None => self.resolve(c, &Target::Rest, targets),
                    };
                    if f.fault == FaultKind::Partition {
                        c.partition(targets, &peers);
                    } else {
                        c.partition_one_way(targets, &peers);
                    }
                    if let Some(t) = until {
                        self.agenda.push(t, Action::Heal);
                    }
                    return Ok(());
                }
                FaultKind::Clog => {
                    c.sim.clog(id);
                    if let Some(t) = until {
                        self.agenda.push(t, Action::Unclog(id));
                    }
                }
                FaultKind::Pause => {
                    let d = f.lasting.map_or(Duration::from_secs(1), |d| d.0);
                    if status(c, id) == Some(NodeStatus::Up) {
                        c.pause(id, d).map_err(err)?;
                    }
                }
                FaultKind::ClockSkew => {
                    let off = f.offset.map_or(0, |o| o.nanos);
                    c.set_clock_offset(id, off).map_err(err)?;
                    if let Some(t) = until {
                        self.agenda.push(t, Action::ClockBack(id));
                    }
                }
                FaultKind::DiskError | FaultKind::DiskFull => {
                    let d = c
                        .disks
                        .get(&id)
                        .ok_or(format!("{id} has no disk of its own"))?;
                    if f.fault == FaultKind::DiskFull {
                        d.set_full(true);
                    } else {
                        d.set_error_probability(f.probability.unwrap_or(DISK_ERROR_DEFAULT));
                    }
                    if let Some(t) = until {
                        self.agenda.push(t, Action::DiskBack(id));
                    }
                }
                FaultKind::SlowDisk => {
                    c.sim
                        .apply_fault(Fault::SlowJobs {
                            node: id,
                            factor: SLOW_DISK_FACTOR,
                        })
                        .map_err(|e| e.to_string())?;
                    if let Some(t) = until {
                        self.agenda.push(t, Action::DiskFast(id));
                    }
                }
                FaultKind::TornWrite => {
                    let mut cfg = c.fs.config();
                    cfg.torn_writes = true;
                    c.fs.set_config(cfg.clone());
                    let r = c.power_cut().map_err(err);
                    cfg.torn_writes = false;
                    c.fs.set_config(cfg);
                    return r;
                }
                // Kinds without a target are handled below.
                FaultKind::Heal
                | FaultKind::NetworkDegrade
                | FaultKind::JobFailure
                | FaultKind::Split
                | FaultKind::DisableTable
                | FaultKind::EnableTable
                | FaultKind::DropTable => {}
            }
        }
        match f.fault {
            FaultKind::Heal => c.heal(),
            FaultKind::NetworkDegrade => {
                let p = f.probability.unwrap_or(0.0);
                let net = NetConfig {
                    loss_probability: p,
                    duplicate_probability: p,
                    ..self.net.clone()
                };
                c.sim.set_net(net).map_err(|e| e.to_string())?;
                if let Some(t) = until {
                    self.agenda.push(t, Action::NetBack);
                }
            }
            FaultKind::JobFailure => {
                let jobs = JobConfig {
                    fail_probability: f.probability.unwrap_or(0.0),
                    ..self.jobs.clone()
                };
                c.sim.set_jobs(jobs).map_err(|e| e.to_string())?;
                if let Some(t) = until {
                    self.agenda.push(t, Action::JobsBack);
                }
            }
            FaultKind::Split
            | FaultKind::DisableTable
            | FaultKind::EnableTable
            | FaultKind::DropTable => {
                return admin(c, f);
            }
            _ => {}
        }
        Ok(())
    }
}

/// Send an admin action through the admin client without waiting for it: the scenario races
/// it against everything else, and a refusal (busy, wrong state) is part of the race.
fn admin(c: &mut SimCluster, f: &ScriptedFault) -> Result<(), String> {
    let name = f.table.clone().unwrap_or_default();
    let call = match f.fault {
        FaultKind::Split => {
            let row = f.row.clone().unwrap_or_default().into_bytes();
            let tablet = c
                .tablets(&name)
                .into_iter()
                .find(|t| t.start <= row && (t.end.is_empty() || row < t.end))
                .ok_or(format!("no tablet of {name} holds that row"))?;
            AdminCall::SplitTablet {
                tablet: tablet.id,
                key: None,
            }
        }
        FaultKind::DisableTable => AdminCall::DisableTable { name },
        FaultKind::EnableTable => AdminCall::EnableTable { name },
        _ => AdminCall::DropTable { name },
    };
    match c
        .sim
        .invoke(ADMIN, |n, ctx| n.start_op(OpInput::Admin(call), ctx))
    {
        Ok(Some(Ok(_))) => Ok(()),
        Ok(Some(Err(e))) => Err(e.to_string()),
        Ok(None) => Err("the admin node is not a client".into()),
        Err(e) => Err(e.to_string()),
    }
}
