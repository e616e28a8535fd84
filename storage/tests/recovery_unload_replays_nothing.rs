//! Recovery scenario: `unload` flushes, syncs and retires the WAL, so loading the tablet
//! elsewhere (here: opening the same directory through another handle) replays nothing,
//! even after a crash right after the unload.

mod common;

use common::crash::{enumerate, puts, Op};
use common::*;
use shale_storage::fs::FileStore;
use shale_storage::tablet::KeyRange;
use shale_storage::{StorageError, StorageResult};

#[test]
fn load_after_unload_replays_nothing() -> StorageResult<()> {
    let fs = sim(4);
    let t = create(&fs, "t", 9, KeyRange::all())?;
    let mut model = Model::default();
    for i in 0..40u32 {
        put(&t, &row(i), b"b", b"q", u64::from(i), b"val", false)?;
        model.put(&row(i), b"b", b"q", u64::from(i), b"val");
    }
    t.unload()?;
    assert!(
        fs.list("t")?.iter().all(|n| !n.ends_with(".wal")),
        "no WAL remains"
    );
    fs.crash();
    let t2 = open(&fs, "t")?;
    assert_eq!(t2.stats().replayed_batches, 0);
    assert_eq!(t2.stats().replayed_wal_files, 0);
    assert_eq!(dump(&t2)?, model.cells_in(&KeyRange::all()));
    Ok(())
}

#[test]
fn crash_at_every_step_of_unload() -> StorageResult<()> {
    let mut ops = puts(8, 8, 3, 2);
    ops.push(Op::Unload);
    ops.extend(puts(2, 2, 1, 0));
    enumerate(&ops, 41)?;
    Ok(())
}

#[test]
fn closed_after_split_or_unload() -> StorageResult<()> {
    let fs = sim(6);
    let t = create(&fs, "t", 1, KeyRange::all())?;
    put(&t, b"m", b"a", b"q", 1, b"v", true)?;
    t.split(
        b"m",
        (shale_storage::tablet::TabletId(2), "l"),
        (shale_storage::tablet::TabletId(3), "r"),
    )?;
    assert_eq!(
        put(&t, b"a", b"a", b"q", 1, b"v", true),
        Err(StorageError::Closed)
    );
    assert_eq!(t.get(b"a", &all_versions()), Err(StorageError::Closed));
    Ok(())
}
