//! `LevelIter`: one iterator over a sorted level (L1..) of non-overlapping files, opening one
//! file's iterator at a time, so a scan over a level costs one child in the merge, not one
//! per file.
//!
//! Must not: be used for level 0 (its files overlap) or skip the per-file clip.

use std::sync::Arc;

use super::version::TableFile;
use crate::error::StorageResult;
use crate::iter::EntryIter;

pub struct LevelIter {
    files: Vec<Arc<TableFile>>,
    /// Index of the file `cur` iterates; `files.len()` when invalid.
    idx: usize,
    cur: Option<Box<dyn EntryIter>>,
}

impl LevelIter {
    pub fn new(files: Vec<Arc<TableFile>>) -> Self {
        debug_assert!(files.windows(2).all(|w| w[0].visibly_before(&w[1])));
        let idx = files.len();
        LevelIter {
            files,
            idx,
            cur: None,
        }
    }

    fn open(&mut self, idx: usize) {
        self.idx = idx;
        self.cur = self.files.get(idx).map(|f| f.iter());
    }

    fn invalidate(&mut self) {
        self.idx = self.files.len();
        self.cur = None;
    }

    /// Move forward over files whose visible part is empty from where we are.
    fn skip_forward(&mut self) -> StorageResult<()> {
        while self.cur.as_ref().is_some_and(|c| !c.valid()) {
            let next = self.idx + 1;
            if next >= self.files.len() {
                self.invalidate();
                break;
            }
            self.open(next);
            if let Some(c) = self.cur.as_mut() {
                c.seek_to_first()?;
            }
        }
        Ok(())
    }

    fn skip_backward(&mut self) -> StorageResult<()> {
        while self.cur.as_ref().is_some_and(|c| !c.valid()) {
            if self.idx == 0 {
                self.invalidate();
                break;
            }
            self.open(self.idx - 1);
            if let Some(c) = self.cur.as_mut() {
                c.seek_to_last()?;
            }
        }
        Ok(())
    }
}

impl EntryIter for LevelIter {
    fn seek_to_first(&mut self) -> StorageResult<()> {
        if self.files.is_empty() {
            return Ok(());
        }
        self.open(0);
        if let Some(c) = self.cur.as_mut() {
            c.seek_to_first()?;
        }
        self.skip_forward()
    }

    fn seek_to_last(&mut self) -> StorageResult<()> {
        if self.files.is_empty() {
            return Ok(());
        }
        self.open(self.files.len() - 1);
        if let Some(c) = self.cur.as_mut() {
            c.seek_to_last()?;
        }
        self.skip_backward()
    }

    fn seek(&mut self, target: &[u8]) -> StorageResult<()> {
        // The first file whose *visible* keys may reach `target`. Judging by the physical
        // `largest` alone is wrong for a clipped file: its clip may end below `target` while
        // the next file starts between the clip's end and `target`, and stepping into that
        // next file with seek_to_first would land below `target`.
        let i = self.files.partition_point(|f| {
            f.meta.largest[..] < *target
                || f.meta.clip_upper.as_ref().is_some_and(|u| u[..] <= *target)
        });
        if i >= self.files.len() {
            self.invalidate();
            return Ok(());
        }
        self.open(i);
        if let Some(c) = self.cur.as_mut() {
            c.seek(target)?;
        }
        self.skip_forward()
    }

    fn seek_for_prev(&mut self, target: &[u8]) -> StorageResult<()> {
        // The last file whose visible keys start at or below `target`.
        let i = self
            .files
            .partition_point(|f| f.meta.effective_smallest() <= target);
        if i == 0 {
            self.invalidate();
            return Ok(());
        }
        self.open(i - 1);
        if let Some(c) = self.cur.as_mut() {
            c.seek_for_prev(target)?;
        }
        self.skip_backward()
    }

    fn next(&mut self) -> StorageResult<()> {
        if let Some(c) = self.cur.as_mut() {
            c.next()?;
        }
        self.skip_forward()
    }

    fn prev(&mut self) -> StorageResult<()> {
        if let Some(c) = self.cur.as_mut() {
            c.prev()?;
        }
        self.skip_backward()
    }

    fn valid(&self) -> bool {
        self.cur.as_ref().is_some_and(|c| c.valid())
    }
    fn key(&self) -> &[u8] {
        self.cur.as_ref().map_or(&[], |c| c.key())
    }
    fn value(&self) -> &[u8] {
        self.cur.as_ref().map_or(&[], |c| c.value())
    }
}
