//! Test helpers shared by the format-layer modules: an iterator model and an in-memory file.
//! Compiled only for tests; the engine's real fakes (SimFs) live in `fs/`.

use crate::error::StorageResult;
use crate::fs::{FsError, FsResult, ReadableFile, WritableFile};
use crate::iter::EntryIter;
use proptest::prelude::*;
use std::sync::{Arc, Mutex};

#[derive(Clone, Debug)]
pub enum Op {
    First,
    Last,
    Seek(Vec<u8>),
    SeekForPrev(Vec<u8>),
    Next,
    Prev,
}

pub fn arb_key() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(0u8..4, 0..4)
}

pub fn arb_op() -> impl Strategy<Value = Op> {
    prop_oneof![
        Just(Op::First),
        Just(Op::Last),
        arb_key().prop_map(Op::Seek),
        arb_key().prop_map(Op::SeekForPrev),
        Just(Op::Next),
        Just(Op::Next),
        Just(Op::Prev),
        Just(Op::Prev),
    ]
}

/// A model cursor over a sorted list of `(key, value)`; `None` = invalid.
pub struct Model {
    pub entries: Vec<(Vec<u8>, Vec<u8>)>,
    pub pos: Option<usize>,
}

impl Model {
    pub fn new(entries: Vec<(Vec<u8>, Vec<u8>)>) -> Self {
        Model { entries, pos: None }
    }

    pub fn apply(&mut self, op: &Op) {
        let n = self.entries.len();
        self.pos = match op {
            Op::First => (n > 0).then_some(0),
            Op::Last => n.checked_sub(1),
            Op::Seek(t) => {
                let p = self.entries.partition_point(|e| e.0 < *t);
                (p < n).then_some(p)
            }
            Op::SeekForPrev(t) => self.entries.partition_point(|e| e.0 <= *t).checked_sub(1),
            Op::Next => self.pos.and_then(|p| (p + 1 < n).then_some(p + 1)),
            Op::Prev => self.pos.and_then(|p| p.checked_sub(1)),
        };
    }
}

fn apply(it: &mut dyn EntryIter, op: &Op) -> StorageResult<()> {
    match op {
        Op::First => it.seek_to_first(),
        Op::Last => it.seek_to_last(),
        Op::Seek(t) => it.seek(t),
        Op::SeekForPrev(t) => it.seek_for_prev(t),
        Op::Next => it.next(),
        Op::Prev => it.prev(),
    }
}

pub fn check_iter(
    it: &mut dyn EntryIter,
    model: &mut Model,
    ops: &[Op],
) -> Result<(), TestCaseError> {
    for op in ops {
        // next/prev are only defined on a valid cursor.
        if matches!(op, Op::Next | Op::Prev) && model.pos.is_none() {
            continue;
        }
        prop_assert!(apply(it, op).is_ok());
        model.apply(op);
        match model.pos {
            None => prop_assert!(!it.valid(), "after {:?} expected invalid", op),
            Some(p) => {
                prop_assert!(it.valid(), "after {:?} expected valid", op);
                prop_assert_eq!(it.key(), model.entries[p].0.as_slice(), "after {:?}", op);
                prop_assert_eq!(it.value(), model.entries[p].1.as_slice());
            }
        }
    }
    Ok(())
}

/// A Vec-backed file: what the writer appends, the reader reads. Clones share the bytes.
#[derive(Clone, Default)]
pub struct MemFile {
    pub data: Arc<Mutex<Vec<u8>>>,
}

impl MemFile {
    pub fn new() -> Self {
        Self::default()
    }
    pub fn bytes(&self) -> Vec<u8> {
        self.data.lock().map(|d| d.clone()).unwrap_or_default()
    }
    pub fn from_bytes(bytes: Vec<u8>) -> Self {
        MemFile {
            data: Arc::new(Mutex::new(bytes)),
        }
    }
}

impl WritableFile for MemFile {
    fn append(&mut self, data: &[u8]) -> FsResult<()> {
        self.data
            .lock()
            .map_err(|_| FsError::Injected("poisoned".into()))?
            .extend_from_slice(data);
        Ok(())
    }
    fn sync(&mut self) -> FsResult<()> {
        Ok(())
    }
    fn len(&self) -> u64 {
        self.data.lock().map(|d| d.len() as u64).unwrap_or(0)
    }
}

impl ReadableFile for MemFile {
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> FsResult<()> {
        let d = self
            .data
            .lock()
            .map_err(|_| FsError::Injected("poisoned".into()))?;
        let short = || FsError::ShortRead {
            path: "mem".into(),
            offset,
            len: buf.len(),
            file_len: d.len() as u64,
        };
        let start = usize::try_from(offset).map_err(|_| short())?;
        let end = start.checked_add(buf.len()).ok_or_else(short)?;
        let src = d.get(start..end).ok_or_else(short)?;
        buf.copy_from_slice(src);
        Ok(())
    }
    fn len(&self) -> u64 {
        self.data.lock().map(|d| d.len() as u64).unwrap_or(0)
    }
}
