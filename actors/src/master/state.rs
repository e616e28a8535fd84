//! The master's memory: tables, tablets, nodes and procedure-record versions as last
//! committed to meta, plus what only the master knows (locks, last reports, when a tablet last
//! changed).
//!
//! Owns: [`MasterState`], applying a committed transaction to it (through the transition
//! check), and building the compare-and-set checks a write must carry. Memory changes only
//! when meta has committed, so after any crash "meta and memory agree" holds by construction.
//! Must not: send anything or decide what to do next.

use super::transitions;
use crate::kernel::{Epoch, NodeId, Time};
use crate::meta::{
    Check, MetaSnapshot, NodeRecord, NodeStatus, Op, ProcedureId, RecordKey, TableRecord,
    TableStatus, TabletId, TabletRecord, TabletStatus, Txn,
};
use std::collections::BTreeMap;

/// What the latest query round said about a tablet.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reported {
    /// The start time of the round that produced it (compared with `changed_at`).
    pub round_started: Time,
    pub node: NodeId,
    pub size_bytes: u64,
    pub load_per_sec: u64,
    pub inherited_files: Vec<String>,
    pub split_key: Option<Vec<u8>>,
}

#[derive(Clone, Debug)]
pub struct TabletMem {
    pub rec: TabletRecord,
    /// The record's compare-and-set version in meta.
    pub cas: u64,
    /// Last change of status or assignment (master clock): the query skip rule reads it.
    pub changed_at: Time,
    /// When this record appeared (a split child's birth: the anti-flap delay reads it).
    pub born_at: Time,
    pub reported: Option<Reported>,
    /// The procedure holding this tablet, if any.
    pub lock: Option<ProcedureId>,
}

impl TabletMem {
    /// Reported by a round that started after its last change: the report can be trusted.
    pub fn fresh_report(&self) -> Option<&Reported> {
        self.reported
            .as_ref()
            .filter(|r| r.round_started >= self.changed_at)
    }
}

#[derive(Clone, Debug)]
pub struct TableMem {
    pub rec: TableRecord,
    pub cas: u64,
}

#[derive(Clone, Debug)]
pub struct NodeMem {
    pub rec: NodeRecord,
    /// Total size and load of its tablets from the latest round.
    pub size_bytes: u64,
    pub load_per_sec: u64,
}

#[derive(Clone, Debug, Default)]
pub struct MasterState {
    pub tables: BTreeMap<String, TableMem>,
    pub tablets: BTreeMap<TabletId, TabletMem>,
    pub nodes: BTreeMap<NodeId, NodeMem>,
    pub proc_cas: BTreeMap<ProcedureId, u64>,
    /// Locks on tablet ids a procedure allocated that meta does not hold yet (a merged
    /// tablet): the record is born locked, so no other path (the assign pass) can act on it
    /// between the write that creates it and the procedure's next phase.
    pub reserved: BTreeMap<TabletId, ProcedureId>,
    /// Next ids to hand out; never below meta's high-water marks.
    pub next_tablet: u64,
    pub next_proc: u64,
}

impl MasterState {
    /// Memory as the snapshot says (locks and reports empty).
    pub fn from_snapshot(snap: &MetaSnapshot, now: Time) -> Self {
        let mut st = MasterState {
            next_tablet: snap.marks.tablet_next,
            next_proc: snap.marks.procedure_next,
            ..Default::default()
        };
        for (name, v) in &snap.tables {
            st.tables.insert(
                name.clone(),
                TableMem {
                    rec: v.value.clone(),
                    cas: v.version,
                },
            );
        }
        for (id, v) in &snap.tablets {
            st.tablets.insert(
                *id,
                TabletMem {
                    rec: v.value.clone(),
                    cas: v.version,
                    changed_at: now,
                    born_at: now,
                    reported: None,
                    lock: None,
                },
            );
        }
        for (id, v) in &snap.nodes {
            st.nodes.insert(*id, node_mem(v.value.clone()));
        }
        for (id, v) in &snap.procedures {
            st.proc_cas.insert(*id, v.version);
        }
        st
    }

    pub fn alloc_tablet(&mut self) -> TabletId {
        let id = TabletId(self.next_tablet);
        self.next_tablet += 1;
        id
    }

    pub fn alloc_proc(&mut self) -> ProcedureId {
        let id = ProcedureId(self.next_proc);
        self.next_proc += 1;
        id
    }

