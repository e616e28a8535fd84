//! Conditional transactions: the checks, the operations, and the post-images they produce.
//!
//! Owns: the [`Txn`] request type, the [`Write`] a committed transaction leaves in the log,
//! and validation of a transaction's shape against the limits. Evaluation against the state
//! lives in `state.rs`.
//! Must not: touch the state, the log or the clock.

use super::model::{
    NodeRecord, ProcedureId, ProcedureRecord, Record, RecordKey, StatRow, StatSubject, TableRecord,
    TabletId, TabletRecord,
};
use super::MetaError;
use crate::kernel::NodeId;
use serde::{Deserialize, Serialize};

/// A precondition. All checks of a transaction must hold for any of its ops to apply.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Check {
    /// The record exists with exactly this version.
    VersionIs { key: RecordKey, version: u64 },
    /// The record does not exist.
    Absent { key: RecordKey },
    /// The master lease is held by `holder` in `term` and has not expired on the meta
    /// store's clock. Every master write carries one, so a deposed master cannot write.
    MasterLease { holder: NodeId, term: u64 },
}

/// A write. Puts replace the whole record (the store assigns the version).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Op {
    PutTable(TableRecord),
    DeleteTable(String),
    PutTablet(TabletRecord),
    DeleteTablet(TabletId),
    PutNode(NodeRecord),
    DeleteNode(NodeId),
    PutProcedure(ProcedureRecord),
    DeleteProcedure(ProcedureId),
    /// Stat rows are upserts: the latest round replaces the previous one.
    PutStat(StatRow),
    DeleteStat(StatSubject),
}

impl Op {
    pub fn key(&self) -> RecordKey {
        match self {
            Op::PutTable(t) => RecordKey::Table(t.name.clone()),
            Op::DeleteTable(name) => RecordKey::Table(name.clone()),
            Op::PutTablet(t) => RecordKey::Tablet(t.id),
            Op::DeleteTablet(id) => RecordKey::Tablet(*id),
            Op::PutNode(n) => RecordKey::Node(n.id),
            Op::DeleteNode(id) => RecordKey::Node(*id),
            Op::PutProcedure(p) => RecordKey::Procedure(p.id),
            Op::DeleteProcedure(id) => RecordKey::Procedure(*id),
            Op::PutStat(s) => RecordKey::Stat(s.subject),
            Op::DeleteStat(s) => RecordKey::Stat(*s),
        }
    }

    /// The post-image this op writes (None for a delete).
    pub fn into_write(self) -> Write {
        match self {
            Op::PutTable(t) => Write::Put(Record::Table(t)),
            Op::PutTablet(t) => Write::Put(Record::Tablet(t)),
            Op::PutNode(n) => Write::Put(Record::Node(n)),
            Op::PutProcedure(p) => Write::Put(Record::Procedure(p)),
            Op::PutStat(s) => Write::Put(Record::Stat(s)),
            other => Write::Delete(other.key()),
        }
    }
}

/// A transaction: all checks hold and all ops apply, or nothing happens.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Txn {
    pub checks: Vec<Check>,
    pub ops: Vec<Op>,
}

impl Txn {
    pub fn new() -> Self {
        Self::default()
    }
    pub fn check(mut self, check: Check) -> Self {
        self.checks.push(check);
        self
    }
    pub fn op(mut self, op: Op) -> Self {
        self.ops.push(op);
        self
    }
}

/// What a committed transaction leaves in the log: the post-image of each written record.
/// Replaying writes needs no checks and no clock, so recovery is a pure function of the log.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Write {
    Put(Record),
    Delete(RecordKey),
}

impl Write {
    pub fn key(&self) -> RecordKey {
        match self {
            Write::Put(r) => r.key(),
            Write::Delete(k) => k.clone(),
        }
    }
}

/// Limits on a transaction's shape.
#[derive(Clone, Copy, Debug)]
pub struct TxnLimits {
    pub checks_max: usize,
    pub ops_max: usize,
    pub key_bytes_max: usize,
    pub name_bytes_max: usize,
    pub payload_bytes_max: usize,
    pub list_len_max: usize,
}

