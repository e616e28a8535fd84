//! Model-based property test: random transactions, disk jobs, sync failures and crashes
//! (clean and torn) against a deliberately simple model of the store's rules.
//!
//! Checked after every step: the store's state equals the model's state at the store's
//! revision; that revision is never below the newest acknowledged one (acked transactions
//! survive every crash); and every definite answer matches the model's verdict.

use super::harness::*;
use crate::kernel::NodeId;
use crate::meta::*;
use proptest::prelude::*;
use std::collections::{BTreeMap, HashMap};

type Image = BTreeMap<RecordKey, (u64, Record)>;

#[derive(Clone, Debug, PartialEq)]
struct Model {
    revision: u64,
    records: Image,
    tablet_next: u64,
    procedure_next: u64,
    /// The highest procedure id deleted: a new procedure at or under it is refused (one
    /// below the mark but above it was only overtaken). After a reload, the store's own
    /// bound, which may be higher (a snapshot forgets which ids were deleted).
    procedure_deleted_max: u64,
}

/// The model's reading of the rules, written independently of `state.rs`.
fn model_eval(m: &Model, txn: &Txn) -> Option<Model> {
    let mut keys: Vec<RecordKey> = txn.ops.iter().map(Op::key).collect();
    keys.sort();
    keys.dedup();
    if txn.ops.is_empty() || keys.len() != txn.ops.len() {
        return None;
    }
    for c in &txn.checks {
        let ok = match c {
            Check::VersionIs { key, version } => m.records.get(key).map(|r| r.0) == Some(*version),
            Check::Absent { key } => !m.records.contains_key(key),
            Check::MasterLease { .. } => false,
        };
        if !ok {
            return None;
        }
    }
    // Ids the touched procedures' committed records reserve may be created below the mark.
    let reserved: Vec<TabletId> = txn
        .ops
        .iter()
        .filter_map(|op| match m.records.get(&op.key()) {
            Some((_, Record::Procedure(p))) => Some(p.tablets.clone()),
            _ => None,
        })
        .flatten()
        .collect();
    let mut next = m.clone();
    next.revision += 1;
    for op in &txn.ops {
        let key = op.key();
        let exists = m.records.contains_key(&key);
        match op.clone().into_write() {
            Write::Delete(k) => {
                next.records.remove(&k)?;
                if let RecordKey::Procedure(id) = k {
                    next.procedure_deleted_max = next.procedure_deleted_max.max(id.0);
                }
            }
            Write::Put(rec) => {
                match &rec {
                    Record::Tablet(t)
                        if !exists && t.id.0 < m.tablet_next && !reserved.contains(&t.id) =>
                    {
                        return None
                    }
                    Record::Procedure(p) if !exists && p.id.0 <= m.procedure_deleted_max => {
                        return None
                    }
                    _ => {}
                }
                if let Record::Tablet(t) = &rec {
                    next.tablet_next = next.tablet_next.max(t.id.0 + 1);
                }
                if let Record::Procedure(p) = &rec {
                    next.procedure_next = next.procedure_next.max(p.id.0 + 1);
                    for t in &p.tablets {
                        next.tablet_next = next.tablet_next.max(t.0 + 1);
                    }
                }
                next.records.insert(key, (next.revision, rec));
            }
        }
    }
    // Stat rows follow their subjects: a tablet's row is written only if the tablet exists
    // afterwards (otherwise the old row, if any, stays), and a deleted tablet takes its row.
    for op in &txn.ops {
        if let Op::PutStat(row) = op {
            if let StatSubject::Tablet(id) = row.subject {
                if !next.records.contains_key(&RecordKey::Tablet(id)) {
                    match m.records.get(&op.key()) {
                        Some(old) => next.records.insert(op.key(), old.clone()),
                        None => next.records.remove(&op.key()),
                    };
                }
            }
        }
    }
    for op in &txn.ops {
        if let Op::DeleteTablet(id) = op {
            next.records
                .remove(&RecordKey::Stat(StatSubject::Tablet(*id)));
        }
    }
    // Every tablet's table exists afterwards.
    let tables_ok = next.records.values().all(|(_, r)| match r {
        Record::Tablet(t) => next
            .records
            .contains_key(&RecordKey::Table(t.table.clone())),
        _ => true,
    });
    tables_ok.then_some(next)
}

