//! Recovery scenario: the machine dies at every I/O step of compactions (outputs written,
//! synced, recorded in the manifest, inputs deleted, manifest rolled). Nothing acknowledged
//! is lost and nothing is duplicated or resurrected.

mod common;

use common::crash::{enumerate, puts, Op};
use shale_storage::StorageResult;

#[test]
fn crash_at_every_step_of_compactions() -> StorageResult<()> {
    // Enough data for several L0 files, then compaction into L1 and beyond.
    let mut ops = Vec::new();
    for round in 0..4 {
        ops.extend(puts(8, 6, 4, 3).into_iter().map(|op| match op {
            Op::Put {
                row,
                fam,
                ts,
                value,
                sync,
            } => Op::Put {
                row,
                fam,
                ts: ts + 100 * round,
                value,
                sync,
            },
            other => other,
        }));
        ops.push(Op::Flush);
    }
    let compact_at = ops.len();
    ops.push(Op::Compact);
    ops.extend(puts(3, 3, 1, 0));
    let (_, starts) = enumerate(&ops, 23)?;
    let inside = starts[compact_at + 1] - starts[compact_at];
    assert!(inside >= 6, "compaction did {inside} mutating ops");
    Ok(())
}
