//! FsBackend over SimFs: round trips, crashes before and after sync, torn tails, snapshots,
//! a crash at every mutating file operation of a workload, and format versions (headers,
//! files from before them, a newer build's files refused untouched, torn headers).

use super::FsBackend;
use crate::kernel::Time;
use crate::meta::codec::{self, META_FORMAT_VERSION};
use crate::meta::state::{Change, LogRecord, MetaSnapshot};
use crate::meta::tests::harness::log_image;
use crate::meta::{BackendError, MetaBackend};
use shale_storage::fs::{FileStore, SimFs, SimFsConfig};
use std::sync::Arc;

fn rec(revision: u64) -> LogRecord {
    LogRecord {
        revision,
        at: Time(revision),
        change: Change::Lease(None),
        dedup: None,
    }
}

fn revisions(records: &[LogRecord]) -> Vec<u64> {
    records.iter().map(|r| r.revision).collect()
}

fn backend(fs: &SimFs) -> FsBackend {
    FsBackend::new(Arc::new(fs.clone()) as Arc<dyn FileStore>, "meta")
}

#[test]
fn a_new_folder_loads_empty_and_records_round_trip() {
    let fs = SimFs::new(SimFsConfig::default());
    let b = backend(&fs);
    let loaded = b.load().expect("load");
    assert!(loaded.snapshot.is_none());
    assert!(loaded.records.is_empty());
    b.append(&[rec(1), rec(2)]).expect("append");
    b.append(&[rec(3)]).expect("append");
    b.sync().expect("sync");
    let again = backend(&fs).load().expect("reload");
    assert_eq!(revisions(&again.records), vec![1, 2, 3]);
    assert_eq!(again.torn_tail_bytes, 0);
}

#[test]
fn appends_before_load_are_refused_not_lost_silently() {
    let fs = SimFs::new(SimFsConfig::default());
    let b = backend(&fs);
    assert!(matches!(b.append(&[rec(1)]), Err(BackendError::Io(_))));
    assert!(matches!(b.sync(), Err(BackendError::Io(_))));
}

#[test]
fn a_crash_loses_exactly_the_unsynced_records() {
    let fs = SimFs::new(SimFsConfig::default());
    let b = backend(&fs);
    b.load().expect("load");
    b.append(&[rec(1), rec(2)]).expect("append");
    b.sync().expect("sync");
    b.append(&[rec(3)]).expect("append");
    fs.crash();
    let b = backend(&fs);
    assert_eq!(revisions(&b.load().expect("load").records), vec![1, 2]);
    // Appends after the restart follow the last whole record.
    b.append(&[rec(3)]).expect("append");
    b.sync().expect("sync");
    assert_eq!(
        revisions(&backend(&fs).load().expect("load").records),
        vec![1, 2, 3]
    );
}

#[test]
fn a_torn_tail_is_cut_and_later_appends_stay_readable() {
    for seed in 0..20 {
        let fs = SimFs::new(SimFsConfig {
            seed,
            torn_writes: true,
            ..SimFsConfig::default()
        });
        let b = backend(&fs);
        b.load().expect("load");
        b.append(&[rec(1)]).expect("append");
        b.sync().expect("sync");
        b.append(&[rec(2), rec(3)]).expect("append");
        fs.crash();
        let b = backend(&fs);
        let loaded = b.load().expect("load after torn crash");
        let got = revisions(&loaded.records);
        assert!(
            got.starts_with(&[1]) && got.len() <= 3,
            "seed {seed}: {got:?}"
        );
        let next = got.len() as u64 + 1;
        b.append(&[rec(next)]).expect("append");
        b.sync().expect("sync");
        let after = backend(&fs).load().expect("reload");
        assert_eq!(after.torn_tail_bytes, 0, "seed {seed}");
        assert_eq!(
            revisions(&after.records),
            (1..=next).collect::<Vec<_>>(),
            "seed {seed}"
        );
    }
}