fn image_of(s: &MetaSnapshot) -> Image {
    let mut out = Image::new();
    for v in s.tables.values() {
        out.insert(
            tkey(&v.value.name),
            (v.version, Record::Table(v.value.clone())),
        );
    }
    for v in s.tablets.values() {
        out.insert(
            RecordKey::Tablet(v.value.id),
            (v.version, Record::Tablet(v.value.clone())),
        );
    }
    for v in s.procedures.values() {
        let r = Record::Procedure(v.value.clone());
        out.insert(r.key(), (v.version, r));
    }
    for v in s.stats.values() {
        let r = Record::Stat(v.value.clone());
        out.insert(r.key(), (v.version, r));
    }
    out
}

#[derive(Clone, Debug)]
enum OpSpec {
    PutTable(u8, bool),
    DeleteTable(u8),
    PutTablet(u8, u8, u64),
    DeleteTablet(u8),
    PutProcedure(u8, u8),
    DeleteProcedure(u8),
    PutStat(u8, u64),
    DeleteStat(u8),
}

#[derive(Clone, Debug)]
enum CheckSpec {
    Absent(u8),
    Current(u8),
    Stale(u8),
}

#[derive(Clone, Debug)]
enum Step {
    Submit(Vec<CheckSpec>, Vec<OpSpec>),
    RunJob,
    FailJob,
    FailNextSync,
    /// Run the in-flight job's disk work, then die before its result is delivered.
    SyncThenCrash,
    Crash,
    CrashTorn(u16),
}

fn key_of(i: u8) -> RecordKey {
    match i % 4 {
        0 => tkey(&format!("t{}", i % 2)),
        1 => tbkey(u64::from(i % 6) + 1),
        2 => RecordKey::Procedure(ProcedureId(u64::from(i % 4) + 1)),
        _ => RecordKey::Stat(stat_subject(i)),
    }
}

/// Stat rows of nodes (which this test never creates) and of the tablets it does create.
fn stat_subject(i: u8) -> StatSubject {
    if (i / 4).is_multiple_of(2) {
        StatSubject::Node(NodeId(u64::from(i % 3)))
    } else {
        StatSubject::Tablet(TabletId(u64::from(i % 6) + 1))
    }
}

fn op_of(spec: &OpSpec) -> Op {
    match *spec {
        OpSpec::PutTable(i, enabled) => {
            let mut t = table(&format!("t{}", i % 2));
            if !enabled {
                t.status = TableStatus::Disabled;
            }
            Op::PutTable(t)
        }
        OpSpec::DeleteTable(i) => Op::DeleteTable(format!("t{}", i % 2)),
        OpSpec::PutTablet(i, t, size) => {
            // Fixed, disjoint ranges per id: overlap is covered by the example tests.
            let id = u64::from(i % 6) + 1;
            let start = format!("{:02}", id * 10);
            let end = format!("{:02}", id * 10 + 10);
            let mut tb = tablet(id, &format!("t{}", t % 2), &start, &end);
            tb.size_bytes = size;
            Op::PutTablet(tb)
        }
        OpSpec::DeleteTablet(i) => Op::DeleteTablet(TabletId(u64::from(i % 6) + 1)),
        OpSpec::PutProcedure(i, phase) => {
            let mut p = procedure(u64::from(i % 4) + 1, ProcedureKind::Merge);
            p.phase = format!("phase{phase}");
            // A reserved tablet id, sometimes above every id a PutTablet here uses.
            p.tablets = vec![TabletId(u64::from(i / 4 % 7) + 1)];
            Op::PutProcedure(p)
        }
        OpSpec::DeleteProcedure(i) => Op::DeleteProcedure(ProcedureId(u64::from(i % 4) + 1)),
        OpSpec::PutStat(i, round) => Op::PutStat(stat(stat_subject(i), round)),
        OpSpec::DeleteStat(i) => Op::DeleteStat(stat_subject(i)),
    }
}

