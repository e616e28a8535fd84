//! Writing SSTs from a key-ordered stream: the shared back end of flush and compaction.
//!
//! Must not: pick inputs or install results; the tablet allocates file numbers, records the
//! outputs in its manifest and only then lets anyone read them.

use std::sync::Arc;

use crate::cache::BlockCache;
use crate::error::StorageResult;
use crate::fs::FileStore;
use crate::iter::EntryIter;
use crate::manifest::{FileMeta, TabletId};
use crate::read::CompactionFilter;
use crate::sst::{SstOptions, SstWriter};

use super::version::TableFile;

/// Where and how outputs are written.
pub struct OutputSpec<'a> {
    pub fs: &'a dyn FileStore,
    pub tablet: TabletId,
    pub lg: u32,
    pub level: u32,
    /// Start a new output file once the current one reaches this size.
    pub target_file_size_bytes: u64,
    pub sst: SstOptions,
    pub cache: Option<Arc<BlockCache>>,
}

/// What a build wrote.
pub struct BuildOutput {
    pub files: Vec<Arc<TableFile>>,
    pub bytes_written: u64,
    pub entries_in: u64,
    pub entries_dropped: u64,
}

/// Drain `it` (positioned at its first entry) into new SSTs, keeping only what `filter`
/// keeps. A full output is closed only where the row changes (see `lsm/compaction.rs`). `new_path()` names each output (allocating a file number). Every output is synced
/// by `SstWriter::finish`; the caller syncs the directory before recording them.
pub fn build_tables(
    spec: &OutputSpec<'_>,
    it: &mut dyn EntryIter,
    mut filter: Option<&mut CompactionFilter>,
    new_path: &mut dyn FnMut() -> String,
) -> StorageResult<BuildOutput> {
    let mut out = BuildOutput {
        files: Vec::new(),
        bytes_written: 0,
        entries_in: 0,
        entries_dropped: 0,
    };
    let mut writer: Option<(SstWriter, String)> = None;
    let mut last_key: Vec<u8> = Vec::new();
    let mut last_kept: Vec<u8> = Vec::new();
    let mut last_kept_row_len = 0usize;
    let mut full = false;
    while it.valid() {
        out.entries_in += 1;
        let key = it.key();
        assert!(
            last_key.is_empty() || key > &last_key[..],
            "build input is strictly increasing"
        );
        last_key.clear();
        last_key.extend_from_slice(key);
        let keep = match filter.as_deref_mut() {
            Some(f) => f.keep(key)?,
            None => true,
        };
        if !keep {
            out.entries_dropped += 1;
            it.next()?;
            continue;
        }
        // Cut a full output only between rows, so no row spans two files of a level.
        if full && !key.starts_with(&last_kept[..last_kept_row_len]) {
            if let Some((w, path)) = writer.take() {
                finish_one(spec, w, path, &mut out)?;
            }
            full = false;
        }
        if writer.is_none() {
            let path = new_path();
            let file = spec.fs.create(&path)?;
            writer = Some((SstWriter::new(file, path.clone(), spec.sst.clone()), path));
        }
        if let Some((w, _)) = writer.as_mut() {
            w.add(key, it.value())?;
            full = w.estimated_size_bytes() >= spec.target_file_size_bytes;
        }
        last_kept_row_len = row_prefix_len(key);
        last_kept.clear();
        last_kept.extend_from_slice(key);
        it.next()?;
    }
    if let Some((w, path)) = writer.take() {
        finish_one(spec, w, path, &mut out)?;
    }
    Ok(out)
}

/// Length of the escaped row prefix (through its `00 01` terminator) of an encoded key.
fn row_prefix_len(key: &[u8]) -> usize {
    let mut i = 0;
    while i + 1 < key.len() {
        if key[i] == 0 {
            if key[i + 1] == 0x01 {
                return i + 2;
            }
            i += 2;
        } else {
            i += 1;
        }
    }
    key.len()
}

fn finish_one(
    spec: &OutputSpec<'_>,
    w: SstWriter,
    path: String,
    out: &mut BuildOutput,
) -> StorageResult<()> {
    let info = w.finish()?;
    assert!(
        info.entries > 0,
        "outputs are only started for a kept entry"
    );
    out.bytes_written += info.file_size;
    let meta = FileMeta {
        lg: spec.lg,
        level: spec.level,
        path,
        writer: spec.tablet,
        size_bytes: info.file_size,
        entries: info.entries,
        smallest: info.smallest,
        largest: info.largest,
        clip_lower: None,
        clip_upper: None,
    };
    out.files
        .push(TableFile::open(spec.fs, meta, spec.cache.clone())?);
    Ok(())
}
