//! The meta store's in-memory state: the durable image ([`MetaSnapshot`]), its derived
//! indexes, evaluation of a transaction against it, and application of a log record.
//!
//! Owns: the rules the store itself enforces (checks, referential rules, no overlapping
//! tablets, ids never reused) and the invariant check run after recovery.
//! Must not: read a clock (time comes in as an argument), touch the backend, or decide which
//! tablet state transitions are legal.

use super::model::{
    MasterLease, NodeRecord, ProcedureId, ProcedureRecord, Record, RecordKey, StatRow, StatSubject,
    TableRecord, TabletId, TabletRecord, Versioned,
};
use super::msg::{MetaReply, RequestId};
use super::txn::{Check, Op, Txn, Write};
use super::MetaError;
use crate::kernel::{Epoch, NodeId, Time};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

/// Who sent a request, for deduplicating retries: (sender, request id).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Origin {
    pub from: NodeId,
    pub request: RequestId,
}

/// High-water marks: the next id of each kind that was never used.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdMarks {
    pub tablet_next: u64,
    pub procedure_next: u64,
    pub epoch_next: u64,
    /// The highest master-lease term ever granted (a released lease keeps its term here).
    pub lease_term: u64,
}

impl Default for IdMarks {
    fn default() -> Self {
        // Id 0 and epoch 0 stay unused so a zero in a message is always "none".
        Self {
            tablet_next: 1,
            procedure_next: 1,
            epoch_next: 1,
            lease_term: 0,
        }
    }
}

/// The reply a deduplicated request got, kept so a retry gets the same answer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DedupEntry {
    pub revision: u64,
    /// A hash of the request, so a sender that reuses an id after a restart for a different
    /// request is not handed the old answer.
    pub fingerprint: u64,
    pub reply: MetaReply,
}

/// The part of a log record that lets a retry be answered like the original.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DedupRecord {
    pub origin: Origin,
    pub fingerprint: u64,
    pub reply: MetaReply,
}

/// Everything durable: what a snapshot holds and what a rebuilding master reads.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct MetaSnapshot {
    /// The revision of the last applied log record.
    pub revision: u64,
    pub tables: BTreeMap<String, Versioned<TableRecord>>,
    pub tablets: BTreeMap<TabletId, Versioned<TabletRecord>>,
    pub nodes: BTreeMap<NodeId, Versioned<NodeRecord>>,
    pub procedures: BTreeMap<ProcedureId, Versioned<ProcedureRecord>>,
    pub stats: BTreeMap<StatSubject, Versioned<StatRow>>,
    pub master_lease: Option<MasterLease>,
    pub marks: IdMarks,
    pub dedup: BTreeMap<Origin, DedupEntry>,
}

/// What one log record changes besides plain record writes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Change {
    Writes(Vec<Write>),
    /// Grant (Some) or release (None) the master lease.
    Lease(Option<MasterLease>),
}

/// One committed state change, as logged. Replaying it needs no clock and no checks.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogRecord {
    pub revision: u64,
    /// The meta store's clock when it committed (for operators and traces only).
    pub at: Time,
    pub change: Change,
    /// Set for requests that are answered the same way when retried.
    pub dedup: Option<DedupRecord>,
}

/// The state plus indexes derived from it. Indexes are rebuilt on load, never persisted.
#[derive(Clone, Debug, Default)]
pub struct MetaState {
    pub(super) data: MetaSnapshot,
    /// (table, start row) -> tablet: tablet lookup and overlap checks in O(log n).
    tablet_index: BTreeMap<(String, Vec<u8>), TabletId>,
    node_by_name: BTreeMap<String, NodeId>,
    dedup_by_revision: BTreeMap<u64, Origin>,
    dedup_entries_max: usize,
}

/// What evaluation needs from the outside world.
#[derive(Clone, Copy, Debug)]
pub struct EvalEnv {
    pub now: Time,
    /// The lease a node record created by a transaction starts with.
    pub node_lease: Duration,
}

impl MetaState {
    pub fn new(dedup_entries_max: usize) -> Self {
        Self {
            dedup_entries_max,
            ..Self::default()
        }
    }

