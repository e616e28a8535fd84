//! The MANIFEST log and the CURRENT pointer of one tablet directory.
//!
//! `dir/MANIFEST-<n>` is a log of [`VersionEdit`] records (framed like the WAL: see
//! `wal/record.rs`), opening with a snapshot. `dir/CURRENT` names the live manifest. It is
//! switched atomically: write `CURRENT.tmp`, sync it, rename it over `CURRENT`, sync the
//! directory. A crash before the rename leaves the old manifest current; after the directory
//! sync the new one is. Recovery reads CURRENT, replays the manifest and ignores a torn final
//! edit (it was never acknowledged: every edit is synced before the change it records is used).
//!
//! Must not: delete SSTs or WALs (the tablet does, after the edit that frees them is durable).

use super::edit::{ManifestState, VersionEdit};
use crate::error::{StorageError, StorageResult};
use crate::fs::{join, FileStore, WritableFile};
use crate::wal::record::{encode_record, read_log, RecordType};

pub const CURRENT: &str = "CURRENT";
const CURRENT_TMP: &str = "CURRENT.tmp";

pub fn manifest_name(number: u64) -> String {
    format!("MANIFEST-{number:06}")
}

pub fn parse_manifest_name(name: &str) -> Option<u64> {
    name.strip_prefix("MANIFEST-")?.parse().ok()
}

/// An open manifest being appended to.
pub struct ManifestWriter {
    file: Box<dyn WritableFile>,
    path: String,
    number: u64,
}

impl ManifestWriter {
    /// Create `dir/MANIFEST-<number>` holding a snapshot of `state`, synced. It is not
    /// current until [`set_current`].
    pub fn create(
        fs: &dyn FileStore,
        dir: &str,
        number: u64,
        state: &ManifestState,
    ) -> StorageResult<Self> {
        assert!(
            state.next_file_number > number,
            "the manifest's own number is allocated"
        );
        let path = join(dir, &manifest_name(number));
        let file = fs.create(&path)?;
        let mut w = ManifestWriter { file, path, number };
        w.append(&state.snapshot())?;
        Ok(w)
    }

    /// Append one edit and make it durable before returning.
    pub fn append(&mut self, edit: &VersionEdit) -> StorageResult<()> {
        let mut buf = Vec::new();
        encode_record(&mut buf, RecordType::VersionEdit, &edit.encode());
        self.file.append(&buf)?;
        self.file.sync()?;
        Ok(())
    }

    pub fn number(&self) -> u64 {
        self.number
    }
    pub fn path(&self) -> &str {
        &self.path
    }
    pub fn len(&self) -> u64 {
        self.file.len()
    }
    pub fn is_empty(&self) -> bool {
        self.file.is_empty()
    }
}

/// Point `dir/CURRENT` at `MANIFEST-<number>`, atomically and durably.
pub fn set_current(fs: &dyn FileStore, dir: &str, number: u64) -> StorageResult<()> {
    let tmp = join(dir, CURRENT_TMP);
    let mut f = fs.create(&tmp)?;
    f.append(format!("{}\n", manifest_name(number)).as_bytes())?;
    f.sync()?;
    drop(f);
    fs.rename(&tmp, &join(dir, CURRENT))?;
    fs.sync_dir(dir)?;
    Ok(())
}

/// The manifest number CURRENT names, or `None` if there is no CURRENT (no tablet here).
pub fn read_current(fs: &dyn FileStore, dir: &str) -> StorageResult<Option<u64>> {
    let path = join(dir, CURRENT);
    if !fs.exists(&path) {
        return Ok(None);
    }
    let f = fs.open(&path)?;
    let len = f.len() as usize;
    if len > 64 {
        return Err(StorageError::corruption(&path, "CURRENT is too long"));
    }
    let mut buf = vec![0u8; len];
    f.read_at(0, &mut buf)?;
    let text =
        std::str::from_utf8(&buf).map_err(|_| StorageError::corruption(&path, "not utf-8"))?;
    let name = text
        .strip_suffix('\n')
        .ok_or_else(|| StorageError::corruption(&path, "no newline"))?;
    let n = parse_manifest_name(name)
        .ok_or_else(|| StorageError::corruption(&path, "bad manifest name"))?;
    Ok(Some(n))
}

