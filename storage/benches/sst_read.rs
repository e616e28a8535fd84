//! Micro-benchmark of the format layer's read path: memtable inserts and seeks, and SST point
//! reads, seeks and scans through the block cache, on a local-disk file.
//!
//! Run with `cargo bench -p shale-storage --bench sst_read` (ENTRIES=n to resize). Wall-clock
//! time is read here only to measure. Prints `<workload> <ops_per_sec>` lines.
#![allow(clippy::disallowed_types, clippy::disallowed_methods)]

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use shale_storage::cache::BlockCache;
use shale_storage::fs::{FileStore, LocalFs};
use shale_storage::key::{row_lower_bound, CellKey};
use shale_storage::memtable::Memtable;
use shale_storage::read::{read_row, FamilyRules, ReadOptions, Schema};
use shale_storage::sst::{SstOptions, SstReader, SstWriter};
use shale_storage::StorageResult;
use std::sync::Arc;
use std::time::Instant;

fn row(i: u64) -> Vec<u8> {
    format!("{i:016}").into_bytes()
}

fn cell(i: u64) -> Vec<u8> {
    CellKey::put(&row(i), b"f", b"", 1, i + 1).encode()
}

fn report(name: &str, ops: u64, start: Instant) {
    let secs = start.elapsed().as_secs_f64();
    println!("{name} {:.0}", ops as f64 / secs);
}

fn main() -> StorageResult<()> {
    let n: u64 = std::env::var("ENTRIES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1_000_000);
    let lookups = n.min(200_000);
    let value = vec![b'v'; 100];
    let mut rng = ChaCha8Rng::seed_from_u64(42);

    // Memtable: random inserts, then random seeks.
    let mem = Arc::new(Memtable::new());
    let start = Instant::now();
    for _ in 0..n {
        mem.insert(&cell(rng.gen_range(0..n)), &value);
    }
    report("memtable_insert_random", n, start);
    let mut it = mem.iter();
    let start = Instant::now();
    let mut found = 0u64;
    for _ in 0..lookups {
        it.seek(&row_lower_bound(&row(rng.gen_range(0..n))))?;
        found += u64::from(it.valid());
    }
    report("memtable_seek_random", lookups, start);
    assert!(found > 0);

    // SST on local disk.
    let dir = std::env::temp_dir().join(format!("shale-sst-bench-{}", std::process::id()));
    let fs = LocalFs::new(&dir)?;
    let start = Instant::now();
    let mut w = SstWriter::new(
        fs.create("bench.sst")?,
        "bench.sst".into(),
        SstOptions::default(),
    );
    for i in 0..n {
        w.add(&cell(i), &value)?;
    }
    let info = w.finish()?;
    report("sst_write_seq", n, start);
    let cache = BlockCache::new(8 << 20);
    let reader = SstReader::open(
        fs.open("bench.sst")?,
        "bench.sst".into(),
        1,
        Some(cache.clone()),
    )?;
    let schema = Schema {
        families: [(b"f".to_vec(), FamilyRules::default())]
            .into_iter()
            .collect(),
    };
    let opts = ReadOptions::default();

    let mut it = reader.iter();
    let start = Instant::now();
    for _ in 0..lookups {
        let r = row(rng.gen_range(0..n));
        if reader.may_contain_row(&r) {
            let cells = read_row(it.as_mut(), &r, &schema, &opts)?;
            assert_eq!(cells.len(), 1);
        }
    }
    report("sst_read_row_random", lookups, start);

    for nexts in [1u64, 10] {
        let start = Instant::now();
        for _ in 0..lookups {
            it.seek(&row_lower_bound(&row(rng.gen_range(0..n))))?;
            for _ in 0..nexts {
                if !it.valid() {
                    break;
                }
                it.next()?;
            }
        }
        report(&format!("sst_seek_next{nexts}"), lookups, start);
    }

    let start = Instant::now();
    let mut count = 0u64;
    it.seek_to_first()?;
    while it.valid() {
        count += 1;
        it.next()?;
    }
    report("sst_scan_forward", count, start);
    let start = Instant::now();
    count = 0;
    it.seek_to_last()?;
    while it.valid() {
        count += 1;
        it.prev()?;
    }
    report("sst_scan_reverse", count, start);
    assert_eq!(count, info.entries);
    eprintln!(
        "entries {n}, file {} bytes, cache usage {} of {} bytes",
        info.file_size,
        cache.usage_bytes(),
        cache.capacity_bytes()
    );
    drop(it);
    drop(reader);
    let _ = fs.delete("bench.sst");
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}