fn op_spec() -> impl Strategy<Value = OpSpec> {
    prop_oneof![
        (any::<u8>(), any::<bool>()).prop_map(|(i, e)| OpSpec::PutTable(i, e)),
        any::<u8>().prop_map(OpSpec::DeleteTable),
        (any::<u8>(), any::<u8>(), 0..1000u64).prop_map(|(i, t, s)| OpSpec::PutTablet(i, t, s)),
        any::<u8>().prop_map(OpSpec::DeleteTablet),
        (any::<u8>(), 0..4u8).prop_map(|(i, p)| OpSpec::PutProcedure(i, p)),
        any::<u8>().prop_map(OpSpec::DeleteProcedure),
        (any::<u8>(), 0..50u64).prop_map(|(i, r)| OpSpec::PutStat(i, r)),
        any::<u8>().prop_map(OpSpec::DeleteStat),
    ]
}

fn check_spec() -> impl Strategy<Value = CheckSpec> {
    prop_oneof![
        1 => any::<u8>().prop_map(CheckSpec::Absent),
        3 => any::<u8>().prop_map(CheckSpec::Current),
        1 => any::<u8>().prop_map(CheckSpec::Stale),
    ]
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        8 => (prop::collection::vec(check_spec(), 0..3), prop::collection::vec(op_spec(), 1..4))
            .prop_map(|(c, o)| Step::Submit(c, o)),
        6 => Just(Step::RunJob),
        1 => Just(Step::FailJob),
        1 => Just(Step::FailNextSync),
        1 => Just(Step::SyncThenCrash),
        1 => Just(Step::Crash),
        1 => any::<u16>().prop_map(Step::CrashTorn),
    ]
}

struct Checker {
    h: Harness,
    /// Model states by revision along the store's current history.
    history: Vec<Model>,
    /// Verdicts for requests still waiting for an answer.
    expected: HashMap<RequestId, Option<u64>>,
    acked_revision: u64,
    seen: usize,
}

impl Checker {
    fn spec(&self) -> &Model {
        self.history
            .last()
            .expect("history starts with the empty model")
    }

    fn submit(&mut self, checks: &[CheckSpec], ops: &[OpSpec]) {
        let spec = self.spec().clone();
        let mut txn = Txn::new();
        for c in checks {
            txn = txn.check(match *c {
                CheckSpec::Absent(i) => Check::Absent { key: key_of(i) },
                CheckSpec::Current(i) => {
                    let key = key_of(i);
                    let version = spec.records.get(&key).map_or(0, |r| r.0);
                    Check::VersionIs { key, version }
                }
                CheckSpec::Stale(i) => {
                    let key = key_of(i);
                    let version = spec.records.get(&key).map_or(1, |r| r.0.saturating_sub(1));
                    Check::VersionIs { key, version }
                }
            });
        }
        for o in ops {
            txn = txn.op(op_of(o));
        }
        let verdict = model_eval(&spec, &txn);
        let id = self.h.send(MASTER, MetaCall::Txn(txn));
        self.expected
            .insert(id, verdict.as_ref().map(|m| m.revision));
        if let Some(m) = verdict {
            self.history.push(m);
        }
    }

