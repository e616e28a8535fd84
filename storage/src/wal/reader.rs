//! WAL replay: the batches of one WAL file in order, up to a torn tail.
//!
//! Must not: apply anything. The tablet decides where replayed batches go and checks that
//! sequence numbers only grow.

use super::batch::WriteBatch;
use super::record::{read_log, RecordType};
use crate::error::{StorageError, StorageResult};
use crate::fs::FileStore;

/// What one WAL file held.
#[derive(Debug, Default)]
pub struct WalReplay {
    /// `(first_seq, batch)` in log order.
    pub batches: Vec<(u64, WriteBatch)>,
    pub torn_tail_bytes: u64,
}

pub fn replay_wal(fs: &dyn FileStore, path: &str) -> StorageResult<WalReplay> {
    let log = read_log(fs, path)?;
    let mut out = WalReplay {
        batches: Vec::with_capacity(log.records.len()),
        torn_tail_bytes: log.torn_tail_bytes,
    };
    let mut next_seq_min = 0u64;
    for (ty, payload) in log.records {
        if ty != RecordType::WriteBatch {
            return Err(StorageError::corruption(
                path,
                format!("{ty:?} record in a WAL"),
            ));
        }
        let (seq, batch) = WriteBatch::decode_record_payload(&payload, path)?;
        if seq < next_seq_min {
            return Err(StorageError::corruption(
                path,
                format!("sequence {seq} goes backwards"),
            ));
        }
        next_seq_min = seq + batch.len() as u64;
        out.batches.push((seq, batch));
    }
    if out.torn_tail_bytes > 0 {
        tracing::info!(path, bytes = out.torn_tail_bytes, "wal: dropped torn tail");
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fs::{SimFs, SimFsConfig};
    use crate::wal::WalWriter;

    #[test]
    fn group_append_then_replay_with_torn_tail() -> StorageResult<()> {
        let fs = SimFs::new(SimFsConfig {
            torn_writes: true,
            seed: 5,
            ..Default::default()
        });
        let mut w = WalWriter::new(fs.create("t/1.wal")?, "t/1.wal".into(), 1);
        fs.sync_dir("t")?;
        let mut a = WriteBatch::new();
        a.put(b"r1", b"f", b"q", 1, b"v1");
        let mut b = WriteBatch::new();
        b.put(b"r2", b"f", b"q", 1, b"v2");
        b.delete_row(b"r0", 5);
        w.append_group(&[&a, &b], &[1, 2], true)?;
        let mut c = WriteBatch::new();
        c.put(b"r3", b"f", b"q", 1, &[9u8; 300]);
        w.append_group(&[&c], &[4], false)?;
        let before = replay_wal(&fs, "t/1.wal")?;
        assert_eq!(before.batches.len(), 3);
        fs.crash();
        let after = replay_wal(&fs, "t/1.wal")?;
        // The synced group survives whole; the unsynced one is all or nothing.
        assert!(after.batches.len() == 2 || after.batches.len() == 3);
        assert_eq!(after.batches[0], (1, a));
        assert_eq!(after.batches[1], (2, b));
        Ok(())
    }
}
