//! The end of a run (style.md item 7: safety phase, then liveness phase): heal every fault,
//! stop buggify and the workload, require convergence before a deadline, read every touched
//! row back, then judge: linearizability per row, no lost acknowledged write, exact key
//! coverage of every enabled table, single owner, GC safety, legal transitions, and meta
//! store / master memory agreement.
//!
//! Owns [`Violation`] (every way a run can fail) and [`RunReport`]. Must not: inject faults.

use super::runner::SimCluster;
use super::{ADMIN, META};
use crate::check::{
    check_coverage, check_linearizable, check_no_lost_writes, ClientId, KeyRange, KvInput, KvModel,
    KvOp, KvOutput, LinearizabilityConfig, RowKey, Verdict,
};
use shale_actors::cluster::ClusterNode;
use shale_actors::meta::{StatSubject, TableStatus, TabletId, TabletStatus};
use shale_actors::proto::control::ServedState;
use shale_actors::NodeId;
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

/// Every way a run can fail its checks.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Violation {
    #[error("tablet {tablet}: illegal transition {from:?} -> {to:?} (meta revision {revision})")]
    IllegalTransition {
        tablet: TabletId,
        from: Option<TabletStatus>,
        to: TabletStatus,
        revision: u64,
    },
    #[error("tablet {tablet} was born {status:?}, not Offline")]
    BadBirth {
        tablet: TabletId,
        status: TabletStatus,
    },
    #[error("table {table}: tablets {a:?} and {b:?} (tablet, node) serve overlapping ranges")]
    DoubleServe {
        table: String,
        a: (TabletId, NodeId),
        b: (TabletId, NodeId),
    },
    #[error(
        "tablet {tablet} served by {node} over [{served_start:?}, {served_end:?}), but meta gives it [{meta_start:?}, {meta_end:?})"
    )]
    ServedOutsideRange {
        tablet: TabletId,
        node: NodeId,
        served_start: String,
        served_end: String,
        meta_start: String,
        meta_end: String,
    },
    #[error("tablet {tablet} served by {node} with a valid lease but absent from meta")]
    ServedNotInMeta { tablet: TabletId, node: NodeId },
    #[error("tablet {tablet} served by {node} at version {served}, meta has {meta}")]
    StaleVersionServed {
        tablet: TabletId,
        node: NodeId,
        served: u64,
        meta: u64,
    },
    #[error("file {file} deleted while tablet {tablet} on {node} reads it")]
    FileDeletedWhileLive {
        tablet: TabletId,
        node: NodeId,
        file: String,
    },
    #[error("table {table}: key coverage: {detail}")]
    Coverage { table: String, detail: String },
    #[error("meta holds a stat row of tablet {tablet}, which it does not have")]
    OrphanStatRow { tablet: TabletId },
    #[error("liveness: not converged {waited:?} after healing: {detail}")]
    Liveness { waited: Duration, detail: String },
    #[error("meta and master memory disagree: {0}")]
    MemoryDisagrees(String),
    #[error("history not linearizable:\n{0}")]
    NotLinearizable(String),
    #[error("linearizability undecided for {0} keys")]
    Undecided(usize),
    #[error("lost acknowledged write: {0}")]
    LostWrite(String),
    #[error("final read of {0:?} got no answer")]
    Unread(RowKey),
    #[error("history recorder: {0}")]
    Recorder(String),
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LivenessReport {
    pub converged: bool,
    /// From the heal to convergence (or to the deadline).
    pub took: Duration,
}

#[derive(Clone, Debug, Default)]
pub struct RunReport {
    pub violations: Vec<Violation>,
    pub liveness: LivenessReport,
    pub ops_started: u64,
    pub ops_answered: u64,
    pub ops_pending: u64,
    pub rows_checked: usize,
    pub lin_steps: u64,
}

impl RunReport {
    pub fn is_ok(&self) -> bool {
        self.violations.is_empty()
    }
}

/// Logical client ids for final reads: far above any workload's.
const FINAL_READ_CLIENT_BASE: ClientId = 1 << 40;
/// Final reads in flight at once (each row by its own client).
const FINAL_READS_AT_ONCE: usize = 64;