    /// Rebuild the state and its indexes from a snapshot image.
    pub fn from_snapshot(data: MetaSnapshot, dedup_entries_max: usize) -> Self {
        let mut state = Self {
            data,
            dedup_entries_max,
            ..Self::default()
        };
        for (id, t) in &state.data.tablets {
            state
                .tablet_index
                .insert((t.value.table.clone(), t.value.start.clone()), *id);
        }
        for (id, n) in &state.data.nodes {
            state.node_by_name.insert(n.value.name.clone(), *id);
        }
        for (origin, e) in &state.data.dedup {
            state.dedup_by_revision.insert(e.revision, *origin);
        }
        state
    }

    pub fn snapshot(&self) -> &MetaSnapshot {
        &self.data
    }
    pub fn revision(&self) -> u64 {
        self.data.revision
    }
    pub fn marks(&self) -> IdMarks {
        self.data.marks
    }
    pub fn master_lease(&self) -> Option<&MasterLease> {
        self.data.master_lease.as_ref()
    }
    pub fn node_by_name(&self, name: &str) -> Option<&Versioned<NodeRecord>> {
        self.node_by_name
            .get(name)
            .and_then(|id| self.data.nodes.get(id))
    }
    /// The remembered answer to this exact request, if it committed and is still kept.
    pub fn dedup(&self, origin: &Origin, fingerprint: u64) -> Option<&MetaReply> {
        self.data
            .dedup
            .get(origin)
            .filter(|e| e.fingerprint == fingerprint)
            .map(|e| &e.reply)
    }
    pub(super) fn tablet_index(&self) -> &BTreeMap<(String, Vec<u8>), TabletId> {
        &self.tablet_index
    }

    /// The current version of a record, if it exists.
    pub fn version_of(&self, key: &RecordKey) -> Option<u64> {
        match key {
            RecordKey::Table(k) => self.data.tables.get(k).map(|v| v.version),
            RecordKey::Tablet(k) => self.data.tablets.get(k).map(|v| v.version),
            RecordKey::Node(k) => self.data.nodes.get(k).map(|v| v.version),
            RecordKey::Procedure(k) => self.data.procedures.get(k).map(|v| v.version),
            RecordKey::Stat(k) => self.data.stats.get(k).map(|v| v.version),
        }
    }

    /// Soft updates that are not logged (see `NodeRecord::lease_expiry`).
    pub(super) fn set_node_lease_expiry(&mut self, node: NodeId, expiry: Time) {
        if let Some(n) = self.data.nodes.get_mut(&node) {
            n.value.lease_expiry = expiry;
        }
    }
    pub(super) fn set_master_lease_expiry(&mut self, expiry: Time) {
        if let Some(l) = self.data.master_lease.as_mut() {
            l.expiry = expiry;
        }
    }

    /// Is the master lease held by (holder, term) and unexpired at `now`?
    pub fn lease_held(&self, holder: NodeId, term: u64, now: Time) -> bool {
        matches!(&self.data.master_lease,
            Some(l) if l.holder == holder && l.term == term && now < l.expiry)
    }

    /// Evaluate a transaction: Ok(post-images) if every check holds and every op is allowed,
    /// else the first reason it is not. Does not change the state.
    pub fn evaluate(&self, txn: &Txn, env: EvalEnv) -> Result<Vec<Write>, MetaError> {
        for check in &txn.checks {
            self.check(check, env.now)?;
        }
        let mut writes = Vec::with_capacity(txn.ops.len());
        for op in &txn.ops {
            writes.push(self.op_write(op, env)?);
        }
        self.check_references(&writes)?;
        self.check_no_overlap(&writes)?;
        Ok(writes)
    }

    fn check(&self, check: &Check, now: Time) -> Result<(), MetaError> {
        match check {
            Check::VersionIs { key, version } => {
                let current = self.version_of(key);
                if current != Some(*version) {
                    return Err(MetaError::VersionConflict {
                        key: key.clone(),
                        expected: Some(*version),
                        current,
                    });
                }
            }
            Check::Absent { key } => {
                let current = self.version_of(key);
                if current.is_some() {
                    return Err(MetaError::VersionConflict {
                        key: key.clone(),
                        expected: None,
                        current,
                    });
                }
            }
            Check::MasterLease { holder, term } => {
                if !self.lease_held(*holder, *term, now) {
                    let current = self.data.master_lease.as_ref();
                    return Err(MetaError::LeaseNotHeld {
                        holder: *holder,
                        term: *term,
                        current_holder: current.map(|l| l.holder),
                        current_term: self.data.marks.lease_term,
                    });
                }
            }
        }
        Ok(())
    }