    /// The checks a transaction of `ops` needs: the lease, and for every record it writes
    /// (stat rows excepted: they are upserts) the version memory holds, or absence.
    pub fn guarded(&self, holder: NodeId, term: u64, ops: Vec<Op>) -> Txn {
        let mut txn = Txn::new().check(Check::MasterLease { holder, term });
        for op in &ops {
            let key = op.key();
            let known = match &key {
                RecordKey::Table(n) => self.tables.get(n).map(|t| t.cas),
                RecordKey::Tablet(id) => self.tablets.get(id).map(|t| t.cas),
                RecordKey::Procedure(id) => self.proc_cas.get(id).copied(),
                RecordKey::Node(_) | RecordKey::Stat(_) => continue,
            };
            txn = txn.check(match known {
                Some(version) => Check::VersionIs { key, version },
                None => Check::Absent { key },
            });
        }
        for op in ops {
            txn = txn.op(op);
        }
        txn
    }

    /// Apply a transaction meta committed at `revision`. Every tablet status change goes
    /// through the transition table.
    pub fn apply(&mut self, txn: &Txn, revision: u64, now: Time) {
        for op in &txn.ops {
            match op {
                Op::PutTable(t) => {
                    self.tables.insert(
                        t.name.clone(),
                        TableMem {
                            rec: t.clone(),
                            cas: revision,
                        },
                    );
                }
                Op::DeleteTable(name) => {
                    self.tables.remove(name);
                }
                Op::PutTablet(t) => self.put_tablet(t.clone(), revision, now),
                Op::DeleteTablet(id) => {
                    self.tablets.remove(id);
                }
                Op::PutProcedure(p) => {
                    self.proc_cas.insert(p.id, revision);
                }
                Op::DeleteProcedure(id) => {
                    self.proc_cas.remove(id);
                }
                Op::PutNode(_) | Op::DeleteNode(_) | Op::PutStat(_) | Op::DeleteStat(_) => {}
            }
        }
    }

    fn put_tablet(&mut self, rec: TabletRecord, revision: u64, now: Time) {
        match self.tablets.get_mut(&rec.id) {
            Some(t) => {
                transitions::check(rec.id, t.rec.status, rec.status);
                if t.rec.status != rec.status || t.rec.assigned != rec.assigned {
                    t.changed_at = now;
                }
                t.rec = rec;
                t.cas = revision;
            }
            None => {
                self.next_tablet = self.next_tablet.max(rec.id.0 + 1);
                let lock = self.reserved.remove(&rec.id);
                self.tablets.insert(
                    rec.id,
                    TabletMem {
                        rec,
                        cas: revision,
                        changed_at: now,
                        born_at: now,
                        reported: None,
                        lock,
                    },
                );
            }
        }
    }

    /// The tablets of `table` in key order.
    pub fn tablets_of<'a>(&'a self, table: &'a str) -> impl Iterator<Item = &'a TabletMem> + 'a {
        let mut v: Vec<&TabletMem> = self
            .tablets
            .values()
            .filter(|t| t.rec.table == table)
            .collect();
        v.sort_by(|a, b| a.rec.start.cmp(&b.rec.start));
        v.into_iter()
    }

    pub fn table_status(&self, table: &str) -> Option<TableStatus> {
        self.tables.get(table).map(|t| t.rec.status)
    }

    /// Tablets assigned to `node` (any epoch).
    pub fn tablets_on(&self, node: NodeId) -> usize {
        self.tablets
            .values()
            .filter(|t| t.rec.assigned.is_some_and(|a| a.node == node))
            .count()
    }

    /// Lock `id` for `proc_id`; an id meta does not hold yet is reserved and the record is
    /// locked when it appears.
    pub fn lock(&mut self, id: TabletId, proc_id: ProcedureId) -> bool {
        match self.tablets.get_mut(&id) {
            Some(t) if t.lock.is_none() || t.lock == Some(proc_id) => {
                t.lock = Some(proc_id);
                true
            }
            Some(_) => false,
            None => match self.reserved.get(&id) {
                Some(holder) => *holder == proc_id,
                None => {
                    self.reserved.insert(id, proc_id);
                    true
                }
            },
        }
    }

    pub fn unlock_all(&mut self, proc_id: ProcedureId) {
        for t in self.tablets.values_mut() {
            if t.lock == Some(proc_id) {
                t.lock = None;
            }
        }
        self.reserved.retain(|_, holder| *holder != proc_id);
    }

    pub fn tablet_status(&self, id: TabletId) -> Option<TabletStatus> {
        self.tablets.get(&id).map(|t| t.rec.status)
    }

    pub fn set_node(&mut self, rec: NodeRecord) {
        match self.nodes.get_mut(&rec.id) {
            Some(n) => n.rec = rec,
            None => {
                self.nodes.insert(rec.id, node_mem(rec));
            }
        }
    }

    /// The node's current epoch if it is registered and Up.
    pub fn node_epoch(&self, node: NodeId) -> Option<Epoch> {
        self.nodes
            .get(&node)
            .filter(|n| n.rec.status == NodeStatus::Up)
            .map(|n| n.rec.epoch)
    }
}

fn node_mem(rec: NodeRecord) -> NodeMem {
    NodeMem {
        rec,
        size_bytes: 0,
        load_per_sec: 0,
    }
}
