//! SST round trips (both compressions, seeks, reverse iteration) and corruption: a flipped
//! byte anywhere in the file is an error or invisible, never wrong data and never a panic.

use super::*;
use crate::cache::BlockCache;
use crate::error::StorageError;
use crate::iter::EntryIter;
use crate::key::{CellKey, CellKind};
use crate::testutil::{arb_op, check_iter, MemFile, Model};
use proptest::prelude::*;
use std::collections::BTreeMap;
use std::sync::Arc;

fn cell(row: &[u8], q: &[u8], ts: u64, seq: u64) -> Vec<u8> {
    CellKey {
        row: row.into(),
        family: b"f".to_vec(),
        qualifier: q.into(),
        ts,
        kind: CellKind::Put,
        seq,
    }
    .encode()
}

fn write(entries: &BTreeMap<Vec<u8>, Vec<u8>>, opts: SstOptions) -> (MemFile, SstInfo) {
    let file = MemFile::new();
    let mut w = SstWriter::new(Box::new(file.clone()), "t.sst".into(), opts);
    for (k, v) in entries {
        assert!(w.add(k, v).is_ok());
    }
    let info = w.finish().expect("finish");
    (file, info)
}

fn small_blocks(compression: Compression) -> SstOptions {
    SstOptions {
        block_size_bytes: 256,
        restart_interval: 4,
        bloom_bits_per_key: 10,
        compression,
    }
}

fn arb_entries() -> impl Strategy<Value = BTreeMap<Vec<u8>, Vec<u8>>> {
    prop::collection::btree_map(
        (
            prop::collection::vec(0u8..6, 0..4),
            prop::collection::vec(0u8..3, 0..3),
            0u64..5,
            0u64..3,
        )
            .prop_map(|(r, q, ts, seq)| cell(&r, &q, ts, seq)),
        prop::collection::vec(prop_oneof![Just(b'a'), any::<u8>()], 0..120),
        0..150,
    )
}

/// Seek targets: real keys, and row bounds that fall between keys.
fn arb_target() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        (
            prop::collection::vec(0u8..6, 0..4),
            prop::collection::vec(0u8..3, 0..3),
            0u64..5,
            0u64..3
        )
            .prop_map(|(r, q, ts, seq)| cell(&r, &q, ts, seq)),
        prop::collection::vec(0u8..6, 0..4).prop_map(|r| crate::key::row_lower_bound(&r)),
    ]
}