    /// The write an op produces, with the fields the store owns filled in.
    fn op_write(&self, op: &Op, env: EvalEnv) -> Result<Write, MetaError> {
        let key = op.key();
        let exists = self.version_of(&key).is_some();
        match op {
            Op::PutTablet(t) if t.id.0 == 0 || t.id.0 == u64::MAX => {
                return Err(MetaError::BadRequest(format!(
                    "tablet id {} is reserved",
                    t.id
                )));
            }
            Op::PutTablet(t) if !exists && t.id.0 < self.data.marks.tablet_next => {
                return Err(MetaError::BadRequest(format!(
                    "tablet id {} was already used (next unused is {})",
                    t.id, self.data.marks.tablet_next
                )));
            }
            Op::PutProcedure(p) if p.id.0 == 0 || p.id.0 == u64::MAX => {
                return Err(MetaError::BadRequest(format!(
                    "procedure id {} is reserved",
                    p.id
                )));
            }
            Op::PutProcedure(p) if !exists && p.id.0 < self.data.marks.procedure_next => {
                return Err(MetaError::BadRequest(format!(
                    "procedure id {} was already used (next unused is {})",
                    p.id, self.data.marks.procedure_next
                )));
            }
            Op::PutNode(n) => {
                if let Some(other) = self.node_by_name.get(&n.name) {
                    if *other != n.id {
                        return Err(MetaError::RegistrationConflict(format!(
                            "name {:?} belongs to node {other}",
                            n.name
                        )));
                    }
                }
                let mut n = n.clone();
                n.lease_expiry = match self.data.nodes.get(&n.id) {
                    Some(old) => old.value.lease_expiry,
                    None => env.now.plus(env.node_lease),
                };
                return Ok(Write::Put(Record::Node(n)));
            }
            Op::DeleteTable(_)
            | Op::DeleteTablet(_)
            | Op::DeleteNode(_)
            | Op::DeleteProcedure(_)
            | Op::DeleteStat(_)
                if !exists =>
            {
                return Err(MetaError::NotFound(key));
            }
            _ => {}
        }
        Ok(op.clone().into_write())
    }

    /// A tablet's table must exist after the transaction; a table must have no tablets left
    /// when it is deleted.
    fn check_references(&self, writes: &[Write]) -> Result<(), MetaError> {
        let mut tables_deleted = BTreeSet::new();
        let mut tables_put = BTreeSet::new();
        let mut tablets_removed = BTreeSet::new();
        for w in writes {
            match w {
                Write::Delete(RecordKey::Table(name)) => {
                    tables_deleted.insert(name.as_str());
                }
                Write::Put(Record::Table(t)) => {
                    tables_put.insert(t.name.as_str());
                }
                Write::Delete(RecordKey::Tablet(id)) => {
                    tablets_removed.insert(*id);
                }
                Write::Put(Record::Tablet(t)) => {
                    // A put replaces the old image, which may have belonged to another table.
                    tablets_removed.insert(t.id);
                }
                _ => {}
            }
        }
        for w in writes {
            if let Write::Put(Record::Tablet(t)) = w {
                let table_exists = tables_put.contains(t.table.as_str())
                    || (self.data.tables.contains_key(&t.table)
                        && !tables_deleted.contains(t.table.as_str()));
                if !table_exists {
                    return Err(MetaError::BadRequest(format!(
                        "tablet {} refers to table {:?}, which does not exist",
                        t.id, t.table
                    )));
                }
            }
        }
        for name in tables_deleted {
            let left = self
                .tablets_of(name)
                .find(|id| !tablets_removed.contains(id));
            let added = writes
                .iter()
                .any(|w| matches!(w, Write::Put(Record::Tablet(t)) if t.table == name));
            if left.is_some() || added {
                return Err(MetaError::BadRequest(format!(
                    "table {name:?} still has tablets; delete them in the same transaction"
                )));
            }
        }
        Ok(())
    }

    fn tablets_of<'a>(&'a self, table: &'a str) -> impl Iterator<Item = TabletId> + 'a {
        self.tablet_index
            .range((table.to_string(), Vec::new())..)
            .take_while(move |((t, _), _)| t == table)
            .map(|(_, id)| *id)
    }