/// Replay the current manifest of `dir`. `Ok(None)` if the directory holds no tablet.
pub fn recover(fs: &dyn FileStore, dir: &str) -> StorageResult<Option<(ManifestState, u64)>> {
    let Some(number) = read_current(fs, dir)? else {
        return Ok(None);
    };
    let path = join(dir, &manifest_name(number));
    let log = read_log(fs, &path)?;
    let mut state = ManifestState::default();
    for (i, (ty, payload)) in log.records.iter().enumerate() {
        if *ty != RecordType::VersionEdit {
            return Err(StorageError::corruption(
                &path,
                "non-edit record in manifest",
            ));
        }
        let edit = VersionEdit::decode(payload, &path)?;
        if (i == 0) != edit.snapshot {
            return Err(StorageError::corruption(
                &path,
                "snapshot edit not first (or first not a snapshot)",
            ));
        }
        state.apply(&edit, &path)?;
    }
    if log.records.is_empty() {
        return Err(StorageError::corruption(
            &path,
            "current manifest has no snapshot",
        ));
    }
    if log.torn_tail_bytes > 0 {
        tracing::info!(
            path,
            bytes = log.torn_tail_bytes,
            "manifest: ignored torn final edit"
        );
    }
    if state.next_file_number <= number {
        return Err(StorageError::corruption(
            &path,
            "next file number not past the manifest's own",
        ));
    }
    Ok(Some((state, number)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fs::{SimFs, SimFsConfig};
    use crate::manifest::{KeyRange, TabletId};

    fn state() -> ManifestState {
        ManifestState {
            tablet_id: TabletId(3),
            range: KeyRange::all(),
            schema: vec![],
            next_file_number: 2,
            ..Default::default()
        }
    }

    #[test]
    fn switch_is_atomic_at_every_crash_point() -> StorageResult<()> {
        // Count the mutating ops of: manifest 1 current, then edits, then switch to manifest 5.
        let run = |fs: &SimFs| -> StorageResult<()> {
            let st = state();
            let _w = ManifestWriter::create(fs, "t", 1, &st)?;
            set_current(fs, "t", 1)?;
            let mut st2 = st.clone();
            st2.next_file_number = 6;
            st2.last_sequence = 99;
            let _w2 = ManifestWriter::create(fs, "t", 5, &st2)?;
            set_current(fs, "t", 5)?;
            Ok(())
        };
        let probe = SimFs::new(SimFsConfig::default());
        run(&probe)?;
        let total = probe.stats().mutating_ops;
        for k in 0..=total {
            let fs = SimFs::new(SimFsConfig {
                torn_writes: true,
                seed: k,
                ..Default::default()
            });
            fs.halt_after_mutating_ops(Some(k));
            let finished = run(&fs).is_ok();
            fs.crash();
            match recover(&fs, "t")? {
                None => assert!(k < total, "a finished switch must survive"),
                Some((st, n)) => {
                    assert!(n == 1 || n == 5);
                    assert_eq!(st.last_sequence, if n == 5 { 99 } else { 0 });
                }
            }
            if finished {
                assert_eq!(recover(&fs, "t")?.map(|(_, n)| n), Some(5));
            }
        }
        Ok(())
    }

    #[test]
    fn torn_final_edit_is_ignored() -> StorageResult<()> {
        let fs = SimFs::new(SimFsConfig::default());
        let mut w = ManifestWriter::create(&fs, "t", 1, &state())?;
        set_current(&fs, "t", 1)?;
        w.append(&VersionEdit {
            last_sequence: Some(5),
            ..Default::default()
        })?;
        let good_len = w.len();
        w.append(&VersionEdit {
            last_sequence: Some(9),
            ..Default::default()
        })?;
        // Cut the last edit in half, durably, as a torn write would.
        let full = fs.durable_contents("t/MANIFEST-000001").unwrap_or_default();
        let mut f = fs.create("t/MANIFEST-000001")?;
        f.append(&full[..(good_len as usize + full.len()) / 2])?;
        f.sync()?;
        fs.sync_dir("t")?;
        let (st, _) = recover(&fs, "t")?.ok_or(StorageError::Closed)?;
        assert_eq!(st.last_sequence, 5);
        Ok(())
    }
}