impl SimCluster {
    /// Everything the liveness phase waits for, or a description of what is missing.
    pub fn converged(&self) -> Result<(), String> {
        let (_, master) = self.leader().ok_or("no leading master")?;
        if !master.procedures().is_empty() {
            let procs: Vec<String> = master
                .procedures()
                .values()
                .map(|p| format!("{}:{:?}@{}", p.id, p.body.kind(), p.body.phase_name()))
                .collect();
            return Err(format!("procedures running: {}", procs.join(", ")));
        }
        if !self.procedures().is_empty() {
            return Err(format!(
                "{} procedure records in meta",
                self.procedures().len()
            ));
        }
        let meta = self.meta().ok_or("meta store down")?;
        if !meta.is_serving() {
            return Err("meta store recovering".into());
        }
        let snap = meta.state().snapshot();
        for t in snap.tablets.values().map(|v| &v.value) {
            let enabled = snap
                .tables
                .get(&t.table)
                .is_some_and(|x| x.value.status == TableStatus::Enabled);
            if !enabled {
                continue;
            }
            if t.status != TabletStatus::Ready {
                return Err(format!("tablet {} is {:?}", t.id, t.status));
            }
            let a = t.assigned.ok_or(format!("tablet {} unassigned", t.id))?;
            let serving = self.node(a.node).is_some_and(|n| {
                n.epoch() == Some(a.epoch)
                    && n.tablets().iter().any(|(id, v, s)| {
                        *id == t.id && *v == t.version && *s == ServedState::Serving
                    })
            });
            if !serving {
                return Err(format!("tablet {} not served by {}", t.id, a.node));
            }
        }
        Ok(())
    }

    /// Heal every fault and run until [`SimCluster::converged`] or `deadline` from now.
    pub fn heal_and_wait(&mut self, deadline: Duration) -> LivenessReport {
        self.heal();
        self.sim.quiesce_buggify();
        let ids: Vec<NodeId> = self.sim.node_ids().collect();
        for id in ids {
            // A node id the runner made always exists; clocks back to true time.
            let _ = self.sim.set_clock_offset(id, 0);
            if self.sim.status(id) == Some(crate::NodeStatus::Down) {
                let _ = self.restart(id);
            }
        }
        self.driver.drop_planned();
        let start = self.now();
        let converged = self.run_until_cond(start.plus(deadline), |c| {
            c.driver.open_ops() == 0 && c.converged().is_ok()
        });
        LivenessReport {
            converged,
            took: self.now().since(start),
        }
    }

    /// Tables that are Enabled in meta (their rows must read back; a dropped or disabled
    /// table's rows are not readable, by design).
    fn enabled_tables(&self) -> BTreeSet<String> {
        self.meta().map_or_else(BTreeSet::new, |m| {
            m.state()
                .snapshot()
                .tables
                .iter()
                .filter(|(_, t)| t.value.status == TableStatus::Enabled)
                .map(|(n, _)| n.clone())
                .collect()
        })
    }

    /// Read every row of an enabled table the history touched, as gets recorded into the
    /// history.
    fn final_reads(&mut self) -> (BTreeMap<RowKey, Option<Vec<u8>>>, Vec<RowKey>) {
        let enabled = self.enabled_tables();
        let rows: BTreeSet<RowKey> = self
            .driver
            .history_ref()
            .iter()
            .map(|op| &op.input.key)
            .filter(|k| enabled.contains(&k.table))
            .cloned()
            .collect();
        let mut reads = BTreeMap::new();
        let mut unread = Vec::new();
        let rows: Vec<RowKey> = rows.into_iter().collect();
        // Rows are read FINAL_READS_AT_ONCE at a time, each by its own client, with up to
        // three attempts per row: one read at a time made the final reads a tenth of a run's
        // cost, for the same checks.
        for (b, batch) in rows.chunks(FINAL_READS_AT_ONCE).enumerate() {
            let base = FINAL_READ_CLIENT_BASE + (b * FINAL_READS_AT_ONCE) as u64;
            let mut todo: Vec<(u64, &RowKey)> = (base..).zip(batch).collect();
            for _attempt in 0..3 {
                for (c, key) in &todo {
                    let input = KvInput {
                        key: (*key).clone(),
                        op: KvOp::Get,
                    };
                    // Refused at the call: stays in `todo` for the next attempt.
                    self.driver.start(&mut self.sim, ADMIN, *c, input);
                }
                let deadline = self.now().plus(Duration::from_secs(30));
                self.run_until_cond(deadline, |s| s.driver.open_ops() == 0);
                todo.retain(|(c, key)| match self.driver.final_reads.get(c) {
                    Some(Some(KvOutput::Read(v))) => {
                        reads.insert((*key).clone(), v.clone());
                        false
                    }
                    _ => true,
                });
                if todo.is_empty() {
                    break;
                }
            }
            unread.extend(todo.into_iter().map(|(_, k)| k.clone()));
        }
        (reads, unread)
    }