fn arb_sst_op() -> impl Strategy<Value = crate::testutil::Op> {
    use crate::testutil::Op;
    prop_oneof![
        arb_op(),
        arb_target().prop_map(Op::Seek),
        arb_target().prop_map(Op::SeekForPrev),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn round_trip_matches_model(
        entries in arb_entries(),
        lz4 in any::<bool>(),
        cached in any::<bool>(),
        ops in prop::collection::vec(arb_sst_op(), 1..60),
    ) {
        let compression = if lz4 { Compression::Lz4 } else { Compression::None };
        let (file, info) = write(&entries, small_blocks(compression));
        prop_assert_eq!(info.entries, entries.len() as u64);
        prop_assert_eq!(info.file_size, file.bytes().len() as u64);
        let cache = cached.then(|| BlockCache::new(4096));
        let reader = SstReader::open(Arc::new(file), "t.sst".into(), 1, cache).expect("open");
        prop_assert_eq!(reader.smallest(), entries.keys().next().map_or(&[][..], |k| k.as_slice()));
        prop_assert_eq!(reader.largest(), entries.keys().next_back().map_or(&[][..], |k| k.as_slice()));
        let mut model = Model::new(entries.iter().map(|(k, v)| (k.clone(), v.clone())).collect());
        let mut it = reader.iter();
        // A full walk each way, then random moves.
        let mut script = vec![crate::testutil::Op::First];
        script.extend(std::iter::repeat_n(crate::testutil::Op::Next, entries.len()));
        script.push(crate::testutil::Op::Last);
        script.extend(std::iter::repeat_n(crate::testutil::Op::Prev, entries.len()));
        script.extend(ops);
        check_iter(it.as_mut(), &mut model, &script)?;
        // Every row present passes the filter.
        for k in entries.keys() {
            let row = crate::key::row_of(k).expect("row");
            prop_assert!(reader.may_contain_row(&row));
        }
        // Boundaries: increasing, ending at the data region's end.
        let bounds = reader.block_boundaries();
        prop_assert!(bounds.windows(2).all(|w| w[0].0 < w[1].0 && w[0].1 < w[1].1));
        if let Some((k, _)) = bounds.last() {
            prop_assert_eq!(k.as_slice(), reader.largest());
        }
    }
}

#[test]
fn lz4_shrinks_compressible_values() {
    let entries: BTreeMap<_, _> = (0..500u32)
        .map(|i| {
            (
                cell(format!("row{i:05}").as_bytes(), b"q", 1, 1),
                vec![b'x'; 100],
            )
        })
        .collect();
    let (_, raw) = write(&entries, SstOptions::default());
    let (_, lz4) = write(
        &entries,
        SstOptions {
            compression: Compression::Lz4,
            ..SstOptions::default()
        },
    );
    assert!(
        lz4.file_size * 3 < raw.file_size,
        "lz4 {} raw {}",
        lz4.file_size,
        raw.file_size
    );
}

#[test]
fn writer_refuses_unordered_keys_and_non_cell_keys() {
    let mut w = SstWriter::new(Box::new(MemFile::new()), "t".into(), SstOptions::default());
    assert!(w.add(&cell(b"b", b"", 1, 1), b"").is_ok());
    assert!(matches!(
        w.add(&cell(b"a", b"", 1, 1), b""),
        Err(StorageError::InvalidArgument(_))
    ));
    assert!(matches!(
        w.add(b"zzz-not-a-cell-key", b""),
        Err(StorageError::InvalidArgument(_))
    ));
}

#[test]
fn empty_sst_round_trips() {
    let (file, info) = write(&BTreeMap::new(), SstOptions::default());
    assert_eq!(info.entries, 0);
    let r = SstReader::open(Arc::new(file), "t".into(), 1, None).expect("open");
    let mut it = r.iter();
    assert!(it.seek_to_first().is_ok() && !it.valid());
    assert!(it.seek_to_last().is_ok() && !it.valid());
    assert!(r.block_boundaries().is_empty());
}

#[test]
fn bloom_filters_absent_rows() {
    let entries: BTreeMap<_, _> = (0..2000u32)
        .map(|i| (cell(format!("row{i}").as_bytes(), b"q", 1, 1), vec![]))
        .collect();
    let (file, _) = write(&entries, SstOptions::default());
    let r = SstReader::open(Arc::new(file), "t".into(), 1, None).expect("open");
    let fp = (0..10_000u32)
        .filter(|i| r.may_contain_row(format!("absent{i}").as_bytes()))
        .count();
    assert!(fp < 200, "{fp} false positives in 10000");
    // 2000 rows at 10 bits each is 2500 filter bytes; the index has one key per block.
    let mem = r.memory_bytes();
    assert!(
        mem > 2500 && mem < 2500 + 200 * r.block_boundaries().len() + 1000,
        "{mem}"
    );
}

/// Everything a reader can observe, or the first error on the way.
fn observe(file: MemFile, truth: &BTreeMap<Vec<u8>, Vec<u8>>) -> Result<(), StorageError> {
    let r = SstReader::open(Arc::new(file), "t".into(), 1, None)?;
    let mut it = r.iter();
    let check = |it: &dyn EntryIter| {
        // Whatever comes back must be a real entry with its real value.
        assert_eq!(
            truth.get(it.key()).map(|v| v.as_slice()),
            Some(it.value()),
            "wrong data returned"
        );
    };
    let mut seen = Vec::new();
    it.seek_to_first()?;
    while it.valid() {
        check(it.as_ref());
        seen.push(it.key().to_vec());
        it.next()?;
    }
    assert_eq!(
        seen,
        truth.keys().cloned().collect::<Vec<_>>(),
        "a scan that succeeds sees everything"
    );
    it.seek_to_last()?;
    let mut n = 0;
    while it.valid() {
        check(it.as_ref());
        n += 1;
        it.prev()?;
    }
    assert_eq!(n, truth.len());
    for k in truth.keys().step_by(7) {
        it.seek(k)?;
        assert!(it.valid() && it.key() == k.as_slice());
        check(it.as_ref());
        it.seek_for_prev(k)?;
        assert!(it.valid() && it.key() == k.as_slice());
    }
    Ok(())
}

#[test]
fn every_single_byte_flip_is_detected_or_harmless() {
    let entries: BTreeMap<_, _> = (0..60u32)
        .map(|i| {
            (
                cell(
                    format!("r{:03}", i * 7 % 60).as_bytes(),
                    b"q",
                    u64::from(i),
                    1,
                ),
                vec![i as u8; i as usize % 20],
            )
        })
        .collect();
    for compression in [Compression::None, Compression::Lz4] {
        let (file, _) = write(&entries, small_blocks(compression));
        let bytes = file.bytes();
        assert!(observe(MemFile::from_bytes(bytes.clone()), &entries).is_ok());
        let mut detected = 0;
        for i in 0..bytes.len() {
            for flip in [0x01u8, 0x80] {
                let mut bad = bytes.clone();
                bad[i] ^= flip;
                match observe(MemFile::from_bytes(bad), &entries) {
                    Ok(()) => {}
                    Err(StorageError::Corruption { .. }) => detected += 1,
                    Err(e) => panic!("flip at {i} gave a non-corruption error: {e}"),
                }
            }
        }
        // Every byte is under a checksum, so every flip is caught.
        assert_eq!(detected, 2 * bytes.len(), "{compression:?}");
    }
}

#[test]
fn truncated_files_are_corruption() {
    let entries: BTreeMap<_, _> = (0..50u32)
        .map(|i| (cell(&i.to_be_bytes(), b"q", 1, 1), vec![1; 10]))
        .collect();
    let (file, _) = write(&entries, small_blocks(Compression::None));
    let bytes = file.bytes();
    for cut in [0, 1, 10, 63, 64, bytes.len() / 2, bytes.len() - 1] {
        let r = observe(MemFile::from_bytes(bytes[..cut].to_vec()), &entries);
        assert!(
            matches!(r, Err(StorageError::Corruption { .. })),
            "cut at {cut}: {r:?}"
        );
    }
    // Garbage with a valid-looking tail is still refused.
    let mut junk = vec![0u8; 200];
    junk[136..].copy_from_slice(&bytes[bytes.len() - 64..]);
    assert!(matches!(
        observe(MemFile::from_bytes(junk), &entries),
        Err(StorageError::Corruption { .. })
    ));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Random files, random byte, random bit pattern: caught, never wrong data, never a panic.
    #[test]
    fn random_corruption_is_caught(entries in arb_entries(), lz4 in any::<bool>(),
                                   at in any::<prop::sample::Index>(), mask in 1u8..=255) {
        let compression = if lz4 { Compression::Lz4 } else { Compression::None };
        let (file, _) = write(&entries, small_blocks(compression));
        let mut bytes = file.bytes();
        let i = at.index(bytes.len());
        bytes[i] ^= mask;
        let r = observe(MemFile::from_bytes(bytes), &entries);
        prop_assert!(matches!(r, Err(StorageError::Corruption { .. })), "flip {mask:#x} at {i}: {r:?}");
    }
}
