//! Split without copying and merge: children share the parent's SSTs through clipped
//! ranges (0 SST bytes written by the split), never show or accept keys outside their range,
//! compact only their own keys into their own files, drain inherited files, and merge back.

mod common;

use std::sync::Arc;

use common::*;
use shale_storage::fs::FileStore;
use shale_storage::sst::SstReader;
use shale_storage::tablet::{writer_of_path, KeyRange, Tablet, TabletId};
use shale_storage::{StorageError, StorageResult};

fn filled(fs: &shale_storage::fs::SimFs, model: &mut Model) -> StorageResult<Tablet> {
    let t = create(fs, "p", 1, KeyRange::all())?;
    for i in 0..400u32 {
        let r = row(i % 200);
        let v = format!("value-{i:04}-{}", "y".repeat(30)).into_bytes();
        put(
            &t,
            &r,
            if i % 5 == 0 { b"b" } else { b"a" },
            b"q",
            u64::from(i),
            &v,
            false,
        )?;
        model.put(
            &r,
            if i % 5 == 0 { b"b" } else { b"a" },
            b"q",
            u64::from(i),
            &v,
        );
    }
    t.flush()?;
    while t.compact_step(0)? {}
    Ok(t)
}

fn keys_of(fs: &dyn FileStore, path: &str) -> StorageResult<Vec<Vec<u8>>> {
    let r = SstReader::open(fs.open(path)?, path.to_string(), u64::MAX, None)?;
    let mut it = r.iter();
    it.seek_to_first()?;
    let mut out = Vec::new();
    while it.valid() {
        out.push(shale_storage::key::row_of(it.key())?);
        it.next()?;
    }
    Ok(out)
}

#[test]
fn split_copies_no_sst_bytes_and_children_stay_in_range() -> StorageResult<()> {
    let fs = sim(8);
    let mut model = Model::default();
    let t = filled(&fs, &mut model)?;
    let key = t.split_key()?.ok_or(StorageError::Closed)?;
    // The split key halves the data: rows are uniform, so it is near the middle row.
    let mid = row(100);
    assert!(
        key > row(70) && key < row(130),
        "split key {:?} vs middle {:?}",
        String::from_utf8_lossy(&key),
        mid
    );
    let sst_before = fs
        .stats()
        .appended_bytes_by_ext
        .get("sst")
        .copied()
        .unwrap_or(0);
    let parent_files = t.live_files();
    t.split(&key, (TabletId(2), "l"), (TabletId(3), "r"))?;
    let sst_after = fs
        .stats()
        .appended_bytes_by_ext
        .get("sst")
        .copied()
        .unwrap_or(0);
    assert_eq!(sst_after, sst_before, "split wrote SST bytes");

    let (lr, rr) = (
        KeyRange::new(Vec::new(), key.clone()),
        KeyRange::new(key.clone(), Vec::new()),
    );
    let l = open(&fs, "l")?;
    let r = open(&fs, "r")?;
    assert_eq!(l.inherited_files(), l.live_files());
    assert!(l.live_files().iter().all(|f| parent_files.contains(f)));
    assert_eq!(dump(&l)?, model.cells_in(&lr));
    assert_eq!(dump(&r)?, model.cells_in(&rr));
    assert_eq!(
        r.get(&row(0), &all_versions()),
        Err(StorageError::KeyNotInRange)
    );
    assert_eq!(
        put(&l, &key, b"a", b"q", 1, b"v", false),
        Err(StorageError::KeyNotInRange)
    );

    // Children compact their own keys into their own files, and inherited files drain.
    for (child, range, id) in [(&l, &lr, 2u64), (&r, &rr, 3u64)] {
        while child.compact_step(0)? {}
        assert!(
            child.inherited_files().is_empty(),
            "inherited files drained"
        );
        for f in child.live_files() {
            assert_eq!(writer_of_path(&f), Some(TabletId(id)));
            for k in keys_of(&fs, &f)? {
                assert!(
                    range.contains(&k),
                    "child file {f} holds row {:?}",
                    String::from_utf8_lossy(&k)
                );
            }
        }
        assert_eq!(dump(child)?, model.cells_in(range));
    }
    // The parent's files were not deleted by the children: the master collects them.
    for f in &parent_files {
        assert!(fs.exists(f), "{f} deleted by a child");
    }
    Ok(())
}