    /// Meta store and leading master agree on tables and tablets (records and versions).
    pub fn memory_agrees(&self) -> Result<(), String> {
        let (id, master) = self.leader().ok_or("no leading master")?;
        let meta = self.meta().ok_or("meta store down")?;
        let snap = meta.state().snapshot();
        let st = master.state();
        let meta_tables: BTreeSet<&String> = snap.tables.keys().collect();
        let mem_tables: BTreeSet<&String> = st.tables.keys().collect();
        if meta_tables != mem_tables {
            return Err(format!(
                "{id}: tables {mem_tables:?} vs meta {meta_tables:?}"
            ));
        }
        for (name, v) in &snap.tables {
            let m = &st.tables[name];
            if m.rec != v.value || m.cas != v.version {
                return Err(format!("{id}: table {name} differs"));
            }
        }
        let meta_ids: BTreeSet<&TabletId> = snap.tablets.keys().collect();
        let mem_ids: BTreeSet<&TabletId> = st.tablets.keys().collect();
        if meta_ids != mem_ids {
            return Err(format!("{id}: tablets {mem_ids:?} vs meta {meta_ids:?}"));
        }
        for (tid, v) in &snap.tablets {
            let m = &st.tablets[tid];
            if m.rec != v.value || m.cas != v.version {
                return Err(format!(
                    "{id}: tablet {tid}: memory {:?} (cas {}) vs meta {:?} (cas {})",
                    m.rec, m.cas, v.value, v.version
                ));
            }
        }
        Ok(())
    }

    /// The liveness phase, then every check. Consumes nothing: a test may look further.
    pub fn finish(&mut self, deadline: Duration) -> RunReport {
        let liveness = self.heal_and_wait(deadline);
        let mut violations = std::mem::take(&mut self.observer.violations);
        if !liveness.converged {
            violations.push(Violation::Liveness {
                waited: liveness.took,
                detail: self.converged().err().unwrap_or_else(|| {
                    format!(
                        "{} client operations still open: {:?}",
                        self.driver.open_ops(),
                        self.driver.open_summary()
                    )
                }),
            });
        }
        // Memory agreement: a stat or size write may still be in flight; give it a moment.
        let agree_deadline = self.now().plus(Duration::from_secs(3));
        if !self.run_until_cond(agree_deadline, |c| c.memory_agrees().is_ok()) {
            if let Err(e) = self.memory_agrees() {
                violations.push(Violation::MemoryDisagrees(e));
            }
        }
        if let Some(meta) = self.sim.actor(META).and_then(ClusterNode::as_meta) {
            let snap = meta.state().snapshot();
            for (name, t) in &snap.tables {
                if t.value.status != TableStatus::Enabled {
                    continue;
                }
                let ranges: Vec<(TabletId, KeyRange)> = snap
                    .tablets
                    .values()
                    .filter(|x| &x.value.table == name)
                    .map(|x| {
                        let end = (!x.value.end.is_empty()).then_some(x.value.end.as_slice());
                        (x.value.id, KeyRange::new(x.value.start.clone(), end))
                    })
                    .collect();
                for v in check_coverage(&ranges) {
                    violations.push(Violation::Coverage {
                        table: name.clone(),
                        detail: format!("{v:?}"),
                    });
                }
            }
            // Stat rows go with their tablets: splits, merges and drops leave none behind.
            for s in snap.stats.keys() {
                if let StatSubject::Tablet(t) = s {
                    if !snap.tablets.contains_key(t) {
                        violations.push(Violation::OrphanStatRow { tablet: *t });
                    }
                }
            }
        }
        let (reads, unread) = self.final_reads();
        violations.extend(unread.into_iter().map(Violation::Unread));
        violations.extend(
            self.driver
                .record_errors
                .iter()
                .map(|e| Violation::Recorder(e.to_string())),
        );
        let enabled = self.enabled_tables();
        let history = self.driver.history_ref();
        // Rows of disabled or dropped tables cannot be read back; the copy is only needed
        // when there are some.
        let lost = if history
            .iter()
            .all(|op| enabled.contains(&op.input.key.table))
        {
            check_no_lost_writes(history, &reads)
        } else {
            let readable: Vec<_> = history
                .iter()
                .filter(|op| enabled.contains(&op.input.key.table))
                .cloned()
                .collect();
            check_no_lost_writes(&readable, &reads)
        };
        for v in &lost.violations {
            violations.push(Violation::LostWrite(format!("{v:?}")));
        }
        let mut lin_steps = 0;
        match check_linearizable(&KvModel, history, &LinearizabilityConfig::default()) {
            Ok(r) => {
                lin_steps = r.steps;
                match r.verdict {
                    Verdict::Linearizable => {}
                    Verdict::Violation(v) => {
                        violations.push(Violation::NotLinearizable(v.explain(history)))
                    }
                    Verdict::Undecided(u) => violations.push(Violation::Undecided(u.keys.len())),
                }
            }
            Err(e) => violations.push(Violation::Recorder(e.to_string())),
        }
        // Anything the observer saw during the liveness phase and the final reads.
        self.observer.check_serving(&self.sim, &self.fs);
        violations.append(&mut self.observer.violations);
        let counts = self.driver.counts;
        RunReport {
            violations,
            liveness,
            ops_started: counts.started,
            ops_answered: counts.answered,
            ops_pending: counts.pending,
            rows_checked: lost.rows_checked,
            lin_steps,
        }
    }
}
