//! Format versions of the byte codec (`codec.rs`): the current version round trips, a newer
//! build's snapshot or log is refused with the typed error (never decoded), data from before
//! format versions still loads, a torn header is an empty log, and the actor stops retrying
//! a load refused for its format.

use super::harness::*;
use crate::kernel::{NodeId, Time};
use crate::meta::codec::{self, FORMAT_HEADER_BYTES, META_FORMAT_VERSION};
use crate::meta::*;
use std::time::Duration;

fn rec(revision: u64) -> LogRecord {
    LogRecord {
        revision,
        at: Time(revision),
        change: Change::Writes(vec![Write::Delete(tbkey(revision))]),
        dedup: None,
    }
}

fn snap(revision: u64) -> MetaSnapshot {
    let mut s = MetaSnapshot {
        revision,
        ..MetaSnapshot::default()
    };
    s.tables.insert(
        "t".into(),
        Versioned {
            version: 3,
            value: table("t"),
        },
    );
    s
}

fn log(header: Option<u32>, revisions: &[u64]) -> Vec<u8> {
    log_image(header, revisions.iter().map(|r| rec(*r)))
}

fn newer() -> BackendError {
    BackendError::UnsupportedFormat {
        what: "meta log",
        found: META_FORMAT_VERSION + 1,
        supported: META_FORMAT_VERSION,
    }
}

#[test]
fn the_current_version_round_trips() {
    let mut bytes = Vec::new();
    codec::encode_log_header(&mut bytes);
    assert_eq!(bytes, log(Some(META_FORMAT_VERSION), &[]));
    assert_eq!(bytes.len(), FORMAT_HEADER_BYTES);
    for r in 1..=3 {
        codec::encode_frame(&rec(r), &mut bytes).expect("encode");
    }
    assert_eq!(
        codec::peek_log_version(&bytes[..FORMAT_HEADER_BYTES]),
        Ok(Some(META_FORMAT_VERSION))
    );
    let d = codec::decode_log(&bytes).expect("decode");
    assert_eq!(d.records, vec![rec(1), rec(2), rec(3)]);
    assert_eq!(d.torn_tail_bytes, 0);
    assert_eq!(d.format_version, META_FORMAT_VERSION);

    let s = codec::encode_snapshot(&snap(9)).expect("encode");
    assert!(
        !s.starts_with(b"SHALEMS1"),
        "new snapshots carry the header"
    );
    assert_eq!(
        codec::peek_snapshot_version(&s[..FORMAT_HEADER_BYTES]),
        Ok(Some(META_FORMAT_VERSION))
    );
    assert_eq!(codec::decode_snapshot(&s), Ok(snap(9)));
}

#[test]
fn a_snapshot_from_a_newer_build_is_refused_with_the_typed_error() {
    let refused = BackendError::UnsupportedFormat {
        what: "meta snapshot",
        found: META_FORMAT_VERSION + 1,
        supported: META_FORMAT_VERSION,
    };
    let s = codec::encode_snapshot_as(&snap(9), META_FORMAT_VERSION + 1).expect("encode");
    assert_eq!(codec::decode_snapshot(&s), Err(refused.clone()));
    assert_eq!(codec::peek_snapshot_version(&s), Err(refused));
    // Refused from the header alone: the body is never decoded, whatever it holds.
    let mut garbage = s[..FORMAT_HEADER_BYTES].to_vec();
    garbage.extend_from_slice(&[0xff; 40]);
    assert!(matches!(
        codec::decode_snapshot(&garbage),
        Err(BackendError::UnsupportedFormat { found, .. }) if found == META_FORMAT_VERSION + 1
    ));
    let message = codec::decode_snapshot(&s).err().map(|e| e.to_string());
    assert!(
        message
            .as_deref()
            .is_some_and(|m| m.contains("newer than this build supports")),
        "{message:?}"
    );
    // Version 0 is never written: damage, not a format.
    let zero = codec::encode_snapshot_as(&snap(9), 0).expect("encode");
    assert!(matches!(
        codec::decode_snapshot(&zero),
        Err(BackendError::Corrupt { .. })
    ));
}

#[test]
fn a_log_from_a_newer_build_is_refused_with_the_typed_error() {
    let future = log(Some(META_FORMAT_VERSION + 1), &[1, 2, 3]);
    assert_eq!(codec::decode_log(&future).map(|d| d.records), Err(newer()));
    assert_eq!(codec::peek_log_version(&future), Err(newer()));
    // Even with no records yet: the file is still a newer build's.
    let empty = log(Some(META_FORMAT_VERSION + 1), &[]);
    assert_eq!(codec::decode_log(&empty).map(|d| d.records), Err(newer()));
}

