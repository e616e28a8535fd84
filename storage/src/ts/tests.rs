//! Partition files: ingest, cut at a size limit, publish with SUCCESS, range reads, and a
//! crash before SUCCESS leaving nothing visible.

use super::civil::{PartitionSlot, PartitionSpec};
use super::files::{part_name, SUCCESS_FILE};
use super::*;
use crate::fs::{join, FileStore, SimFs, SimFsConfig};

fn cols() -> Vec<(String, ColumnType)> {
    vec![
        ("v".into(), ColumnType::I64),
        ("name".into(), ColumnType::String),
    ]
}

fn rows(n: u64, start: u64) -> Vec<Row> {
    // Given in reverse order so the writer has to sort.
    (0..n)
        .rev()
        .map(|i| Row {
            timestamp_ms: start + i * 10,
            key: format!("k{}", i % 3).into_bytes(),
            values: vec![Value::I64(i as i64), Value::String(format!("row {i}"))],
        })
        .collect()
}

fn setup() -> (SimFs, String, (u64, u64)) {
    let fs = SimFs::new(SimFsConfig::default());
    let spec = PartitionSpec::new(24).unwrap_or_else(|e| panic!("{e}"));
    let slot = PartitionSlot {
        date: 20240301,
        index: 5,
    };
    let range = spec.range_ms(slot).unwrap_or_else(|e| panic!("{e}"));
    (fs, partition_dir("/ts", "metrics", 20240301, 5), range)
}

#[test]
fn ingest_cuts_parts_sorts_and_reads_ranges() {
    let (fs, dir, range) = setup();
    let opts = IngestOptions {
        part_size_bytes_max: 2_000,
        ..IngestOptions::default()
    };
    let published = write_partition(&fs, &dir, range, &cols(), rows(500, range.0), &opts)
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(
        published.parts.len() > 2,
        "cut at the size limit: {published:?}"
    );
    assert_eq!(published.parts[1], join(&dir, &part_name(1)));
    assert!(is_published(&fs, &dir));
    let all = read_partition(&fs, &dir, 0, u64::MAX, usize::MAX).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(all.len(), 500);
    assert!(all
        .windows(2)
        .all(|w| w[0].timestamp_ms < w[1].timestamp_ms));
    assert_eq!(
        all[7].values,
        vec![Value::I64(7), Value::String("row 7".into())]
    );
    // [from, to) in the middle, crossing part boundaries.
    let mid = read_partition(&fs, &dir, range.0 + 1_000, range.0 + 3_000, usize::MAX)
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(mid.len(), 200);
    assert_eq!(mid[0].timestamp_ms, range.0 + 1_000);
    let limited = read_partition(&fs, &dir, 0, u64::MAX, 3).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(limited.len(), 3);
    // Published partitions are immutable.
    assert!(matches!(
        write_partition(&fs, &dir, range, &cols(), rows(1, range.0), &opts),
        Err(TsError::AlreadyPublished(_))
    ));
}

#[test]
fn bad_rows_are_refused_before_anything_is_written() {
    let (fs, dir, range) = setup();
    let opts = IngestOptions::default();
    let mut bad = rows(3, range.0);
    bad[1].values[0] = Value::String("x".into());
    assert!(matches!(
        write_partition(&fs, &dir, range, &cols(), bad, &opts),
        Err(TsError::Value(ValueError::TypeMismatch { .. }))
    ));
    assert!(matches!(
        write_partition(&fs, &dir, range, &cols(), rows(1, range.1), &opts),
        Err(TsError::OutOfPartition { .. })
    ));
    assert!(!is_published(&fs, &dir));
}

#[test]
fn duplicate_sample_keys_keep_the_last() {
    let (fs, dir, range) = setup();
    let mk = |v| Row {
        timestamp_ms: range.0,
        key: b"a".to_vec(),
        values: vec![Value::I64(v), Value::Null],
    };
    write_partition(
        &fs,
        &dir,
        range,
        &cols(),
        vec![mk(1), mk(2)],
        &IngestOptions::default(),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let got = read_partition(&fs, &dir, 0, u64::MAX, 10).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].values[0], Value::I64(2));
}

#[test]
fn a_crash_before_success_leaves_no_partition_and_a_retry_publishes() {
    let (fs, dir, range) = setup();
    // Part files written and synced, SUCCESS never created: what a crash mid-ingest leaves.
    let path = join(&dir, &part_name(0));
    let mut f = fs.create(&path).unwrap_or_else(|e| panic!("{e}"));
    f.append(b"half a file").unwrap_or_else(|e| panic!("{e}"));
    f.sync().unwrap_or_else(|e| panic!("{e}"));
    fs.sync_dir(&dir).unwrap_or_else(|e| panic!("{e}"));
    fs.crash();
    assert!(!is_published(&fs, &dir));
    let empty = read_partition(&fs, &dir, 0, u64::MAX, 10).unwrap_or_else(|e| panic!("{e}"));
    assert!(
        empty.is_empty(),
        "readers never see a partition without SUCCESS"
    );
    write_partition(
        &fs,
        &dir,
        range,
        &cols(),
        rows(10, range.0),
        &IngestOptions::default(),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    fs.crash();
    assert!(fs.exists(&join(&dir, SUCCESS_FILE)), "SUCCESS is durable");
    let got = read_partition(&fs, &dir, 0, u64::MAX, 100).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        got.len(),
        10,
        "the leftover part was replaced, every row survives a crash"
    );
}