    /// No two tablets of a table may overlap after the transaction. Checks each new image
    /// against the other new images and against its committed neighbours (skipping the ones
    /// this transaction removes or replaces), so the cost is O(ops log n), not O(tablets).
    fn check_no_overlap(&self, writes: &[Write]) -> Result<(), MetaError> {
        let mut removed = BTreeSet::new();
        let mut added: Vec<&TabletRecord> = Vec::new();
        for w in writes {
            match w {
                Write::Delete(RecordKey::Tablet(id)) => {
                    removed.insert(*id);
                }
                Write::Put(Record::Tablet(t)) => {
                    removed.insert(t.id);
                    added.push(t);
                }
                _ => {}
            }
        }
        for (i, a) in added.iter().enumerate() {
            for b in &added[i + 1..] {
                if a.table == b.table && ranges_overlap(a, b) {
                    return Err(overlap(a, b));
                }
            }
            let from = (a.table.clone(), a.start.clone());
            // The nearest surviving tablet starting at or before a.start.
            let before = self
                .tablet_index
                .range(..=from.clone())
                .rev()
                .take_while(|((t, _), _)| *t == a.table)
                .map(|(_, id)| *id)
                .find(|id| !removed.contains(id));
            // The nearest surviving tablet starting after a.start.
            let after = self
                .tablet_index
                .range((std::ops::Bound::Excluded(from), std::ops::Bound::Unbounded))
                .take_while(|((t, _), _)| *t == a.table)
                .map(|(_, id)| *id)
                .find(|id| !removed.contains(id));
            for id in before.into_iter().chain(after) {
                if let Some(b) = self.data.tablets.get(&id) {
                    if ranges_overlap(a, &b.value) {
                        return Err(overlap(a, &b.value));
                    }
                }
            }
        }
        Ok(())
    }

    /// Apply a committed record: the one path for live commits and for replay.
    pub fn apply(&mut self, rec: &LogRecord) {
        assert_eq!(
            rec.revision,
            self.data.revision + 1,
            "log records apply in revision order"
        );
        self.data.revision = rec.revision;
        match &rec.change {
            Change::Writes(writes) => {
                for w in writes {
                    self.apply_write(w, rec.revision);
                }
            }
            Change::Lease(lease) => {
                if let Some(l) = lease {
                    self.data.marks.lease_term = self.data.marks.lease_term.max(l.term);
                }
                self.data.master_lease = lease.clone();
            }
        }
        if let Some(d) = &rec.dedup {
            self.remember(d.clone(), rec.revision);
        }
    }

    fn apply_write(&mut self, w: &Write, revision: u64) {
        let d = &mut self.data;
        match w {
            Write::Put(Record::Table(t)) => {
                d.tables.insert(t.name.clone(), versioned(revision, t));
            }
            Write::Put(Record::Tablet(t)) => {
                if let Some(old) = d.tablets.get(&t.id) {
                    self.tablet_index
                        .remove(&(old.value.table.clone(), old.value.start.clone()));
                }
                self.tablet_index
                    .insert((t.table.clone(), t.start.clone()), t.id);
                d.marks.tablet_next = d.marks.tablet_next.max(t.id.0.saturating_add(1));
                d.tablets.insert(t.id, versioned(revision, t));
            }
            Write::Put(Record::Node(n)) => {
                if let Some(old) = d.nodes.get(&n.id) {
                    self.node_by_name.remove(&old.value.name);
                }
                self.node_by_name.insert(n.name.clone(), n.id);
                d.marks.epoch_next = d.marks.epoch_next.max(n.epoch.0.saturating_add(1));
                d.nodes.insert(n.id, versioned(revision, n));
            }
            Write::Put(Record::Procedure(p)) => {
                d.marks.procedure_next = d.marks.procedure_next.max(p.id.0.saturating_add(1));
                d.procedures.insert(p.id, versioned(revision, p));
            }
            Write::Put(Record::Stat(s)) => {
                d.stats.insert(s.subject, versioned(revision, s));
            }
            Write::Delete(RecordKey::Table(name)) => {
                d.tables.remove(name);
            }
            Write::Delete(RecordKey::Tablet(id)) => {
                if let Some(old) = d.tablets.remove(id) {
                    self.tablet_index
                        .remove(&(old.value.table, old.value.start));
                }
            }
            Write::Delete(RecordKey::Node(id)) => {
                if let Some(old) = d.nodes.remove(id) {
                    self.node_by_name.remove(&old.value.name);
                }
            }
            Write::Delete(RecordKey::Procedure(id)) => {
                d.procedures.remove(id);
            }
            Write::Delete(RecordKey::Stat(s)) => {
                d.stats.remove(s);
            }
        }
    }

