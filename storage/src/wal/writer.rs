//! `WalWriter`: appends write batches to one WAL file, one append (and at most one sync) per
//! group of batches.
//!
//! Must not: assign sequence numbers or touch memtables (the tablet does, under its commit
//! lock), or decide when to roll to a new file (the tablet does, with the memtable switch).

use super::batch::WriteBatch;
use super::record::{encode_record, RecordType};
use crate::error::StorageResult;
use crate::fs::WritableFile;

pub struct WalWriter {
    file: Box<dyn WritableFile>,
    path: String,
    number: u64,
    buf: Vec<u8>,
    /// One record's payload while it is framed (kept to reuse its allocation).
    payload: Vec<u8>,
    /// Bytes appended and known durable, for the tablet's accounting and assertions.
    synced_len: u64,
}

impl WalWriter {
    pub fn new(file: Box<dyn WritableFile>, path: String, number: u64) -> Self {
        assert!(file.is_empty(), "a WAL is always a fresh file");
        WalWriter {
            file,
            path,
            number,
            buf: Vec::new(),
            payload: Vec::new(),
            synced_len: 0,
        }
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

    /// Append one record per batch, batch `i` starting at sequence `seqs[i]`, in a single
    /// append; then sync if asked. On error the file's tail is unknown: the caller must stop
    /// using this WAL (a torn record there is harmless, it is dropped at replay).
    pub fn append_group(
        &mut self,
        batches: &[&WriteBatch],
        seqs: &[u64],
        sync: bool,
    ) -> StorageResult<()> {
        assert_eq!(batches.len(), seqs.len());
        self.buf.clear();
        for (b, &seq) in batches.iter().zip(seqs) {
            assert!(!b.is_empty(), "empty batches never reach the WAL");
            self.payload.clear();
            b.encode_record_payload(seq, &mut self.payload);
            encode_record(&mut self.buf, RecordType::WriteBatch, &self.payload);
        }
        self.file.append(&self.buf)?;
        if sync {
            self.sync()?;
        }
        Ok(())
    }

    pub fn sync(&mut self) -> StorageResult<()> {
        self.file.sync()?;
        self.synced_len = self.file.len();
        Ok(())
    }

    pub fn synced_len(&self) -> u64 {
        self.synced_len
    }
}
