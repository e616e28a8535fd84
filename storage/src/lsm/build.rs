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
/// keeps. `new_path()` names each output (allocating a file number). Every output is synced
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
        if writer.is_none() {
            let path = new_path();
            let file = spec.fs.create(&path)?;
            writer = Some((SstWriter::new(file, path.clone(), spec.sst.clone()), path));
        }
        if let Some((w, _)) = writer.as_mut() {
            w.add(key, it.value())?;
            if w.estimated_size_bytes() >= spec.target_file_size_bytes {
                if let Some((w, path)) = writer.take() {
                    finish_one(spec, w, path, &mut out)?;
                }
            }
        }
        it.next()?;
    }
    if let Some((w, path)) = writer.take() {
        finish_one(spec, w, path, &mut out)?;
    }
    Ok(out)
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