#[test]
fn a_snapshot_replaces_the_records_it_covers() {
    let fs = SimFs::new(SimFsConfig::default());
    let b = backend(&fs);
    b.load().expect("load");
    b.append(&[rec(1), rec(2), rec(3), rec(4)]).expect("append");
    b.sync().expect("sync");
    b.write_snapshot(&MetaSnapshot {
        revision: 3,
        ..MetaSnapshot::default()
    })
    .expect("snapshot");
    b.append(&[rec(5)]).expect("append");
    b.sync().expect("sync");
    let loaded = backend(&fs).load().expect("reload");
    assert_eq!(loaded.snapshot.map(|s| s.revision), Some(3));
    assert_eq!(revisions(&loaded.records), vec![4, 5]);
    let logs = fs
        .all_files()
        .into_iter()
        .filter(|p| p.starts_with("meta/log-"))
        .count();
    assert_eq!(
        logs,
        1,
        "older generations are deleted: {:?}",
        fs.all_files()
    );
}

#[test]
fn a_damaged_record_before_the_end_is_corruption() {
    let fs = SimFs::new(SimFsConfig::default());
    let b = backend(&fs);
    b.load().expect("load");
    b.append(&[rec(1), rec(2), rec(3)]).expect("append");
    b.sync().expect("sync");
    let log = fs
        .all_files()
        .into_iter()
        .find(|p| p.starts_with("meta/log-"))
        .expect("a log file");
    // Inside the first record's payload, past the file's format header.
    fs.corrupt_byte(&log, codec::FORMAT_HEADER_BYTES as u64 + 10)
        .expect("corrupt");
    assert!(matches!(
        backend(&fs).load(),
        Err(BackendError::Corrupt { .. })
    ));
}

/// The workload whose every crash point is checked: returns the highest revision whose sync
/// (or snapshot) returned Ok before the disk halted.
fn workload(b: &FsBackend) -> u64 {
    let mut acked = 0;
    if b.load().is_err() {
        return acked;
    }
    for (batch, snapshot_at) in [
        (vec![1, 2], None),
        (vec![3], Some(2)),
        (vec![4, 5], Some(5)),
        (vec![6], None),
    ] {
        let records: Vec<LogRecord> = batch.iter().map(|r| rec(*r)).collect();
        if b.append(&records).is_err() || b.sync().is_err() {
            return acked;
        }
        acked = *batch.last().unwrap_or(&acked);
        if let Some(revision) = snapshot_at {
            if b.write_snapshot(&MetaSnapshot {
                revision,
                ..MetaSnapshot::default()
            })
            .is_err()
            {
                return acked;
            }
        }
    }
    acked
}

#[test]
fn a_crash_at_any_mutating_operation_keeps_every_acknowledged_record() {
    let probe = SimFs::new(SimFsConfig::default());
    assert_eq!(workload(&backend(&probe)), 6);
    let ops = probe.stats().mutating_ops;
    assert!(
        ops > 20,
        "the workload exercises many file operations ({ops})"
    );
    for k in 0..=ops {
        for torn in [false, true] {
            let fs = SimFs::new(SimFsConfig {
                seed: k,
                torn_writes: torn,
                ..SimFsConfig::default()
            });
            fs.halt_after_mutating_ops(Some(k));
            let acked = workload(&backend(&fs));
            fs.crash();
            let loaded = backend(&fs)
                .load()
                .unwrap_or_else(|e| panic!("crash at op {k}: load failed: {e}"));
            let from = loaded.snapshot.as_ref().map_or(0, |s| s.revision);
            // Records the snapshot already covers may remain (a crash between the snapshot's
            // rename and the log rewrite); `Loaded` allows them and recovery skips them.
            let all = revisions(&loaded.records);
            assert!(
                all.windows(2).all(|w| w[0] < w[1]),
                "crash at op {k}: {all:?}"
            );
            let got: Vec<u64> = all.into_iter().filter(|r| *r > from).collect();
            let expected: Vec<u64> = (from + 1..=from + got.len() as u64).collect();
            assert_eq!(
                got, expected,
                "crash at op {k}: records follow the snapshot without gaps"
            );
            let durable = from + got.len() as u64;
            assert!(
                durable >= acked,
                "crash at op {k}: acked {acked}, durable {durable}"
            );
            assert!(durable <= 6, "crash at op {k}: nothing invented");
        }
    }
}

