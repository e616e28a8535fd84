//! Durability: replies wait for the disk, group commit, crashes before and after sync, torn
//! tails, corruption, disk failures, and snapshot + truncation + recovery.

use super::harness::*;
use crate::kernel::NodeId;
use crate::meta::*;
use std::time::Duration;

fn put_table(name: &str) -> MetaCall {
    MetaCall::Txn(Txn::new().op(Op::PutTable(table(name))))
}

/// The durable part of the state (leases' soft expiries left out).
fn durable_image(h: &Harness) -> MetaSnapshot {
    let mut s = h.store.state().snapshot().clone();
    s.master_lease = None;
    for n in s.nodes.values_mut() {
        n.value.lease_expiry = crate::kernel::Time::ZERO;
    }
    s
}

#[test]
fn replies_wait_until_durable() {
    let mut h = Harness::new();
    let w = h.send(MASTER, put_table("a"));
    let r = h.send(NodeId(60), MetaCall::Get(tkey("a")));
    assert_eq!(h.response(MASTER, w), None, "no ack before sync");
    assert_eq!(
        h.response(NodeId(60), r),
        None,
        "a read of undurable state waits too"
    );
    assert_eq!(h.backend.syncs(), 1, "only the boot sync so far");
    assert!(h.run_one_job());
    assert!(matches!(
        h.response(MASTER, w),
        Some(Ok(MetaReply::Committed { .. }))
    ));
    assert!(matches!(
        h.response(NodeId(60), r),
        Some(Ok(MetaReply::Record(Some(_))))
    ));
    // With nothing in flight, reads are answered at once.
    let r2 = h.send(NodeId(60), MetaCall::Get(tkey("a")));
    assert!(h.response(NodeId(60), r2).is_some());
}

#[test]
fn group_commit_batches_concurrent_transactions() {
    let cfg = MetaConfig {
        batch_len_max: 16,
        ..config()
    };
    let mut h = Harness::with(cfg, MemBackend::new());
    let boot_syncs = h.backend.syncs();
    let ids: Vec<_> = (0..50)
        .map(|i| h.send(MASTER, put_table(&format!("t{i}"))))
        .collect();
    assert_eq!(h.jobs_queued(), 1, "one disk job at a time");
    let jobs = h.run_jobs();
    // The first record went alone (the lane was idle); the other 49 waited and went in
    // batches of at most 16.
    assert_eq!(jobs, 1 + 4);
    assert_eq!(h.backend.syncs() - boot_syncs, 5);
    assert_eq!(h.store.counters().records_committed, 50);
    for id in ids {
        assert!(matches!(
            h.response(MASTER, id),
            Some(Ok(MetaReply::Committed { .. }))
        ));
    }
}

#[test]
fn crash_before_sync_loses_only_unacknowledged_writes() {
    let mut h = Harness::new();
    let a = h.send(MASTER, put_table("a"));
    h.run_jobs();
    assert!(h.response(MASTER, a).is_some_and(|r| r.is_ok()));
    let b = h.send(MASTER, put_table("b"));
    let c = h.send(MASTER, put_table("c"));
    let before = durable_image(&h);
    h.crash();
    assert!(h.get(tkey("a")).is_some(), "acked write survives");
    assert_eq!(h.get(tkey("b")), None);
    assert_eq!(h.get(tkey("c")), None);
    assert_eq!((h.response(MASTER, b), h.response(MASTER, c)), (None, None));
    assert_ne!(durable_image(&h), before, "b and c were in memory only");
}

#[test]
fn crash_after_sync_keeps_everything() {
    let mut h = Harness::new();
    h.call(MASTER, put_table("a")).expect("a");
    let b = h.send(MASTER, put_table("b"));
    assert!(h.run_job_undelivered(), "synced, but the ack never left");
    let image = durable_image(&h);
    h.crash();
    assert_eq!(h.response(MASTER, b), None);
    assert_eq!(durable_image(&h), image, "everything synced is back");
    assert!(h.get(tkey("b")).is_some());
    h.store.state().check_invariants().expect("invariants");
}

