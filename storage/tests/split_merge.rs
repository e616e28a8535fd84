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