#[test]
fn data_from_before_format_versions_still_loads_as_version_1() {
    // A log file without a header, as every build before format versions wrote it.
    let legacy = log(None, &[1, 2, 3]);
    assert_eq!(codec::peek_log_version(&legacy), Ok(None));
    let d = codec::decode_log(&legacy).expect("decode");
    assert_eq!(d.records, vec![rec(1), rec(2), rec(3)]);
    assert_eq!(d.format_version, 1);
    // A `SHALEMS1` snapshot: the magic, then one frame.
    let s = codec::encode_legacy_snapshot(&snap(9)).expect("encode");
    assert!(s.starts_with(b"SHALEMS1"));
    assert_eq!(codec::peek_snapshot_version(&s), Ok(Some(1)));
    assert_eq!(codec::decode_snapshot(&s), Ok(snap(9)));
}

#[test]
fn a_record_is_never_mistaken_for_a_header() {
    // A header's payload is 12 bytes; the smallest record is longer, so a log without a
    // header can never start with something that reads as one.
    let smallest = LogRecord {
        revision: 0,
        at: Time(0),
        change: Change::Lease(None),
        dedup: None,
    };
    let mut frame = Vec::new();
    codec::encode_frame(&smallest, &mut frame).expect("encode");
    assert!(frame.len() > FORMAT_HEADER_BYTES, "{}", frame.len());
}

#[test]
fn a_torn_or_damaged_header_alone_is_an_empty_log() {
    let header = log(Some(META_FORMAT_VERSION), &[]);
    // Every cut of a freshly created file's header: a torn tail, no records, no error.
    for cut in 0..=header.len() {
        let d = codec::decode_log(&header[..cut]).unwrap_or_else(|e| panic!("cut {cut}: {e}"));
        assert!(d.records.is_empty(), "cut {cut}");
        let torn = if cut == header.len() { 0 } else { cut as u64 };
        assert_eq!(d.torn_tail_bytes, torn, "cut {cut}");
    }
    // A damaged header with nothing after it is a torn tail too ...
    for i in 0..header.len() {
        let mut bad = header.clone();
        bad[i] ^= 0x10;
        let d = codec::decode_log(&bad).unwrap_or_else(|e| panic!("flip at {i}: {e}"));
        assert!(d.records.is_empty(), "flip at {i}");
    }
    // ... but with records after it, corruption: dropping them would lose acknowledged writes.
    let full = log(Some(META_FORMAT_VERSION), &[1, 2]);
    for i in 8..FORMAT_HEADER_BYTES {
        let mut bad = full.clone();
        bad[i] ^= 0x10;
        assert!(
            matches!(codec::decode_log(&bad), Err(BackendError::Corrupt { .. })),
            "flip at {i}"
        );
    }
}

#[test]
fn the_store_refuses_a_newer_builds_data_once_and_stays_unavailable() {
    let mut h = Harness::new();
    h.call(
        MASTER,
        MetaCall::Txn(Txn::new().op(Op::PutTable(table("a")))),
    )
    .expect("write");
    let future = codec::encode_snapshot_as(&snap(1), META_FORMAT_VERSION + 1).expect("encode");
    h.backend.replace_snapshot_bytes(future);
    assert!(matches!(
        h.backend.check_format(),
        Err(BackendError::UnsupportedFormat { .. })
    ));
    h.restart();
    assert!(!h.store.is_serving());
    assert!(matches!(
        h.store.refused(),
        Some(BackendError::UnsupportedFormat { found, supported, .. })
            if *found == META_FORMAT_VERSION + 1 && *supported == META_FORMAT_VERSION
    ));
    let r = h.send(MASTER, MetaCall::Get(tkey("a")));
    assert_eq!(h.response(MASTER, r), Some(Err(MetaError::Unavailable)));
    // No retry loop: time passes, no load runs again.
    let failures = h.store.counters().disk_failures;
    h.advance(Duration::from_secs(5));
    assert_eq!(h.jobs_queued(), 0);
    assert_eq!(h.store.counters().disk_failures, failures);
    assert!(!h.store.is_serving());
    // Data this build reads (here an empty snapshot from before format versions, then the
    // log) serves again after a restart, the write included.
    let legacy = codec::encode_legacy_snapshot(&MetaSnapshot::default()).expect("encode");
    h.backend.replace_snapshot_bytes(legacy);
    h.restart();
    assert!(h.store.is_serving());
    assert!(h.store.refused().is_none());
    assert!(h.get(tkey("a")).is_some());
}

