//! Recovery scenario: crashes while a tablet opens, which writes a fresh manifest and
//! switches CURRENT (write temp, sync, rename, sync dir), and while a long-lived tablet rolls
//! its manifest. Either the old or the new manifest is current; both describe the data.

mod common;

use common::crash::{enumerate, puts, Op};
use common::*;
use shale_storage::fs::FileStore;
use shale_storage::tablet::KeyRange;
use shale_storage::StorageResult;

#[test]
fn crash_at_every_step_of_reopen() -> StorageResult<()> {
    let mut ops = puts(6, 6, 2, 0);
    let reopen_at = ops.len();
    ops.push(Op::Reopen);
    ops.extend(puts(2, 2, 1, 0));
    ops.push(Op::Reopen);
    let (_, starts) = enumerate(&ops, 31)?;
    assert!(
        starts[reopen_at + 1] - starts[reopen_at] >= 5,
        "reopen switches CURRENT"
    );
    Ok(())
}

#[test]
fn manifest_rolls_and_reopens() -> StorageResult<()> {
    let fs = sim(3);
    let t = create(&fs, "t", 1, KeyRange::all())?;
    let mut model = Model::default();
    // Many small flushes grow the manifest past its 8 KiB limit several times.
    for i in 0..120u32 {
        put(&t, &row(i), b"a", b"q", 1, b"v", false)?;
        model.put(&row(i), b"a", b"q", 1, b"v");
        t.flush()?;
        while t.compact_step(0)? {}
    }
    let manifests = fs
        .list("t")?
        .into_iter()
        .filter(|n| n.starts_with("MANIFEST-"))
        .count();
    assert_eq!(manifests, 1, "old manifests are deleted after a roll");
    drop(t);
    fs.crash();
    let t = open(&fs, "t")?;
    assert_eq!(dump(&t)?, model.cells_in(&KeyRange::all()));
    Ok(())
}
