//! Basic tablet behaviour: writes, gets, scans both ways, tombstones, locality groups, range
//! checks, flush and compaction keeping data intact.

mod common;

use common::*;
use shale_storage::read::{ColumnFilter, ReadOptions};
use shale_storage::tablet::{KeyRange, ScanRequest};
use shale_storage::wal::WriteBatch;
use shale_storage::{StorageError, StorageResult};

#[test]
fn put_get_scan_delete_across_flush_and_compaction() -> StorageResult<()> {
    let fs = sim(1);
    let t = create(&fs, "t1", 1, KeyRange::all())?;
    let mut model = Model::default();
    for i in 0..300u32 {
        let r = row(i % 97);
        let fam: &[u8] = if i % 3 == 0 { b"b" } else { b"a" };
        let v = format!("value-{i}").into_bytes();
        put(&t, &r, fam, b"q", u64::from(i), &v, i % 10 == 0)?;
        model.put(&r, fam, b"q", u64::from(i), &v);
        if i % 50 == 49 {
            while t.compact_step(0)? {}
        }
    }
    let mut b = WriteBatch::new();
    b.delete_row(&row(5), 1000);
    b.delete_column(&row(6), b"a", b"q", 150);
    b.delete_family(&row(7), b"b", 1000);
    b.delete_version(&row(8), b"a", b"q", 8 + 97);
    t.write(&b, true)?;
    model.delete_row(&row(5), 1000);
    model.delete_column(&row(6), b"a", b"q", 150);
    model.delete_family(&row(7), b"b", 1000);
    model.delete_version(&row(8), b"a", b"q", 8 + 97);
    assert!(
        t.stats().flushes > 0 && t.stats().compactions > 0,
        "{:?}",
        t.stats()
    );
    for round in 0..2 {
        assert_eq!(dump(&t)?, model.cells_in(&KeyRange::all()), "round {round}");
        for i in [0u32, 5, 6, 7, 8, 96] {
            let want: Vec<_> = model
                .cells_in(&KeyRange::all())
                .into_iter()
                .filter(|c| c.row == row(i))
                .collect();
            assert_eq!(t.get(&row(i), &all_versions())?, want, "row {i}");
        }
        t.flush()?;
        while t.compact_step(0)? {}
    }
    // Reverse scan with a limit returns the last rows, highest first.
    let req = ScanRequest {
        reverse: true,
        row_limit: 3,
        ..ScanRequest::default()
    };
    let res = t.scan(&req)?;
    let rows: Vec<_> = res.rows.iter().map(|r| r.0.clone()).collect();
    assert_eq!(rows, vec![row(96), row(95), row(94)]);
    assert!(res.limit_reached);
    // Only family b: served from the "cold" locality group alone.
    let opts = ReadOptions {
        columns: vec![ColumnFilter::Family(b"b".to_vec())],
        ..ReadOptions::default()
    };
    let got = t.get(&row(3), &opts)?;
    assert!(!got.is_empty() && got.iter().all(|c| c.family == b"b"));
    Ok(())
}

#[test]
fn keys_outside_the_range_are_refused() -> StorageResult<()> {
    let fs = sim(2);
    let t = create(&fs, "t", 1, KeyRange::new("m", "p"))?;
    assert_eq!(
        put(&t, b"a", b"a", b"q", 1, b"v", false),
        Err(StorageError::KeyNotInRange)
    );
    assert_eq!(
        put(&t, b"p", b"a", b"q", 1, b"v", false),
        Err(StorageError::KeyNotInRange)
    );
    put(&t, b"m", b"a", b"q", 1, b"v", false)?;
    assert_eq!(
        t.get(b"z", &all_versions()),
        Err(StorageError::KeyNotInRange)
    );
    let req = ScanRequest {
        start: b"q".to_vec(),
        row_limit: 5,
        ..ScanRequest::default()
    };
    assert_eq!(t.scan(&req), Err(StorageError::KeyNotInRange));
    assert!(matches!(
        put(&t, b"m", b"nope", b"q", 1, b"v", false),
        Err(StorageError::InvalidArgument(_))
    ));
    Ok(())
}