/// The bytes of every persisted type, pinned. A store that has seen every kind of record and
/// change (nodes, the master lease, tables, tablets, procedures, stat rows, retried-request
/// answers, and the time-series catalog's ids, tables, partitions and storage reports) is
/// encoded as a snapshot and as log records, and the CRC-32C of those bytes must not move.
///
/// If this fails, a persisted type's encoding changed: data written by earlier builds would
/// misdecode. Bump `META_FORMAT_VERSION`, give the older version a migration or a refusal
/// (see `codec.rs` and `docs/operations.md`), then update the constants below.
#[test]
fn the_persisted_encoding_is_pinned() {
    let mut h = Harness::new();
    h.call(
        NodeId(11),
        MetaCall::RegisterNode {
            name: "n11".into(),
            addr: crate::kernel::Addr("h:11".into()),
            total_disk_bytes: 1 << 30,
        },
    )
    .expect("register");
    h.call(
        MASTER,
        MetaCall::AcquireMasterLease {
            addr: crate::kernel::Addr("h:1".into()),
        },
    )
    .expect("lease");
    h.txn(
        MASTER,
        Txn::new()
            .op(Op::PutTable(table("t")))
            .op(Op::PutTablet(tablet(5, "t", "", "m")))
            .op(Op::PutTablet(tablet(6, "t", "m", "")))
            .op(Op::PutProcedure(procedure(3, ProcedureKind::Split)))
            .op(Op::PutStat(stat(StatSubject::Tablet(TabletId(5)), 1)))
            .op(Op::PutStat(stat(StatSubject::Node(NodeId(11)), 1))),
    )
    .expect("records");
    h.txn(
        MASTER,
        Txn::new()
            .op(Op::DeleteTablet(TabletId(6)))
            .op(Op::PutTablet(tablet(7, "t", "m", ""))),
    )
    .expect("a delete");
    h.call(
        MASTER,
        MetaCall::InsertTableInfo {
            table: "cpu".into(),
            partition_count_per_day: 2,
            columns: vec![catalog::ColumnSpec {
                name: "v".into(),
                column_type: shale_storage::ts::ColumnType::F64,
                index: 0,
                comment: "reading".into(),
            }],
        },
    )
    .expect("ts table");
    h.call(
        MASTER,
        MetaCall::GetPartitionInfos {
            table: "cpu".into(),
            timestamp_ms: 1_714_557_600_000,
            create: true,
        },
    )
    .expect("partitions");
    h.call(
        MASTER,
        MetaCall::ReportStorage {
            node: NodeId(11),
            used_disk_bytes: 12_345,
        },
    )
    .expect("storage");
    h.call(MASTER, MetaCall::IdOf { key: "k".into() })
        .expect("id");
    h.run_jobs();
    let snap = h.store.state().snapshot().clone();
    for (what, empty) in [
        ("tables", snap.tables.is_empty()),
        ("tablets", snap.tablets.is_empty()),
        ("nodes", snap.nodes.is_empty()),
        ("procedures", snap.procedures.is_empty()),
        ("stats", snap.stats.is_empty()),
        ("lease", snap.master_lease.is_none()),
        ("dedup", snap.dedup.is_empty()),
        ("ids", snap.ids.is_empty()),
        ("ts tables", snap.ts_tables.is_empty()),
        ("partitions", snap.partitions.is_empty()),
        ("storage", snap.storage.is_empty()),
    ] {
        assert!(!empty, "the pinned snapshot has {what}");
    }
    let snapshot_bytes = codec::encode_snapshot(&snap).expect("encode snapshot");
    let loaded = h.backend.load().expect("load the log");
    let mut log_bytes = Vec::new();
    let mut kinds = std::collections::BTreeSet::new();
    for r in &loaded.records {
        kinds.insert(match &r.change {
            Change::Writes(_) => "writes",
            Change::Lease(_) => "lease",
            Change::Catalog(_) => "catalog",
        });
        log_bytes.extend(codec::encode_record(r).expect("encode record"));
    }
    assert_eq!(kinds.len(), 3, "every kind of change is in the pinned log");
    assert!(loaded.records.iter().any(|r| r.dedup.is_some()));
    assert_eq!(
        (snapshot_bytes.len(), crc32c::crc32c(&snapshot_bytes)),
        (PINNED_SNAPSHOT_BYTES, PINNED_SNAPSHOT_CRC),
        "the snapshot encoding changed: bump META_FORMAT_VERSION (see this test's doc)"
    );
    assert_eq!(
        (log_bytes.len(), crc32c::crc32c(&log_bytes)),
        (PINNED_LOG_BYTES, PINNED_LOG_CRC),
        "the log record encoding changed: bump META_FORMAT_VERSION (see this test's doc)"
    );
}

const PINNED_SNAPSHOT_BYTES: usize = 1299;
const PINNED_SNAPSHOT_CRC: u32 = 1660796659;
const PINNED_LOG_BYTES: usize = 1424;
const PINNED_LOG_CRC: u32 = 1775496967;
