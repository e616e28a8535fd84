//! Recovery scenario: the machine dies at every I/O step of a split (the flush before it,
//! each child's manifest and CURRENT switch). Afterwards either both children open and
//! together hold exactly the parent's data, or a child is missing and the parent still opens
//! with all of it (the split is retried).

mod common;

use common::*;
use shale_storage::fs::{FsError, SimFs};
use shale_storage::tablet::{KeyRange, Tablet, TabletId};
use shale_storage::{StorageError, StorageResult};

fn workload(fs: &SimFs, model: &mut Model) -> StorageResult<()> {
    let t = create(fs, "p", 1, KeyRange::all())?;
    for i in 0..30u32 {
        let r = row(i * 7 % 30);
        put(
            &t,
            &r,
            if i % 4 == 0 { b"b" } else { b"a" },
            b"q",
            u64::from(i),
            b"value",
            true,
        )?;
        model.put(
            &r,
            if i % 4 == 0 { b"b" } else { b"a" },
            b"q",
            u64::from(i),
            b"value",
        );
        if i == 15 {
            t.flush()?;
        }
    }
    t.split(&row(12), (TabletId(2), "l"), (TabletId(3), "r"))
}

fn opened(fs: &SimFs, dir: &str) -> StorageResult<Option<Tablet>> {
    match open(fs, dir) {
        Ok(t) => Ok(Some(t)),
        Err(StorageError::Fs(FsError::NotFound(_))) => Ok(None),
        Err(e) => Err(e),
    }
}

#[test]
fn crash_at_every_step_of_a_split() -> StorageResult<()> {
    let probe = sim(0);
    workload(&probe, &mut Model::default())?;
    let total = probe.stats().mutating_ops;
    let (mut split_done, mut split_undone) = (0, 0);
    // k = total is the run that finishes: the only one where both children must exist.
    for k in 0..=total {
        let fs = sim(k);
        fs.halt_after_mutating_ops(Some(k));
        let mut model = Model::default();
        let failed = workload(&fs, &mut model).is_err();
        assert_eq!(failed, k < total);
        fs.crash();
        let (l, r) = (opened(&fs, "l")?, opened(&fs, "r")?);
        match (l, r) {
            (Some(l), Some(r)) => {
                split_done += 1;
                let mut both = dump(&l)?;
                both.extend(dump(&r)?);
                assert_eq!(
                    both,
                    model.cells_in(&KeyRange::all()),
                    "children at crash point {k}"
                );
            }
            _ => {
                split_undone += 1;
                if let Some(p) = opened(&fs, "p")? {
                    // Every write was synced, so the parent holds all of them.
                    assert_eq!(
                        dump(&p)?,
                        model.cells_in(&KeyRange::all()),
                        "parent at crash point {k}"
                    );
                }
            }
        }
    }
    assert!(split_done > 0 && split_undone > 0);
    Ok(())
}