    /// Keep a retried request's answer, evicting the oldest beyond the bound.
    fn remember(&mut self, d: DedupRecord, revision: u64) {
        let origin = d.origin;
        let entry = DedupEntry {
            revision,
            fingerprint: d.fingerprint,
            reply: d.reply,
        };
        if let Some(old) = self.data.dedup.insert(origin, entry) {
            self.dedup_by_revision.remove(&old.revision);
        }
        self.dedup_by_revision.insert(revision, origin);
        while self.data.dedup.len() > self.dedup_entries_max {
            let Some((_, oldest)) = self.dedup_by_revision.pop_first() else {
                break;
            };
            self.data.dedup.remove(&oldest);
        }
    }

    /// The next unused epoch (a registration takes it).
    pub fn next_epoch(&self) -> Epoch {
        Epoch(self.data.marks.epoch_next)
    }

    /// Check the invariants a committed state must satisfy. Used after recovery (the data
    /// came from disk, so a failure is an error, not a panic), in debug builds after every
    /// commit, and in tests.
    pub fn check_invariants(&self) -> Result<(), String> {
        let d = &self.data;
        if self.tablet_index.len() != d.tablets.len() {
            return Err("tablet index and tablets differ in size (duplicate start row?)".into());
        }
        let mut prev: Option<&TabletRecord> = None;
        for ((table, start), id) in &self.tablet_index {
            let t = &d
                .tablets
                .get(id)
                .ok_or_else(|| format!("index names missing tablet {id}"))?
                .value;
            if &t.table != table || &t.start != start {
                return Err(format!("index entry for {id} is stale"));
            }
            if !t.range_is_valid() {
                return Err(format!("tablet {id} has start >= end"));
            }
            if !d.tables.contains_key(table) {
                return Err(format!("tablet {id} refers to missing table {table:?}"));
            }
            if t.id.0 >= d.marks.tablet_next {
                return Err(format!("tablet {id} is above the id mark"));
            }
            if let Some(p) = prev.filter(|p| p.table == t.table) {
                if ranges_overlap(p, t) {
                    return Err(format!("tablets {} and {} overlap", p.id, t.id));
                }
            }
            prev = Some(t);
        }
        for (name, id) in &self.node_by_name {
            match d.nodes.get(id) {
                Some(n) if &n.value.name == name => {}
                _ => return Err(format!("node name index entry {name:?} is stale")),
            }
        }
        if self.node_by_name.len() != d.nodes.len() {
            return Err("two nodes share a name".into());
        }
        for n in d.nodes.values() {
            if n.value.epoch.0 >= d.marks.epoch_next {
                return Err(format!("node {} epoch is above the mark", n.value.id));
            }
        }
        if let Some(p) = d.procedures.keys().find(|p| p.0 >= d.marks.procedure_next) {
            return Err(format!("procedure {p} is above the id mark"));
        }
        let versions_ok = d.tables.values().all(|v| v.version <= d.revision)
            && d.tablets.values().all(|v| v.version <= d.revision)
            && d.nodes.values().all(|v| v.version <= d.revision)
            && d.procedures.values().all(|v| v.version <= d.revision)
            && d.stats.values().all(|v| v.version <= d.revision);
        if !versions_ok {
            return Err("a record version is above the revision".into());
        }
        if let Some(l) = &d.master_lease {
            if l.term > d.marks.lease_term {
                return Err("master lease term is above the mark".into());
            }
        }
        Ok(())
    }
}

fn versioned<T: Clone>(version: u64, value: &T) -> Versioned<T> {
    Versioned {
        version,
        value: value.clone(),
    }
}

/// Do two ranges of one table share a row? (Empty end is +inf.)
pub fn ranges_overlap(a: &TabletRecord, b: &TabletRecord) -> bool {
    let a_before_b = !a.end.is_empty() && a.end <= b.start;
    let b_before_a = !b.end.is_empty() && b.end <= a.start;
    !(a_before_b || b_before_a)
}

fn overlap(a: &TabletRecord, b: &TabletRecord) -> MetaError {
    MetaError::TabletsOverlap {
        table: a.table.clone(),
        a: a.id,
        b: b.id,
    }
}