/// Reject a transaction whose shape breaks a limit or a simple rule, before it is evaluated.
pub fn validate_shape(txn: &Txn, limits: &TxnLimits) -> Result<(), MetaError> {
    let bad = |s: String| Err(MetaError::BadRequest(s));
    if txn.ops.is_empty() {
        return bad("a transaction needs at least one op".into());
    }
    if txn.checks.len() > limits.checks_max {
        return bad(format!(
            "{} checks > {}",
            txn.checks.len(),
            limits.checks_max
        ));
    }
    if txn.ops.len() > limits.ops_max {
        return bad(format!("{} ops > {}", txn.ops.len(), limits.ops_max));
    }
    // Two ops on one record would make the outcome depend on op order; refuse it.
    let mut keys: Vec<RecordKey> = txn.ops.iter().map(Op::key).collect();
    keys.sort();
    if let Some(w) = keys.windows(2).find(|w| w[0] == w[1]) {
        return bad(format!("two ops write {}", w[0]));
    }
    for op in &txn.ops {
        validate_op(op, limits)?;
    }
    Ok(())
}

fn validate_op(op: &Op, limits: &TxnLimits) -> Result<(), MetaError> {
    let name_ok = |name: &str| !name.is_empty() && name.len() <= limits.name_bytes_max;
    let err = |s: String| Err(MetaError::BadRequest(s));
    match op {
        Op::PutTable(t) => {
            if !name_ok(&t.name) {
                return err(format!("bad table name {:?}", t.name));
            }
            if t.schema.families.len() > limits.list_len_max {
                return err(format!("table {:?} has too many families", t.name));
            }
            let mut names: Vec<&str> = t.schema.families.iter().map(|f| f.name.as_str()).collect();
            names.sort_unstable();
            if names.windows(2).any(|w| w[0] == w[1]) {
                return err(format!("table {:?} repeats a family", t.name));
            }
            for f in &t.schema.families {
                if !name_ok(&f.name) || f.locality_group.len() > limits.name_bytes_max {
                    return err(format!("bad family name {:?}", f.name));
                }
                if f.min_versions > f.max_versions {
                    return err(format!("family {:?}: min_versions > max_versions", f.name));
                }
            }
        }
        Op::PutTablet(t) => {
            if !name_ok(&t.table) || t.path.len() > limits.name_bytes_max {
                return err(format!("tablet {}: bad table name or path", t.id));
            }
            if t.start.len() > limits.key_bytes_max || t.end.len() > limits.key_bytes_max {
                return err(format!("tablet {}: key longer than the limit", t.id));
            }
            if !t.range_is_valid() {
                return err(format!("tablet {}: start >= end", t.id));
            }
            if t.parents.len() > limits.list_len_max {
                return err(format!("tablet {}: too many parents", t.id));
            }
        }
        Op::PutNode(n) => {
            if !name_ok(&n.name) || n.addr.0.len() > limits.name_bytes_max {
                return err(format!("node {}: bad name or address", n.id));
            }
        }
        Op::PutProcedure(p) => {
            if p.payload.len() > limits.payload_bytes_max {
                return err(format!("procedure {}: payload over the limit", p.id));
            }
            if p.tablets.len() > limits.list_len_max || p.phase.len() > limits.name_bytes_max {
                return err(format!(
                    "procedure {}: too many tablets or long phase",
                    p.id
                ));
            }
        }
        Op::PutStat(s) => {
            if s.inherited_files.len() > limits.list_len_max
                || s.inherited_files
                    .iter()
                    .any(|f| f.len() > limits.name_bytes_max)
            {
                return err(format!(
                    "stat {:?}: inherited file list over the limit",
                    s.subject
                ));
            }
        }
        Op::DeleteTable(_)
        | Op::DeleteTablet(_)
        | Op::DeleteNode(_)
        | Op::DeleteProcedure(_)
        | Op::DeleteStat(_) => {}
    }
    Ok(())
}
