//! SimFs tests: durability of data and directory entries, tearing, faults, listing.

use super::*;

fn write(fs: &SimFs, path: &str, data: &[u8], sync: bool) -> FsResult<()> {
    let mut f = fs.create(path)?;
    f.append(data)?;
    if sync {
        f.sync()?;
    }
    Ok(())
}

fn read_all(fs: &SimFs, path: &str) -> FsResult<Vec<u8>> {
    let f = fs.open(path)?;
    let mut buf = vec![0u8; f.len() as usize];
    f.read_at(0, &mut buf)?;
    Ok(buf)
}

#[test]
fn unsynced_data_and_dir_ops_vanish_on_crash() -> FsResult<()> {
    let fs = SimFs::new(SimFsConfig::default());
    write(&fs, "d/a", b"durable", true)?;
    fs.sync_dir("d")?;
    let mut f = fs.create("d/c")?;
    fs.sync_dir("d")?;
    f.append(b"name durable, data not")?;
    write(&fs, "d/b", b"synced data, unsynced name", true)?;
    assert_eq!(fs.list("d")?, vec!["a", "b", "c"]);
    fs.crash();
    assert_eq!(fs.list("d")?, vec!["a", "c"]);
    assert_eq!(read_all(&fs, "d/a")?, b"durable");
    assert_eq!(read_all(&fs, "d/c")?, b"");
    // The handle from before the crash is dead.
    assert!(matches!(f.append(b"zombie"), Err(FsError::Injected(_))));
    Ok(())
}

#[test]
fn rename_and_delete_need_dir_sync() -> FsResult<()> {
    let fs = SimFs::new(SimFsConfig::default());
    write(&fs, "CURRENT", b"old", true)?;
    fs.sync_dir("")?;
    write(&fs, "CURRENT.tmp", b"new", true)?;
    fs.rename("CURRENT.tmp", "CURRENT")?;
    assert_eq!(read_all(&fs, "CURRENT")?, b"new");
    fs.crash();
    assert_eq!(read_all(&fs, "CURRENT")?, b"old");
    write(&fs, "CURRENT.tmp", b"new", true)?;
    fs.rename("CURRENT.tmp", "CURRENT")?;
    fs.sync_dir("")?;
    fs.delete("CURRENT")?;
    fs.crash();
    assert_eq!(read_all(&fs, "CURRENT")?, b"new");
    assert!(!fs.exists("CURRENT.tmp"));
    Ok(())
}

#[test]
fn torn_writes_keep_a_prefix_deterministically() -> FsResult<()> {
    let run = |seed| -> FsResult<Vec<u8>> {
        let fs = SimFs::new(SimFsConfig {
            seed,
            torn_writes: true,
            ..Default::default()
        });
        let mut f = fs.create("w")?;
        fs.sync_dir("")?;
        f.append(b"0123")?;
        f.sync()?;
        f.append(&[7u8; 100])?;
        fs.crash();
        read_all(&fs, "w")
    };
    let a = run(3)?;
    assert_eq!(a, run(3)?);
    assert!(a.starts_with(b"0123") && a.len() <= 104);
    assert!(a[4..].iter().all(|&b| b == 7));
    let lens: Vec<usize> = (0..20).map(|s| run(s).map_or(0, |v| v.len())).collect();
    assert!(
        lens.iter().any(|&l| l != lens[0]),
        "tear point varies with the seed"
    );
    Ok(())
}

#[test]
fn faults_by_schedule_capacity_probability_and_halt() -> FsResult<()> {
    let fs = SimFs::new(SimFsConfig {
        capacity_bytes: Some(10),
        ..Default::default()
    });
    let mut f = fs.create("x.sst")?;
    f.append(b"12345678")?;
    assert_eq!(f.append(b"abc"), Err(FsError::DiskFull));
    fs.fail_op(fs.stats().ops, SimFault::Error);
    assert!(matches!(f.sync(), Err(FsError::Injected(_))));
    f.sync()?;
    let s = fs.stats();
    assert_eq!(s.appended_bytes_by_ext.get("sst"), Some(&8));
    assert!(s.simulated_nanos > 0);

    let fs = SimFs::new(SimFsConfig {
        write_error_probability: 0.5,
        seed: 9,
        ..Default::default()
    });
    let fails = (0..200)
        .filter(|i| fs.create(&format!("f{i}")).is_err())
        .count();
    assert!((50..150).contains(&fails), "{fails}");

    let fs = SimFs::new(SimFsConfig::default());
    fs.halt_after_mutating_ops(Some(2));
    write(&fs, "h", b"ab", false)?;
    assert!(fs.create("h2").is_err());
    assert!(fs.list("").is_err());
    fs.crash();
    assert_eq!(fs.list("")?, Vec::<String>::new());
    Ok(())
}

#[test]
fn list_shows_direct_children_only() -> FsResult<()> {
    let fs = SimFs::new(SimFsConfig::default());
    for p in ["t/1/a", "t/1/b", "t/2/c", "t/x", "u"] {
        write(&fs, p, b"", false)?;
    }
    assert_eq!(fs.list("t")?, vec!["1", "2", "x"]);
    assert_eq!(fs.list("")?, vec!["t", "u"]);
    assert_eq!(fs.list("t/1")?, vec!["a", "b"]);
    Ok(())
}
