//! Group commit for threaded callers: many writers, one WAL append and one sync per group.
//!
//! Leader/follower, as in LevelDB's `DBImpl::Write`: a writer enqueues its batch; if no
//! leader is running it becomes the leader, takes the batches queued so far (up to
//! `group_bytes_max`), releases the queue lock, commits them with one call of the tablet's
//! commit function, then publishes each writer's result and wakes the followers. A follower
//! whose batch was not taken waits and may lead the next group. A group is synced if any of
//! its writers asked for sync.
//!
//! Must not: do I/O itself or hold the queue lock during the commit (followers must be able
//! to enqueue while the leader syncs — that is where the batching comes from). A
//! single-threaded actor does not need this: it calls the tablet's `write_group` directly.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Condvar, Mutex, MutexGuard};

use super::batch::WriteBatch;
use crate::error::StorageResult;

struct Waiting {
    ticket: u64,
    batch: WriteBatch,
    sync: bool,
}

#[derive(Default)]
struct Queue {
    next_ticket: u64,
    waiting: VecDeque<Waiting>,
    /// Results for writers that have not collected them yet.
    done: BTreeMap<u64, StorageResult<u64>>,
    leader_active: bool,
}

pub struct GroupCommit {
    queue: Mutex<Queue>,
    cv: Condvar,
    group_bytes_max: usize,
}

/// Clears `leader_active` even if the commit function panics, so followers do not hang.
struct LeaderGuard<'a> {
    gc: &'a GroupCommit,
}

impl Drop for LeaderGuard<'_> {
    fn drop(&mut self) {
        let mut q = self.gc.lock();
        q.leader_active = false;
        self.gc.cv.notify_all();
    }
}

impl GroupCommit {
    pub fn new(group_bytes_max: usize) -> Self {
        assert!(group_bytes_max > 0);
        GroupCommit {
            queue: Mutex::new(Queue::default()),
            cv: Condvar::new(),
            group_bytes_max,
        }
    }

    fn lock(&self) -> MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Commit `batch` as part of some group. `commit(batches, sync)` must write them in order
    /// and return the last sequence number of each. Returns this batch's last sequence number.
    pub fn commit<F>(&self, batch: &WriteBatch, sync: bool, mut commit: F) -> StorageResult<u64>
    where
        F: FnMut(&[&WriteBatch], bool) -> StorageResult<Vec<u64>>,
    {
        let mut q = self.lock();
        if !q.leader_active && q.waiting.is_empty() {
            // Nobody to batch with: lead a group of one without copying the batch.
            q.leader_active = true;
            drop(q);
            let guard = LeaderGuard { gc: self };
            let result = commit(&[batch], sync);
            drop(guard);
            return result.map(|seqs| {
                assert_eq!(seqs.len(), 1);
                seqs[0]
            });
        }
        let me = q.next_ticket;
        q.next_ticket += 1;
        q.waiting.push_back(Waiting {
            ticket: me,
            batch: batch.clone(),
            sync,
        });
        loop {
            if let Some(r) = q.done.remove(&me) {
                return r;
            }
            if q.leader_active {
                q = self.cv.wait(q).unwrap_or_else(|e| e.into_inner());
                continue;
            }
            q.leader_active = true;
            let guard = LeaderGuard { gc: self };
            let mut group = Vec::new();
            let mut bytes = 0usize;
            while let Some(w) = q.waiting.front() {
                if !group.is_empty() && bytes + w.batch.size_bytes() > self.group_bytes_max {
                    break;
                }
                bytes += w.batch.size_bytes();
                if let Some(w) = q.waiting.pop_front() {
                    group.push(w);
                }
            }
            assert!(!group.is_empty(), "the leader's own batch is queued");
            drop(q);
            let sync_any = group.iter().any(|w| w.sync);
            let refs: Vec<&WriteBatch> = group.iter().map(|w| &w.batch).collect();
            let result = commit(&refs, sync_any);
            q = self.lock();
            match result {
                Ok(seqs) => {
                    assert_eq!(seqs.len(), group.len());
                    for (w, s) in group.iter().zip(seqs) {
                        q.done.insert(w.ticket, Ok(s));
                    }
                }
                Err(e) => {
                    for w in &group {
                        q.done.insert(w.ticket, Err(e.clone()));
                    }
                }
            }
            drop(q);
            drop(guard);
            q = self.lock();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU64, Ordering};

    #[test]
    fn threaded_writers_each_get_their_own_sequence() {
        let gc = GroupCommit::new(1 << 20);
        let next_seq = Mutex::new(1u64);
        let calls = AtomicU64::new(0);
        let committed = Mutex::new(Vec::new());
        let writers = 16u64;
        let per_writer = 50u64;
        let seqs: Vec<Vec<u64>> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..writers)
                .map(|t| {
                    let (gc, next_seq, calls, committed) = (&gc, &next_seq, &calls, &committed);
                    s.spawn(move || {
                        (0..per_writer)
                            .map(|i| {
                                let mut wb = WriteBatch::new();
                                wb.put(format!("{t}-{i}").as_bytes(), b"f", b"q", 1, b"v");
                                gc.commit(&wb, i % 2 == 0, |batches, _sync| {
                                    calls.fetch_add(1, Ordering::Relaxed);
                                    let mut n = next_seq.lock().unwrap_or_else(|e| e.into_inner());
                                    let mut out = Vec::new();
                                    for b in batches {
                                        *n += b.len() as u64;
                                        out.push(*n - 1);
                                        committed
                                            .lock()
                                            .unwrap_or_else(|e| e.into_inner())
                                            .push((*b).clone());
                                    }
                                    Ok(out)
                                })
                            })
                            .collect::<StorageResult<Vec<u64>>>()
                            .unwrap_or_default()
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().unwrap_or_default())
                .collect()
        });
        let mut all: Vec<u64> = seqs.iter().flatten().copied().collect();
        assert_eq!(all.len() as u64, writers * per_writer);
        all.sort_unstable();
        all.dedup();
        assert_eq!(
            all.len() as u64,
            writers * per_writer,
            "sequence numbers are unique"
        );
        assert_eq!(
            committed.lock().map(|c| c.len()).unwrap_or(0) as u64,
            writers * per_writer
        );
        assert!(calls.load(Ordering::Relaxed) <= writers * per_writer);
        // Each writer's own batches were committed in its program order.
        for s in &seqs {
            assert!(s.windows(2).all(|w| w[0] < w[1]));
        }
    }

    #[test]
    fn a_failed_group_fails_every_writer_in_it() {
        let gc = GroupCommit::new(1 << 20);
        let mut wb = WriteBatch::new();
        wb.delete_row(b"r", 1);
        let r = gc.commit(&wb, true, |_, _| Err(crate::StorageError::Closed));
        assert_eq!(r, Err(crate::StorageError::Closed));
        assert_eq!(gc.commit(&wb, true, |b, _| Ok(vec![7; b.len()])), Ok(7));
    }
}
