//! Evaluation of a transaction against the state: checks, per-op rules, references between
//! records, the no-overlap rule for tablets, and stat rows following their subjects (a
//! deleted tablet or node takes its stat row along; a row for a missing tablet is not written).
//!
//! Owns: the rules the store itself enforces on every write (a failed rule rejects the whole
//! transaction). Must not: change the state (that is `MetaState::apply`), read a clock (time
//! comes in through [`EvalEnv`]), or judge tablet state transitions (the master's business).

use super::model::{Record, RecordKey, StatSubject, TabletId, TabletRecord};
use super::state::{EvalEnv, MetaState};
use super::txn::{Check, Op, Txn, Write};
use super::MetaError;
use crate::kernel::Time;
use std::collections::BTreeSet;

impl MetaState {
    /// Evaluate a transaction: Ok(post-images) if every check holds and every op is allowed,
    /// else the first reason it is not. Does not change the state.
    pub fn evaluate(&self, txn: &Txn, env: EvalEnv) -> Result<Vec<Write>, MetaError> {
        for check in &txn.checks {
            self.check(check, env.now)?;
        }
        let reserved = self.reserved_by(txn);
        let mut writes = Vec::with_capacity(txn.ops.len());
        for op in &txn.ops {
            writes.push(self.op_write(op, &reserved, env)?);
        }
        self.check_references(&writes)?;
        self.check_no_overlap(&writes)?;
        self.stats_follow_subjects(&mut writes);
        Ok(writes)
    }

    /// Stat rows follow their subjects. Deleting a tablet or a node deletes its stat row in
    /// the same transaction (splits, merges and drops delete tablets all the time; without
    /// this their rows would pile up forever). A stat row for a tablet that does not exist
    /// after the transaction is not written: a query round's report can arrive after a split
    /// or merge removed the tablet, and losing that row costs nothing, while refusing the
    /// whole transaction would lose every other row in it.
    fn stats_follow_subjects(&self, writes: &mut Vec<Write>) {
        let mut tablets_deleted = BTreeSet::new();
        let mut tablets_put = BTreeSet::new();
        let mut subjects_gone = Vec::new();
        for w in writes.iter() {
            match w {
                Write::Delete(RecordKey::Tablet(id)) => {
                    tablets_deleted.insert(*id);
                    subjects_gone.push(StatSubject::Tablet(*id));
                }
                Write::Delete(RecordKey::Node(id)) => subjects_gone.push(StatSubject::Node(*id)),
                Write::Put(Record::Tablet(t)) => {
                    tablets_put.insert(t.id);
                }
                _ => {}
            }
        }
        let tablet_exists_after = |id: &TabletId| {
            tablets_put.contains(id)
                || (self.data.tablets.contains_key(id) && !tablets_deleted.contains(id))
        };
        writes.retain(|w| match w {
            Write::Put(Record::Stat(row)) => match &row.subject {
                StatSubject::Tablet(id) => tablet_exists_after(id),
                StatSubject::Node(_) => true,
            },
            _ => true,
        });
        for subject in subjects_gone {
            let deleted_here = writes
                .iter()
                .any(|w| matches!(w, Write::Delete(RecordKey::Stat(s)) if *s == subject));
            if self.data.stats.contains_key(&subject) && !deleted_here {
                writes.push(Write::Delete(RecordKey::Stat(subject)));
            }
        }
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

    /// The tablet ids reserved by the committed procedure records this transaction writes
    /// (puts or deletes). A procedure reserves the ids it allocated (split children, a merged
    /// tablet) when its record is first written (see `apply_write`), so younger procedures
    /// may create tablets with higher ids before it creates its own: its phase write may
    /// then create them below the mark. That is their first use, not a reuse; an id no live
    /// procedure lists stays refused below the mark.
    fn reserved_by(&self, txn: &Txn) -> BTreeSet<TabletId> {
        txn.ops
            .iter()
            .filter_map(|op| match op.key() {
                RecordKey::Procedure(id) => self.data.procedures.get(&id),
                _ => None,
            })
            .flat_map(|p| p.value.tablets.iter().copied())
            .collect()
    }

    /// The write an op produces, with the fields the store owns filled in.
    fn op_write(
        &self,
        op: &Op,
        reserved: &BTreeSet<TabletId>,
        env: EvalEnv,
    ) -> Result<Write, MetaError> {
        let key = op.key();
        let exists = self.version_of(&key).is_some();
        match op {
            Op::PutTablet(t) if t.id.0 == 0 || t.id.0 == u64::MAX => {
                return Err(MetaError::BadRequest(format!(
                    "tablet id {} is reserved",
                    t.id
                )));
            }
            Op::PutTablet(t)
                if !exists && t.id.0 < self.data.marks.tablet_next && !reserved.contains(&t.id) =>
            {
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
            // A new record under an id that was used and deleted would revive a finished
            // procedure (a delayed copy of its first write). An id below the mark that was
            // never deleted is a creation overtaken by a later one (the master allocates ids
            // in order, but its writes may land out of order): refusing it made the master
            // resync about 20 times per split-under-load run.
            Op::PutProcedure(p) if !exists && p.id.0 <= self.procedure_deleted_max => {
                return Err(MetaError::BadRequest(format!(
                    "procedure id {} was already used (ids up to {} may have been deleted)",
                    p.id, self.procedure_deleted_max
                )));
            }
            Op::PutNode(n) => {
                if let Some(other) = self.node_by_name.get(&n.name) {
                    if *other != n.id {
                        return Err(MetaError::NodeNameTaken {
                            name: n.name.clone(),
                            node: *other,
                        });
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