#[test]
fn a_torn_tail_is_truncated_and_the_log_continues() {
    let mut h = Harness::new();
    h.call(MASTER, put_table("a")).expect("a");
    let synced = h.backend.log_bytes();
    // b and c are appended but the sync never completes; the crash tears the write inside c.
    let _ = h.send(MASTER, put_table("b"));
    h.run_jobs();
    let _ = h.send(MASTER, put_table("c"));
    h.backend.fail_next_syncs(1);
    let _ = h.send(MASTER, put_table("d")); // queued behind c's job
    let before_c = h.backend.log_bytes();
    assert!(before_c > synced);
    assert!(h.run_job_undelivered());
    let unsynced = h.backend.unsynced_bytes();
    assert!(unsynced > 0, "c's frame is appended, not synced");
    h.backend.crash_torn(unsynced - 3);
    h.restart();
    assert!(h.store.is_serving());
    assert!(h.get(tkey("b")).is_some());
    assert_eq!(h.get(tkey("c")), None, "the torn record is dropped");
    // The torn bytes were cut: new records follow the last whole one and survive a crash.
    h.call(MASTER, put_table("e")).expect("e");
    h.crash();
    assert!(h.store.is_serving());
    assert!(h.get(tkey("e")).is_some());
    assert!(h.get(tkey("b")).is_some());
}

#[test]
fn a_damaged_record_in_the_middle_stops_recovery_without_panicking() {
    let mut h = Harness::new();
    for name in ["a", "b", "c"] {
        h.call(MASTER, put_table(name)).expect("write");
    }
    assert!(
        h.backend.corrupt_log_byte(12),
        "inside the first frame's payload"
    );
    h.restart();
    assert!(!h.store.is_serving());
    let r = h.send(MASTER, MetaCall::Get(tkey("a")));
    assert_eq!(h.response(MASTER, r), Some(Err(MetaError::Unavailable)));
    // It keeps retrying (and keeps refusing to guess).
    h.advance(Duration::from_secs(2));
    assert!(!h.store.is_serving());
    assert!(h.store.counters().disk_failures >= 2);
}

#[test]
fn a_failed_sync_reloads_and_a_retry_learns_the_outcome() {
    let mut h = Harness::new();
    h.call(MASTER, put_table("a")).expect("a");
    h.backend.fail_next_syncs(1);
    let call = put_table("b");
    let id = RequestId(500);
    h.send_with_id(MASTER, id, call.clone());
    let read = h.send(NodeId(60), MetaCall::Get(tkey("b")));
    h.run_jobs();
    assert_eq!(h.response(MASTER, id), Some(Err(MetaError::OutcomeUnknown)));
    assert_eq!(
        h.response(NodeId(60), read),
        Some(Err(MetaError::Unavailable))
    );
    assert!(h.store.is_serving(), "reloaded from the backend");
    assert_eq!(h.store.counters().recoveries, 2);
    // The record had reached the disk's cache; the reload synced it. The retry says so.
    h.sent.clear();
    h.send_with_id(MASTER, id, call);
    h.run_jobs();
    assert!(matches!(
        h.response(MASTER, id),
        Some(Ok(MetaReply::Committed { .. }))
    ));
    h.crash();
    assert!(h.get(tkey("b")).is_some());
}

#[test]
fn a_job_failed_by_the_host_is_a_disk_failure() {
    let mut h = Harness::new();
    let a = h.send(MASTER, put_table("a"));
    assert!(h.fail_one_job());
    assert_eq!(h.response(MASTER, a), Some(Err(MetaError::OutcomeUnknown)));
    h.run_jobs();
    assert!(h.store.is_serving());
    assert_eq!(h.get(tkey("a")), None, "the job never ran");
    h.call(MASTER, put_table("a")).expect("a again");
}