// Format versions (`codec.rs`): every file says which encoding it holds.

/// Write `bytes` to `name` under the backend's folder, durably.
fn put_file(fs: &SimFs, name: &str, bytes: &[u8]) {
    let path = format!("meta/{name}");
    let mut w = fs.create(&path).expect("create");
    w.append(bytes).expect("append");
    w.sync().expect("sync");
    fs.sync_dir("meta").expect("sync dir");
}

fn file(fs: &SimFs, path: &str) -> Vec<u8> {
    let f = fs.open(path).expect("open");
    let mut buf = vec![0u8; f.len() as usize];
    f.read_at(0, &mut buf).expect("read");
    buf
}

/// Every file and its bytes: what a refused load must leave exactly as it was.
fn image(fs: &SimFs) -> Vec<(String, Vec<u8>)> {
    fs.all_files()
        .into_iter()
        .map(|p| {
            let bytes = file(fs, &p);
            (p, bytes)
        })
        .collect()
}

fn log_bytes(header: Option<u32>, revisions: &[u64]) -> Vec<u8> {
    log_image(header, revisions.iter().map(|r| rec(*r)))
}

fn log_files(fs: &SimFs) -> Vec<String> {
    fs.all_files()
        .into_iter()
        .filter(|p| p.starts_with("meta/log-"))
        .collect()
}

#[test]
fn every_log_file_starts_with_the_current_format_header() {
    let fs = SimFs::new(SimFsConfig::default());
    let b = backend(&fs);
    b.load().expect("load");
    b.append(&[rec(1), rec(2)]).expect("append");
    b.sync().expect("sync");
    b.write_snapshot(&MetaSnapshot {
        revision: 1,
        ..MetaSnapshot::default()
    })
    .expect("snapshot");
    for path in log_files(&fs).into_iter().chain(["meta/snapshot".into()]) {
        let bytes = file(&fs, &path);
        let version = if path.ends_with("snapshot") {
            codec::peek_snapshot_version(&bytes)
        } else {
            codec::peek_log_version(&bytes)
        };
        assert_eq!(version, Ok(Some(META_FORMAT_VERSION)), "{path}");
    }
    assert_eq!(b.check_format(), Ok(()));
    let loaded = backend(&fs).load().expect("reload");
    assert_eq!(loaded.snapshot.map(|s| s.revision), Some(1));
    assert_eq!(revisions(&loaded.records), vec![2]);
}

#[test]
fn files_from_before_format_versions_still_load_and_are_rewritten_with_a_header() {
    let fs = SimFs::new(SimFsConfig::default());
    let snap = MetaSnapshot {
        revision: 2,
        ..MetaSnapshot::default()
    };
    put_file(
        &fs,
        "snapshot",
        &codec::encode_legacy_snapshot(&snap).expect("encode"),
    );
    put_file(
        &fs,
        "log-00000000000000000003",
        &log_bytes(None, &[1, 2, 3, 4]),
    );
    let b = backend(&fs);
    assert_eq!(b.check_format(), Ok(()));
    let loaded = b
        .load()
        .expect("load a SHALEMS1 snapshot and a header-less log");
    assert_eq!(loaded.snapshot, Some(snap));
    assert_eq!(revisions(&loaded.records), vec![1, 2, 3, 4]);
    // The load moved the records into a new generation, which has the header.
    let logs = log_files(&fs);
    assert_eq!(logs, vec!["meta/log-00000000000000000004".to_string()]);
    assert_eq!(
        codec::peek_log_version(&file(&fs, &logs[0])),
        Ok(Some(META_FORMAT_VERSION))
    );
    b.append(&[rec(5)]).expect("append");
    b.sync().expect("sync");
    assert_eq!(
        revisions(&backend(&fs).load().expect("reload").records),
        vec![1, 2, 3, 4, 5]
    );
}

