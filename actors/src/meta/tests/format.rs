//! Format versions of the byte codec (`codec.rs`): the current version round trips, a newer
//! build's snapshot or log is refused with the typed error (never decoded), data from before
//! format versions still loads, a torn header is an empty log, and the actor stops retrying
//! a load refused for its format.

use super::harness::*;
use crate::kernel::Time;
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
    let mut out = Vec::new();
    if let Some(version) = header {
        codec::encode_log_header_as(version, &mut out);
    }
    for r in revisions {
        codec::encode_frame(&rec(*r), &mut out).expect("encode");
    }
    out
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