#[test]
fn snapshots_truncate_the_log_and_recovery_uses_them() {
    let cfg = MetaConfig {
        log_records_before_snapshot_max: 5,
        ..config()
    };
    let mut h = Harness::with(cfg.clone(), MemBackend::new());
    let mut max_log = 0;
    for i in 0..23 {
        h.call(MASTER, put_table(&format!("t{i}"))).expect("write");
        max_log = max_log.max(h.backend.log_bytes());
    }
    assert!(
        h.backend.snapshots_written() >= 3,
        "{}",
        h.backend.snapshots_written()
    );
    assert_eq!(h.store.counters().snapshots, h.backend.snapshots_written());
    let one = {
        let mut one = Vec::new();
        let rec = LogRecord {
            revision: 1,
            at: h.now,
            change: Change::Writes(vec![Write::Put(Record::Table(table("t10")))]),
            dedup: None,
        };
        codec::encode_frame(&rec, &mut one).expect("encode");
        one.len()
    };
    assert!(
        max_log < 8 * one,
        "the log stays short: {max_log} vs frame {one}"
    );
    let image = durable_image(&h);
    h.crash();
    assert_eq!(durable_image(&h), image);
    // A snapshot that fails is a disk failure like any other; writes go on afterwards.
    h.backend.fail_next_snapshots(1);
    for i in 0..6 {
        let _ = h.call(MASTER, put_table(&format!("u{i}")));
    }
    assert!(h.store.is_serving());
    h.call(MASTER, put_table("after"))
        .expect("write after a failed snapshot");
    let image = durable_image(&h);
    h.crash();
    assert_eq!(durable_image(&h), image);
}

#[test]
fn codec_round_trips_and_classifies_damage() {
    let rec = |revision| LogRecord {
        revision,
        at: crate::kernel::Time(revision),
        change: Change::Writes(vec![Write::Delete(tbkey(revision))]),
        dedup: None,
    };
    let mut log = Vec::new();
    for r in 1..=3 {
        codec::encode_frame(&rec(r), &mut log).expect("encode");
    }
    let all = codec::decode_log(&log).expect("decode");
    assert_eq!(all.records, vec![rec(1), rec(2), rec(3)]);
    assert_eq!(all.torn_tail_bytes, 0);
    // Every cut inside the last frame is a torn tail, never an error.
    let two = codec::decode_log(&log[..log.len() * 2 / 3])
        .expect("prefix")
        .records
        .len();
    for cut in (log.len() * 2 / 3)..log.len() {
        let d = codec::decode_log(&log[..cut]).expect("torn tail");
        assert_eq!(d.records.len(), two);
        assert_eq!(d.torn_tail_bytes as usize, cut - log.len() * 2 / 3);
    }
    // A flipped byte in the last frame is a torn tail; in an earlier frame, corruption.
    let mut bad = log.clone();
    let last = bad.len() - 1;
    bad[last] ^= 1;
    assert_eq!(codec::decode_log(&bad).expect("tail").records.len(), 2);
    let mut bad = log.clone();
    bad[10] ^= 1;
    assert!(matches!(
        codec::decode_log(&bad),
        Err(BackendError::Corrupt { .. })
    ));
    // Snapshots: round trip, and any damage is an error.
    let snap = MetaSnapshot {
        revision: 9,
        ..MetaSnapshot::default()
    };
    let bytes = codec::encode_snapshot(&snap).expect("encode");
    assert_eq!(codec::decode_snapshot(&bytes).expect("decode"), snap);
    for i in 0..bytes.len() {
        let mut b = bytes.clone();
        b[i] ^= 0x10;
        assert!(codec::decode_snapshot(&b).is_err(), "flip at {i} detected");
    }
    assert!(codec::decode_snapshot(&bytes[..bytes.len() - 1]).is_err());
}
