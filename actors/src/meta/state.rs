//! The meta store's in-memory state: the durable image ([`MetaSnapshot`]), the log record
//! type, derived indexes, application of a log record, and the invariant check.
//!
//! Owns: the one apply path shared by live commits and replay, and the invariants a committed
//! state satisfies (checked after recovery, after every commit in debug builds, and in tests).
//! Must not: read a clock, touch the backend, or decide which tablet state transitions are
//! legal. The rules a write must pass live in `eval.rs`.

use super::catalog::{CatalogOp, PartitionKey, PartitionRecord, StorageReport, TsTableInfo};
use super::eval::ranges_overlap;
use super::model::{
    MasterLease, NodeRecord, ProcedureId, ProcedureRecord, Record, RecordKey, StatRow, StatSubject,
    TableRecord, TabletId, TabletRecord, Versioned,
};
use super::msg::{MetaReply, RequestId};
use super::txn::Write;
use crate::kernel::{Epoch, NodeId, Time};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
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
    /// The next id-mapping id and partition id (u32: the seed's `INT UNSIGNED` columns).
    pub id_next: u32,
    pub partition_next: u32,
}

impl Default for IdMarks {
    fn default() -> Self {
        // Id 0 and epoch 0 stay unused so a zero in a message is always "none".
        Self {
            tablet_next: 1,
            procedure_next: 1,
            epoch_next: 1,
            lease_term: 0,
            id_next: 1,
            partition_next: 1,
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
    /// The time-series catalog (`catalog.rs`): id mapping, tables, partitions, storage.
    pub ids: BTreeMap<String, u32>,
    pub ts_tables: BTreeMap<String, TsTableInfo>,
    pub partitions: BTreeMap<PartitionKey, PartitionRecord>,
    pub storage: BTreeMap<NodeId, Vec<StorageReport>>,
}

/// What one log record changes besides plain record writes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Change {
    Writes(Vec<Write>),
    /// Grant (Some) or release (None) the master lease.
    Lease(Option<MasterLease>),
    /// Catalog changes, applied in order (`catalog.rs`).
    Catalog(Vec<CatalogOp>),
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
    pub(super) tablet_index: BTreeMap<(String, Vec<u8>), TabletId>,
    pub(super) node_by_name: BTreeMap<String, NodeId>,
    dedup_by_revision: BTreeMap<u64, Origin>,
    dedup_entries_max: usize,
    /// At least the highest procedure id ever deleted (in memory only): a new procedure
    /// record below the id mark is refused only at or under it. Loaded from a snapshot it is
    /// the snapshot's mark minus one, which counts every id used before it as possibly
    /// deleted; the log replayed after it keeps it exact from there.
    pub(super) procedure_deleted_max: u64,
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
        state.procedure_deleted_max = state.data.marks.procedure_next.saturating_sub(1);
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
    /// At least the highest procedure id ever deleted (see the field).
    pub fn procedure_deleted_max(&self) -> u64 {
        self.procedure_deleted_max
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
            Change::Catalog(ops) => {
                for op in ops {
                    self.apply_catalog(op);
                }
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
                // The tablet ids a procedure lists count as used from now on: a split's
                // children may have files on disk before their records exist, so no later
                // allocation (a restarted master starts at the mark) may hand them out again.
                if let Some(top) = p.tablets.iter().map(|t| t.0).max() {
                    d.marks.tablet_next = d.marks.tablet_next.max(top.saturating_add(1));
                }
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
                self.procedure_deleted_max = self.procedure_deleted_max.max(id.0);
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
        self.check_catalog_invariants()
    }
}

fn versioned<T: Clone>(version: u64, value: &T) -> Versioned<T> {
    Versioned {
        version,
        value: value.clone(),
    }
}