    /// Compare new answers with the verdicts, then the state with the model.
    fn check(&mut self) -> Result<(), TestCaseError> {
        for (_, resp) in &self.h.sent[self.seen..] {
            let Some(verdict) = self.expected.remove(&resp.id) else {
                return Err(TestCaseError::fail(format!("unexpected answer {resp:?}")));
            };
            match (&resp.result, verdict) {
                (Ok(MetaReply::Committed { revision }), Some(rev)) => {
                    prop_assert_eq!(*revision, rev);
                    self.acked_revision = self.acked_revision.max(rev);
                }
                (Err(MetaError::OutcomeUnknown | MetaError::Unavailable), _) => {}
                (Err(_), None) => {}
                (got, want) => {
                    return Err(TestCaseError::fail(format!(
                        "answer {got:?}, model {want:?}"
                    )))
                }
            }
        }
        self.seen = self.h.sent.len();
        if !self.h.store.is_serving() {
            return Ok(());
        }
        let state = self.h.store.state();
        let r = state.revision();
        prop_assert!(
            r >= self.acked_revision,
            "acked revision {} lost (at {r})",
            self.acked_revision
        );
        let Some(model) = self.history.get(r as usize) else {
            return Err(TestCaseError::fail(format!(
                "store at {r} is ahead of the model"
            )));
        };
        prop_assert_eq!(
            &image_of(state.snapshot()),
            &model.records,
            "state at revision {}",
            r
        );
        prop_assert_eq!(state.marks().tablet_next, model.tablet_next);
        prop_assert_eq!(state.marks().procedure_next, model.procedure_next);
        // Never forgets a deletion; may count more ids as deleted after a reload.
        let bound = state.procedure_deleted_max();
        prop_assert!(
            bound >= model.procedure_deleted_max,
            "a deletion was forgotten"
        );
        prop_assert!(bound < model.procedure_next.max(1), "bound past the mark");
        state.check_invariants().map_err(TestCaseError::fail)?;
        // After a reload the store is behind: its history continues from r.
        self.history.truncate(r as usize + 1);
        if let Some(m) = self.history.last_mut() {
            m.procedure_deleted_max = bound;
        }
        Ok(())
    }

    fn forget_unanswered(&mut self) {
        // A crashed incarnation never answers what it held.
        self.expected.clear();
        self.seen = self.h.sent.len();
    }
}

fn run(steps: Vec<Step>) -> Result<(), TestCaseError> {
    let cfg = MetaConfig {
        log_records_before_snapshot_max: 4,
        batch_len_max: 3,
        ..config()
    };
    let empty = Model {
        revision: 0,
        records: Image::new(),
        tablet_next: 1,
        procedure_next: 1,
        procedure_deleted_max: 0,
    };
    let mut c = Checker {
        h: Harness::with(cfg, MemBackend::new()),
        history: vec![empty],
        expected: HashMap::new(),
        acked_revision: 0,
        seen: 0,
    };
    for s in steps {
        match s {
            Step::Submit(checks, ops) => c.submit(&checks, &ops),
            Step::RunJob => {
                c.h.run_one_job();
            }
            Step::FailJob => {
                c.h.fail_one_job();
                c.check()?;
                c.h.run_jobs(); // the reload
            }
            Step::FailNextSync => c.h.backend.fail_next_syncs(1),
            Step::SyncThenCrash => {
                c.h.run_job_undelivered();
                c.forget_unanswered();
                c.h.crash();
            }
            Step::Crash => {
                c.forget_unanswered();
                c.h.crash();
            }
            Step::CrashTorn(keep) => {
                let unsynced = c.h.backend.unsynced_bytes();
                c.forget_unanswered();
                c.h.backend.crash_torn(usize::from(keep) % (unsynced + 1));
                c.h.restart();
            }
        }
        c.check()?;
    }
    c.h.run_jobs();
    c.check()?;
    c.forget_unanswered();
    c.h.crash();
    c.check()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]
    #[test]
    fn random_transactions_and_crashes_match_the_model(
        steps in prop::collection::vec(step(), 1..60)
    ) {
        run(steps)?;
    }
}
