//! Recovery scenario: the machine dies at every I/O step of a memtable flush (SST write, its
//! sync, the directory sync, the manifest edit, the WAL deletion). Reopening must keep every
//! synced write and show a prefix of the attempted ones.

mod common;

use common::crash::{enumerate, puts, Op};
use shale_storage::StorageResult;

#[test]
fn crash_at_every_step_of_a_flush() -> StorageResult<()> {
    let mut ops = puts(10, 10, 3, 2);
    let flush_at = ops.len();
    ops.push(Op::Flush);
    ops.extend(puts(4, 4, 2, 0));
    let (total, starts) = enumerate(&ops, 11)?;
    // The enumeration covered the flush: several crash points fell inside it.
    let inside = starts[flush_at + 1] - starts[flush_at];
    assert!(inside >= 4, "flush did {inside} mutating ops");
    assert!(total > starts[flush_at + 1]);
    Ok(())
}