#[test]
fn a_snapshot_from_a_newer_build_is_refused_and_nothing_is_touched() {
    let fs = SimFs::new(SimFsConfig::default());
    let snap = MetaSnapshot {
        revision: 2,
        ..MetaSnapshot::default()
    };
    put_file(
        &fs,
        "snapshot",
        &codec::encode_snapshot_as(&snap, META_FORMAT_VERSION + 1).expect("encode"),
    );
    put_file(
        &fs,
        "log-00000000000000000001",
        &log_bytes(Some(META_FORMAT_VERSION), &[3, 4]),
    );
    put_file(&fs, "log-00000000000000000002.tmp", b"left by a crash");
    let before = image(&fs);
    let refused = Err(BackendError::UnsupportedFormat {
        what: "meta snapshot",
        found: META_FORMAT_VERSION + 1,
        supported: META_FORMAT_VERSION,
    });
    let b = backend(&fs);
    assert_eq!(b.check_format(), refused);
    assert_eq!(b.load().map(|l| l.records.len()), refused.map(|()| 0));
    assert_eq!(image(&fs), before, "a refused load changes no file");
    assert!(matches!(b.append(&[rec(5)]), Err(BackendError::Io(_))));
}

#[test]
fn a_log_from_a_newer_build_is_refused_and_nothing_is_touched() {
    let fs = SimFs::new(SimFsConfig::default());
    put_file(
        &fs,
        "log-00000000000000000001",
        &log_bytes(Some(META_FORMAT_VERSION), &[1, 2]),
    );
    put_file(
        &fs,
        "log-00000000000000000002",
        &log_bytes(Some(META_FORMAT_VERSION + 1), &[1, 2, 3]),
    );
    let before = image(&fs);
    let refused = Err(BackendError::UnsupportedFormat {
        what: "meta log",
        found: META_FORMAT_VERSION + 1,
        supported: META_FORMAT_VERSION,
    });
    let b = backend(&fs);
    assert_eq!(b.check_format(), refused);
    assert_eq!(b.load().map(|l| l.records.len()), refused.map(|()| 0));
    assert_eq!(image(&fs), before, "a refused load changes no file");
}

#[test]
fn a_torn_header_on_a_fresh_log_file_is_an_empty_log() {
    let header = log_bytes(Some(META_FORMAT_VERSION), &[]);
    for cut in 0..header.len() {
        // The only generation, torn inside its header: nothing was ever in it.
        let fs = SimFs::new(SimFsConfig::default());
        put_file(&fs, "log-00000000000000000001", &header[..cut]);
        let b = backend(&fs);
        let loaded = b
            .load()
            .unwrap_or_else(|e| panic!("cut {cut}: a torn header is not an error: {e}"));
        assert!(loaded.records.is_empty(), "cut {cut}");
        assert_eq!(loaded.torn_tail_bytes, cut as u64, "cut {cut}");
        b.append(&[rec(1)]).expect("append");
        b.sync().expect("sync");
        assert_eq!(
            revisions(&backend(&fs).load().expect("reload").records),
            vec![1],
            "cut {cut}"
        );

        // A newer generation being written over an older one (a crash while `load` or a
        // snapshot started it): the older one still holds every record.
        let fs = SimFs::new(SimFsConfig::default());
        put_file(
            &fs,
            "log-00000000000000000001",
            &log_bytes(Some(META_FORMAT_VERSION), &[1, 2, 3]),
        );
        put_file(&fs, "log-00000000000000000002", &header[..cut]);
        let loaded = backend(&fs)
            .load()
            .unwrap_or_else(|e| panic!("cut {cut}: {e}"));
        assert_eq!(revisions(&loaded.records), vec![1, 2, 3], "cut {cut}");
    }
}
