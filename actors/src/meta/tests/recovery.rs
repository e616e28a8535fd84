//! Recovery from what a backend hands back (records the snapshot already covers, gaps in the
//! log), the full-state read a failed-over master uses, and backpressure bounds.

use super::harness::*;
use crate::kernel::{Actor, Ctx, Effect, IdGen, NodeId, Time};
use crate::meta::*;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use std::sync::{Arc, Mutex};

/// A backend that returns a fixed load result, for recovery edge cases a real disk only
/// produces through unlucky timing.
struct Scripted {
    snapshot: Option<MetaSnapshot>,
    records: Mutex<Vec<LogRecord>>,
}

impl MetaBackend for Scripted {
    fn load(&self) -> Result<Loaded, BackendError> {
        let records = self
            .records
            .lock()
            .map_err(|_| BackendError::Io("poisoned".into()))?;
        Ok(Loaded {
            snapshot: self.snapshot.clone(),
            records: records.clone(),
            torn_tail_bytes: 0,
        })
    }
    fn append(&self, _: &[LogRecord]) -> Result<(), BackendError> {
        Ok(())
    }
    fn sync(&self) -> Result<(), BackendError> {
        Ok(())
    }
    fn write_snapshot(&self, _: &MetaSnapshot) -> Result<(), BackendError> {
        Ok(())
    }
}

fn put_table_record(revision: u64, name: &str) -> LogRecord {
    LogRecord {
        revision,
        at: Time(revision),
        change: Change::Writes(vec![Write::Put(Record::Table(table(name)))]),
        dedup: None,
    }
}

/// Boot a store over `backend` and run its load job.
fn boot(backend: Scripted) -> MetaStore {
    let mut store = MetaStore::new(config(), Arc::new(backend));
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    let mut ids = IdGen::new();
    let mut out: Vec<Effect<MetaStore>> = Vec::new();
    store.on_start(&mut Ctx::new(
        META,
        Time::ZERO,
        &mut rng,
        &mut ids,
        &mut out,
    ));
    let jobs: Vec<_> = out
        .drain(..)
        .filter_map(|e| match e {
            Effect::StartJob { id, work, .. } => Some((id, work)),
            _ => None,
        })
        .collect();
    for (id, work) in jobs {
        let result = work();
        store.on_job_done(
            id,
            Ok(result),
            &mut Ctx::new(META, Time::ZERO, &mut rng, &mut ids, &mut out),
        );
    }
    store
}

#[test]
fn records_covered_by_the_snapshot_are_skipped() {
    // A crash between writing a snapshot and truncating the log leaves both.
    let mut snap = MetaState::new(16);
    snap.apply(&put_table_record(1, "a"));
    snap.apply(&put_table_record(2, "b"));
    let records = (1..=4)
        .map(|r| put_table_record(r, &format!("t{r}")))
        .collect();
    let store = boot(Scripted {
        snapshot: Some(snap.snapshot().clone()),
        records: Mutex::new(records),
    });
    assert!(store.is_serving());
    let names: Vec<&String> = store.state().snapshot().tables.keys().collect();
    assert_eq!(
        names,
        ["a", "b", "t3", "t4"],
        "1 and 2 came from the snapshot"
    );
    assert_eq!(store.state().revision(), 4);
    assert_eq!(store.durable_revision(), 4);
}

#[test]
fn a_gap_in_the_log_or_a_broken_invariant_is_refused() {
    let gap = vec![put_table_record(1, "a"), put_table_record(3, "c")];
    let store = boot(Scripted {
        snapshot: None,
        records: Mutex::new(gap),
    });
    assert!(
        !store.is_serving(),
        "a missing revision is damage, not something to skip"
    );
    // Checksums can pass on a record that breaks the store's rules (a bug that wrote it):
    // recovery checks the invariants and refuses instead of serving it.
    let orphan = LogRecord {
        revision: 1,
        at: Time(1),
        change: Change::Writes(vec![Write::Put(Record::Tablet(tablet(1, "nope", "", "")))]),
        dedup: None,
    };
    let store = boot(Scripted {
        snapshot: None,
        records: Mutex::new(vec![orphan]),
    });
    assert!(!store.is_serving());
}

#[test]
fn a_new_master_reads_everything_in_one_snapshot() {
    let mut h = Harness::new();
    let txn = Txn::new()
        .op(Op::PutTable(table("t")))
        .op(Op::PutTablet(tablet(1, "t", "", "")))
        .op(Op::PutProcedure(procedure(1, ProcedureKind::Load)));
    h.txn(MASTER, txn).expect("write");
    let Ok(MetaReply::Snapshot(snap)) = h.call(MASTER2, MetaCall::Snapshot) else {
        panic!("no snapshot")
    };
    assert_eq!(snap.tables.len(), 1);
    assert_eq!(snap.tablets.len(), 1);
    assert_eq!(snap.procedures.len(), 1);
    assert_eq!(
        snap.marks.tablet_next, 2,
        "the next unused tablet id comes with it"
    );
    assert!(snap.dedup.is_empty(), "the retry table stays home");
    assert_eq!(snap.revision, h.store.state().revision());
}

#[test]
fn queues_are_bounded_and_overflow_is_busy() {
    let cfg = MetaConfig {
        pending_len_max: 3,
        held_replies_max: 6,
        ..config()
    };
    let mut h = Harness::with(cfg, MemBackend::new());
    // One record goes to disk at once; three more fill the pending queue.
    let ids: Vec<_> = (0..4)
        .map(|i| {
            h.send(
                MASTER,
                MetaCall::Txn(Txn::new().op(Op::PutTable(table(&format!("t{i}"))))),
            )
        })
        .collect();
    let busy = h.send(
        MASTER,
        MetaCall::Txn(Txn::new().op(Op::PutTable(table("x")))),
    );
    assert_eq!(h.response(MASTER, busy), Some(Err(MetaError::Busy)));
    // Reads still queue behind the disk until the held-reply bound.
    let r1 = h.send(NodeId(60), MetaCall::Get(tkey("t0")));
    let r2 = h.send(NodeId(60), MetaCall::Get(tkey("t0")));
    let r3 = h.send(NodeId(60), MetaCall::Get(tkey("t0")));
    assert_eq!(h.response(NodeId(60), r1), None);
    assert_eq!(h.response(NodeId(60), r2), None);
    assert_eq!(h.response(NodeId(60), r3), Some(Err(MetaError::Busy)));
    h.run_jobs();
    for id in ids {
        assert!(matches!(
            h.response(MASTER, id),
            Some(Ok(MetaReply::Committed { .. }))
        ));
    }
    assert!(matches!(
        h.response(NodeId(60), r1),
        Some(Ok(MetaReply::Record(Some(_))))
    ));
    assert_eq!(h.get(tkey("x")), None);
}