#[test]
fn merge_is_the_union_of_two_children() -> StorageResult<()> {
    let fs = sim(9);
    let mut model = Model::default();
    let t = filled(&fs, &mut model)?;
    let key = t.split_key()?.ok_or(StorageError::Closed)?;
    t.split(&key, (TabletId(2), "l"), (TabletId(3), "r"))?;
    let l = open(&fs, "l")?;
    let r = open(&fs, "r")?;
    // Writes to each side after the split, and some compaction on one side only.
    put(&l, &row(1), b"a", b"new", 7, b"left", false)?;
    put(&r, &row(199), b"a", b"new", 7, b"right", false)?;
    model.put(&row(1), b"a", b"new", 7, b"left");
    model.put(&row(199), b"a", b"new", 7, b"right");
    r.compact_step(0)?;
    let sst_before = fs
        .stats()
        .appended_bytes_by_ext
        .get("sst")
        .copied()
        .unwrap_or(0);
    assert!(
        matches!(
            Tablet::merge(&fs, "l", "r", TabletId(4), "m"),
            Err(StorageError::InvalidArgument(_))
        ),
        "loaded tablets cannot merge"
    );
    l.unload()?;
    r.unload()?;
    let sst_mid = fs
        .stats()
        .appended_bytes_by_ext
        .get("sst")
        .copied()
        .unwrap_or(0);
    assert!(sst_mid >= sst_before);
    Tablet::merge(&fs, "l", "r", TabletId(4), "m")?;
    assert_eq!(
        fs.stats()
            .appended_bytes_by_ext
            .get("sst")
            .copied()
            .unwrap_or(0),
        sst_mid,
        "merge wrote SST bytes"
    );
    let m = open(&fs, "m")?;
    assert_eq!(m.range(), KeyRange::all());
    assert_eq!(dump(&m)?, model.cells_in(&KeyRange::all()));
    assert_eq!(m.inherited_files(), m.live_files());
    while m.compact_step(0)? {}
    assert!(m.inherited_files().is_empty());
    assert_eq!(dump(&m)?, model.cells_in(&KeyRange::all()));
    Ok(())
}

#[test]
fn split_key_needs_data_and_a_row_inside() -> StorageResult<()> {
    let fs = sim(10);
    let t = create(&fs, "p", 1, KeyRange::all())?;
    assert_eq!(t.split_key()?, None);
    put(&t, b"only", b"a", b"q", 1, b"v", false)?;
    t.flush()?;
    assert_eq!(t.split_key()?, None, "one row cannot be split");
    assert!(t
        .split(b"", (TabletId(2), "l"), (TabletId(3), "r"))
        .is_err());
    let _unused: Option<Arc<()>> = None;
    Ok(())
}

/// The first split-key rule, kept as the reference: every visible block of every file,
/// sorted, halved by bytes; then the first boundary past half with a valid row.
fn reference_split_key(fs: &dyn FileStore, t: &Tablet) -> StorageResult<Option<Vec<u8>>> {
    let range = t.range();
    let metas = t.file_metas();
    let mut blocks: Vec<(Vec<u8>, u64)> = Vec::new();
    for m in &metas {
        let r = SstReader::open(fs.open(&m.path)?, m.path.clone(), u64::MAX, None)?;
        let mut prev_end = 0u64;
        for (key, end) in r.block_boundaries() {
            let size = end - prev_end;
            prev_end = end;
            let below = m.clip_lower.as_ref().is_some_and(|l| key < *l);
            let above = m.clip_upper.as_ref().is_some_and(|u| key >= *u);
            if !below && !above {
                blocks.push((key, size));
            }
        }
    }
    blocks.sort();
    let total: u64 = blocks.iter().map(|b| b.1).sum();
    let mut acc = 0;
    let mut floor = Vec::new();
    let mut first = true;
    for m in &metas {
        let r = shale_storage::key::row_of(m.effective_smallest())?;
        if first || r < floor {
            floor = r;
            first = false;
        }
    }
    let floor = floor.max(range.start.clone());
    for (key, size) in &blocks {
        acc += size;
        if acc * 2 < total {
            continue;
        }
        let row = shale_storage::key::row_of(key)?;
        if row <= floor {
            continue;
        }
        if !range.end.is_empty() && row >= range.end {
            break;
        }
        return Ok(Some(row));
    }
    Ok(None)
}

#[test]
fn split_key_matches_the_exhaustive_rule_on_clipped_and_skewed_tablets() -> StorageResult<()> {
    for seed in 0..4u32 {
        let fs = sim(20 + u64::from(seed));
        let t = create(&fs, "p", 1, KeyRange::all())?;
        // Skewed rows: some rows carry much larger values, so halves by bytes are not halves
        // by rows; several flushes leave overlapping files in several levels.
        for i in 0..600u32 {
            let r = row((i * 7 + seed * 13) % 300);
            let big = (i + seed) % 17 == 0;
            let v = vec![b'x'; if big { 700 } else { 20 + (i % 40) as usize }];
            put(
                &t,
                &r,
                if i % 3 == 0 { b"b" } else { b"a" },
                b"q",
                u64::from(i),
                &v,
                false,
            )?;
            if i % 150 == 149 {
                t.flush()?;
                t.compact_step(0)?;
            }
        }
        t.flush()?;
        assert_eq!(
            t.split_key()?,
            reference_split_key(&fs, &t)?,
            "parent, seed {seed}"
        );
        let key = t.split_key()?.ok_or(StorageError::Closed)?;
        t.split(&key, (TabletId(2), "l"), (TabletId(3), "r"))?;
        // Children read clipped files: the rule must ignore blocks outside each clip.
        for dir in ["l", "r"] {
            let c = open(&fs, dir)?;
            let expect = reference_split_key(&fs, &c)?;
            assert_eq!(c.split_key()?, expect, "child {dir}, seed {seed}");
            assert!(expect.is_some(), "a child of 300 rows can split again");
        }
        let l = open(&fs, "l")?;
        let lk = l.split_key()?.ok_or(StorageError::Closed)?;
        l.split(&lk, (TabletId(4), "ll"), (TabletId(5), "lr"))?;
        for dir in ["ll", "lr"] {
            let c = open(&fs, dir)?;
            assert_eq!(
                c.split_key()?,
                reference_split_key(&fs, &c)?,
                "grandchild {dir}"
            );
        }
    }
    Ok(())
}
