//! Corruption: a flipped byte anywhere in an SST (data, index, bloom, footer) or in the
//! middle of a WAL is caught by a checksum and reported as `Corruption` (or the open fails);
//! it is never returned as data. Injected read errors surface as errors, never as data.

mod common;

use common::*;
use shale_storage::fs::{FileStore, SimFsConfig};
use shale_storage::tablet::KeyRange;
use shale_storage::{StorageError, StorageResult};

fn filled(fs: &shale_storage::fs::SimFs, model: &mut Model) -> StorageResult<()> {
    let t = create(fs, "t", 1, KeyRange::all())?;
    for i in 0..60u32 {
        let v = format!("v{i}-{}", "z".repeat(40)).into_bytes();
        put(
            &t,
            &row(i % 30),
            if i % 2 == 0 { b"a" } else { b"b" },
            b"q",
            u64::from(i),
            &v,
            false,
        )?;
        model.put(
            &row(i % 30),
            if i % 2 == 0 { b"a" } else { b"b" },
            b"q",
            u64::from(i),
            &v,
        );
    }
    t.flush()?;
    Ok(())
}

/// Open and read everything; Ok(true) if it matched the model, Ok(false) if an error said
/// corruption, Err for anything else.
fn read_back(fs: &shale_storage::fs::SimFs, model: &Model) -> StorageResult<bool> {
    let result = open(fs, "t").and_then(|t| {
        let all = dump(&t)?;
        let mut gets = Vec::new();
        for i in 0..30 {
            gets.extend(t.get(&row(i), &all_versions())?);
        }
        Ok((all, gets))
    });
    match result {
        Ok((all, gets)) => {
            let want = model.cells_in(&KeyRange::all());
            assert_eq!(all, want, "a scan returned wrong data instead of an error");
            assert_eq!(gets, want, "a get returned wrong data instead of an error");
            Ok(true)
        }
        Err(StorageError::Corruption { .. }) => Ok(false),
        Err(e) => Err(e),
    }
}

#[test]
fn every_flipped_sst_byte_is_caught_or_harmless() -> StorageResult<()> {
    let fs = sim(1);
    let mut model = Model::default();
    filled(&fs, &mut model)?;
    let ssts: Vec<String> = fs
        .all_files()
        .into_iter()
        .filter(|p| p.ends_with(".sst"))
        .collect();
    assert!(!ssts.is_empty());
    let (mut caught, mut harmless) = (0, 0);
    for path in &ssts {
        let len = fs.len(path)?;
        for offset in (0..len).step_by(3) {
            fs.corrupt_byte(path, offset)?;
            if read_back(&fs, &model)? {
                harmless += 1;
            } else {
                caught += 1;
            }
            fs.corrupt_byte(path, offset)?; // flip back
        }
    }
    assert!(read_back(&fs, &model)?, "restored files read cleanly");
    // Every byte of an SST is covered by a checksum, so nearly all flips must be caught.
    assert!(caught > 0);
    assert!(
        harmless * 20 <= caught,
        "caught {caught}, harmless {harmless}"
    );
    Ok(())
}

#[test]
fn corruption_in_the_middle_of_a_wal_is_an_error() -> StorageResult<()> {
    let fs = sim(2);
    let t = create(&fs, "t", 1, KeyRange::all())?;
    for i in 0..5u32 {
        put(&t, &row(i), b"a", b"q", 1, b"value", true)?;
    }
    drop(t);
    let wal = fs
        .all_files()
        .into_iter()
        .find(|p| p.ends_with(".wal"))
        .ok_or(StorageError::Closed)?;
    // A byte inside the first record's payload: records follow it, so this is not a tail.
    fs.corrupt_byte(&wal, 20)?;
    fs.crash();
    assert!(matches!(
        open(&fs, "t"),
        Err(StorageError::Corruption { .. })
    ));
    Ok(())
}

#[test]
fn injected_read_errors_are_errors_not_data() -> StorageResult<()> {
    let fs = sim(3);
    let mut model = Model::default();
    filled(&fs, &mut model)?;
    fs.set_config(SimFsConfig {
        read_error_probability: 0.05,
        seed: 3,
        ..fs.config()
    });
    let (mut ok, mut failed) = (0, 0);
    for _ in 0..40 {
        match open(&fs, "t").and_then(|t| dump(&t)) {
            Ok(all) => {
                assert_eq!(all, model.cells_in(&KeyRange::all()));
                ok += 1;
            }
            Err(StorageError::Fs(_)) => failed += 1,
            Err(e) => return Err(e),
        }
    }
    assert!(ok > 0 && failed > 0, "ok {ok}, failed {failed}");
    assert!(fs.stats().injected_faults > 0);
    Ok(())
}
