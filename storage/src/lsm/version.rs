//! `Version`: the immutable set of SSTs one tablet reads, per locality group and level.
//!
//! Level 0 holds flushed files that may overlap each other. Levels 1.. hold files whose
//! *visible* ranges (the file's keys intersected with its clip) are disjoint and sorted.
//! Correctness does not depend on level order for reads: every key carries its sequence
//! number, so a merged stream puts the newest write of a cell first whatever file it is in.
//! A new version is built for every flush or compaction and swapped in whole; readers keep
//! the `Arc<Version>` they started with, so files they read stay open even if deleted.
//!
//! Must not: do I/O beyond opening SST readers, or write manifests.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use crate::cache::BlockCache;
use crate::error::{StorageError, StorageResult};
use crate::fs::FileStore;
use crate::iter::{ClippedIter, EntryIter};
use crate::manifest::FileMeta;
use crate::sst::SstReader;

/// Levels per locality group (L0..L6).
pub const LEVEL_COUNT: usize = 7;

/// Block-cache ids must be unique among all readers sharing a cache in this process. They
/// never influence what a read returns, only cache hits, so a process-wide counter is fine.
static NEXT_CACHE_FILE_ID: AtomicU64 = AtomicU64::new(1);

/// An open SST as one tablet sees it.
pub struct TableFile {
    pub meta: FileMeta,
    pub reader: Arc<SstReader>,
}

impl TableFile {
    pub fn open(
        fs: &dyn FileStore,
        meta: FileMeta,
        cache: Option<Arc<BlockCache>>,
    ) -> StorageResult<Arc<TableFile>> {
        let file = fs.open(&meta.path)?;
        if file.len() != meta.size_bytes {
            return Err(StorageError::corruption(
                &meta.path,
                format!(
                    "size {} but the manifest says {}",
                    file.len(),
                    meta.size_bytes
                ),
            ));
        }
        let id = NEXT_CACHE_FILE_ID.fetch_add(1, Ordering::Relaxed);
        let reader = SstReader::open(file, meta.path.clone(), id, cache)?;
        if reader.smallest() != &meta.smallest[..] || reader.largest() != &meta.largest[..] {
            return Err(StorageError::corruption(
                &meta.path,
                "key bounds differ from the manifest",
            ));
        }
        Ok(Arc::new(TableFile { meta, reader }))
    }

    /// The file's entries, clipped to what this tablet may see.
    pub fn iter(&self) -> Box<dyn EntryIter> {
        let it = self.reader.iter();
        if self.meta.clip_lower.is_none() && self.meta.clip_upper.is_none() {
            return it;
        }
        Box::new(ClippedIter::new(
            it,
            self.meta.clip_lower.clone(),
            self.meta.clip_upper.clone(),
        ))
    }

    /// True if every visible key of `self` sorts before every visible key of `next`.
    pub fn visibly_before(&self, next: &TableFile) -> bool {
        let b = next.meta.effective_smallest();
        self.meta.largest[..] < *b || self.meta.clip_upper.as_ref().is_some_and(|u| u[..] <= *b)
    }
}

#[derive(Clone, Default)]
pub struct Version {
    /// `[lg][level]` → files; levels >= 1 sorted by visible range.
    pub lgs: Vec<Vec<Vec<Arc<TableFile>>>>,
}

impl Version {
    pub fn empty(lg_count: usize) -> Version {
        Version {
            lgs: vec![vec![Vec::new(); LEVEL_COUNT]; lg_count],
        }
    }

    /// A version holding `files`; refuses placements that break the level invariants.
    pub fn from_files(lg_count: usize, files: Vec<Arc<TableFile>>) -> StorageResult<Version> {
        let mut v = Version::empty(lg_count);
        for f in files {
            v.place(f)?;
        }
        v.sort_and_check()?;
        Ok(v)
    }

    fn place(&mut self, f: Arc<TableFile>) -> StorageResult<()> {
        let (lg, level) = (f.meta.lg as usize, f.meta.level as usize);
        let slot = self
            .lgs
            .get_mut(lg)
            .and_then(|l| l.get_mut(level))
            .ok_or_else(|| {
                StorageError::corruption(&f.meta.path, format!("bad lg {lg} or level {level}"))
            })?;
        slot.push(f);
        Ok(())
    }

    fn sort_and_check(&mut self) -> StorageResult<()> {
        for lg in &mut self.lgs {
            lg[0].sort_by(|a, b| a.meta.path.cmp(&b.meta.path));
            for files in lg.iter_mut().skip(1) {
                files.sort_by(|a, b| a.meta.effective_smallest().cmp(b.meta.effective_smallest()));
                for w in files.windows(2) {
                    if !w[0].visibly_before(&w[1]) {
                        return Err(StorageError::corruption(
                            &w[1].meta.path,
                            format!("overlaps {} in level {}", w[0].meta.path, w[0].meta.level),
                        ));
                    }
                }
            }
        }
        Ok(())
    }

    /// The version after removing `removed` (lg, level, path) and adding `added`.
    pub fn apply(
        &self,
        removed: &[(u32, u32, String)],
        added: Vec<Arc<TableFile>>,
    ) -> StorageResult<Version> {
        let mut v = self.clone();
        for (lg, level, path) in removed {
            let files = v
                .lgs
                .get_mut(*lg as usize)
                .and_then(|l| l.get_mut(*level as usize))
                .ok_or_else(|| StorageError::corruption(path, "removed from a bad level"))?;
            let before = files.len();
            files.retain(|f| f.meta.path != *path);
            assert_eq!(
                files.len() + 1,
                before,
                "removed file {path} was in the version once"
            );
        }
        for f in added {
            v.place(f)?;
        }
        v.sort_and_check()?;
        Ok(v)
    }

    pub fn files(&self) -> impl Iterator<Item = &Arc<TableFile>> {
        self.lgs.iter().flatten().flatten()
    }

    pub fn file_count(&self) -> usize {
        self.files().count()
    }

    pub fn level_bytes(&self, lg: usize, level: usize) -> u64 {
        self.lgs[lg][level].iter().map(|f| f.meta.size_bytes).sum()
    }

    /// Files of `(lg, level)` with a visible key in `[lo, hi]`.
    pub fn overlapping(
        &self,
        lg: usize,
        level: usize,
        lo: &[u8],
        hi: &[u8],
    ) -> Vec<Arc<TableFile>> {
        self.lgs[lg][level]
            .iter()
            .filter(|f| f.meta.overlaps(lo, hi))
            .cloned()
            .collect()
    }
}
