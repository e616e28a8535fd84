//! Recovery scenario: the crash tears the WAL's unsynced tail. Every synced write survives,
//! the torn record is dropped as truncation (not an error), and what survives is a prefix.

mod common;

use common::crash::{check_recovered, enumerate, puts, run, Op, Trace};
use common::*;
use shale_storage::StorageResult;

#[test]
fn torn_unsynced_tail_is_truncated_not_an_error() -> StorageResult<()> {
    let mut dropped_tails = 0;
    for seed in 0..20u64 {
        let fs = sim(seed);
        let mut trace = Trace::default();
        let mut ops = puts(12, 12, 4, 0);
        // A long unsynced tail after the last synced write.
        ops.extend(puts(6, 6, 0, 0).into_iter().map(|op| match op {
            Op::Put {
                row,
                fam,
                ts,
                value,
                ..
            } => Op::Put {
                row,
                fam,
                ts: ts + 100,
                value,
                sync: false,
            },
            other => other,
        }));
        run(&fs, "t", &ops, &mut trace)?;
        fs.crash();
        let t = open(&fs, "t")?;
        let survived = check_recovered(&t, &trace)?;
        assert!(survived >= trace.durable_prefix);
        dropped_tails += u64::from(t.stats().replayed_torn_tail_bytes > 0);
    }
    // Prove the path ran: some seeds tore a record in half.
    assert!(dropped_tails > 0, "no seed produced a torn tail");
    Ok(())
}

#[test]
fn every_crash_point_of_a_synced_write_stream() -> StorageResult<()> {
    let (points, _) = enumerate(&puts(16, 8, 3, 4), 7)?;
    assert!(points > 20);
    Ok(())
}
