//! Group commit through the tablet: 16 threads writing synced batches share WAL syncs
//! (fewer syncs than writes), every write gets a unique sequence number, and everything is
//! readable afterwards and after a crash.

mod common;

use common::*;
use shale_storage::tablet::KeyRange;
use shale_storage::wal::WriteBatch;
use shale_storage::StorageResult;

#[test]
fn sixteen_writers_share_syncs_and_lose_nothing() -> StorageResult<()> {
    let fs = sim(12);
    let t = create(&fs, "t", 1, KeyRange::all())?;
    let (writers, per_writer) = (16u32, 40u32);
    let syncs_before = fs.stats().syncs;
    let results: Vec<StorageResult<Vec<u64>>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..writers)
            .map(|w| {
                let t = &t;
                s.spawn(move || {
                    (0..per_writer)
                        .map(|i| {
                            let mut b = WriteBatch::new();
                            b.put(format!("w{w:02}-{i:03}").as_bytes(), b"a", b"q", 1, b"v");
                            t.write(&b, true)
                        })
                        .collect()
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|_| Ok(Vec::new())))
            .collect()
    });
    let mut seqs = Vec::new();
    for r in results {
        seqs.extend(r?);
    }
    let total = (writers * per_writer) as usize;
    assert_eq!(seqs.len(), total);
    seqs.sort_unstable();
    seqs.dedup();
    assert_eq!(seqs.len(), total, "unique sequence numbers");
    let st = t.stats();
    assert_eq!(st.batches_written as usize, total);
    // One WAL sync per group, and a group holds one or more writers' batches.
    assert_eq!(st.wal_syncs, st.write_groups);
    assert!(st.write_groups as usize <= total);
    assert!(fs.stats().syncs - syncs_before >= st.wal_syncs);
    drop(t);
    fs.crash();
    let t = open(&fs, "t")?;
    assert_eq!(
        dump(&t)?.len(),
        total,
        "every synced write survives the crash"
    );
    Ok(())
}
