//! Group commit for threaded callers: many writers, one WAL append and one sync per group.
//!
//! Leader/follower, as in LevelDB's `DBImpl::Write`: a writer enqueues its batch; if no
//! leader is running it becomes the leader, takes every batch queued so far (up to
//! `group_bytes_max`), releases the queue lock, commits them with one call of the tablet's
//! commit function (one append, one sync), then publishes each writer's result. A group is
//! synced if any of its writers asked for sync.
//!
//! While a group's sync is in flight the queue lock is free, so every writer that arrives
//! then queues up and the whole queue becomes the *next* group, taken in one piece by the
//! next leader (the test `writers_arriving_during_a_sync_form_the_next_group` pins this).
//!
//! Wake-ups are targeted, not broadcast: each waiting writer sleeps on its own condition
//! variable, and a finishing leader wakes only the writers of its group (their results are
//! ready) and the writer at the head of the queue (the next leader). A broadcast would wake
//! every queued writer each group only for all but one to go back to sleep; on a machine
//! with fewer cores than writers those wake-ups delay the next leader and so the next sync.
//!
//! Must not: do I/O itself or hold the queue lock during the commit (followers must be able
//! to enqueue while the leader syncs — that is where the batching comes from). A
//! single-threaded actor does not need this: it calls the tablet's `write_group` directly.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};

use super::batch::WriteBatch;
use crate::error::{StorageError, StorageResult};

struct Waiting {
    ticket: u64,
    batch: WriteBatch,
    sync: bool,
    /// This writer sleeps here, with the queue lock, until its result or its turn to lead.
    wake: Arc<Condvar>,
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
    group_bytes_max: usize,
}

/// A leader's duty: give up the leadership and wake who must run next. Dropped without
/// [`LeaderGuard::finish`] (the commit function panicked), it fails the group's followers so
/// that nobody waits forever.
struct LeaderGuard<'a> {
    gc: &'a GroupCommit,
    /// The followers in this group: (ticket, where they sleep).
    followers: Vec<(u64, Arc<Condvar>)>,
    finished: bool,
}

impl LeaderGuard<'_> {
    /// Publish the followers' results (`seqs` in follower order), hand over leadership and
    /// wake the next leader (the head of the queue, which formed while this group committed)
    /// and the followers.
    fn finish(mut self, seqs: StorageResult<Vec<u64>>) {
        let mut q = self.gc.lock();
        for (i, (ticket, _)) in self.followers.iter().enumerate() {
            let r = match &seqs {
                Ok(s) => Ok(s[i]),
                Err(e) => Err(e.clone()),
            };
            q.done.insert(*ticket, r);
        }
        self.finished = true;
        self.release(q);
    }

    fn release(&self, mut q: MutexGuard<'_, Queue>) {
        q.leader_active = false;
        let next = q.waiting.front().map(|w| w.wake.clone());
        drop(q);
        // The next leader first: the sync is the bottleneck, so the next one should start as
        // soon as possible; the followers only return to their callers.
        if let Some(next) = next {
            next.notify_one();
        }
        for (_, wake) in &self.followers {
            wake.notify_one();
        }
    }
}

impl Drop for LeaderGuard<'_> {
    fn drop(&mut self) {
        if self.finished {
            return;
        }
        let mut q = self.gc.lock();
        for (ticket, _) in &self.followers {
            q.done.insert(*ticket, Err(StorageError::Closed));
        }
        self.release(q);
    }
}

impl GroupCommit {
    pub fn new(group_bytes_max: usize) -> Self {
        assert!(group_bytes_max > 0);
        GroupCommit {
            queue: Mutex::new(Queue::default()),
            group_bytes_max,
        }
    }

    fn lock(&self) -> MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Writers queued for the next group (for tests and statistics).
    pub fn queued(&self) -> usize {
        self.lock().waiting.len()
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
            let guard = LeaderGuard {
                gc: self,
                followers: Vec::new(),
                finished: false,
            };
            let result = commit(&[batch], sync);
            guard.finish(Ok(Vec::new()));
            return result.map(|seqs| {
                assert_eq!(seqs.len(), 1);
                seqs[0]
            });
        }
        let me = q.next_ticket;
        q.next_ticket += 1;
        let wake = Arc::new(Condvar::new());
        q.waiting.push_back(Waiting {
            ticket: me,
            batch: batch.clone(),
            sync,
            wake: wake.clone(),
        });
        loop {
            if let Some(r) = q.done.remove(&me) {
                return r;
            }
            if q.leader_active {
                q = wake.wait(q).unwrap_or_else(|e| e.into_inner());
                continue;
            }
            // Lead: take everything queued (this writer's batch is among it).
            q.leader_active = true;
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
            drop(q);
            let mine = group.iter().position(|w| w.ticket == me);
            let guard = LeaderGuard {
                gc: self,
                followers: group
                    .iter()
                    .filter(|w| w.ticket != me)
                    .map(|w| (w.ticket, w.wake.clone()))
                    .collect(),
                finished: false,
            };
            let Some(mine) = mine else {
                // This writer's batch lies beyond the byte budget: it only led for the head
                // of the queue, and waits for a later group.
                let result = commit_refs(&group, &mut commit);
                finish_group(guard, &group, usize::MAX, result);
                q = self.lock();
                continue;
            };
            let result = commit_refs(&group, &mut commit);
            let own = match &result {
                Ok(seqs) => Ok(seqs[mine]),
                Err(e) => Err(e.clone()),
            };
            finish_group(guard, &group, mine, result);
            return own;
        }
    }
}

fn commit_refs<F>(group: &[Waiting], commit: &mut F) -> StorageResult<Vec<u64>>
where
    F: FnMut(&[&WriteBatch], bool) -> StorageResult<Vec<u64>>,
{
    let sync_any = group.iter().any(|w| w.sync);
    let refs: Vec<&WriteBatch> = group.iter().map(|w| &w.batch).collect();
    let seqs = commit(&refs, sync_any)?;
    assert_eq!(seqs.len(), group.len(), "one sequence number per batch");
    Ok(seqs)
}

/// Publish a group's results to its followers (every member but the one at `leader_pos`).
fn finish_group(
    guard: LeaderGuard<'_>,
    group: &[Waiting],
    leader_pos: usize,
    result: StorageResult<Vec<u64>>,
) {
    let follower_seqs = result.map(|seqs| {
        seqs.into_iter()
            .zip(group)
            .enumerate()
            .filter(|(i, _)| *i != leader_pos)
            .map(|(_, (s, _))| s)
            .collect()
    });
    guard.finish(follower_seqs);
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
    /// A commit function standing for the tablet's: records each group's size and sync flag,
    /// hands out sequence numbers, and (for the first group only) blocks in its "sync" until
    /// the test opens the gate.
    struct FakeWal {
        groups: Mutex<Vec<(usize, bool)>>,
        next_seq: Mutex<u64>,
        in_sync: std::sync::mpsc::SyncSender<()>,
        gate: Mutex<bool>,
        gate_cv: Condvar,
    }

    impl FakeWal {
        fn commit(&self, batches: &[&WriteBatch], sync: bool) -> StorageResult<Vec<u64>> {
            let first = {
                let mut g = self.groups.lock().unwrap_or_else(|e| e.into_inner());
                g.push((batches.len(), sync));
                g.len() == 1
            };
            if first {
                let _ = self.in_sync.send(());
                let mut open = self.gate.lock().unwrap_or_else(|e| e.into_inner());
                while !*open {
                    open = self.gate_cv.wait(open).unwrap_or_else(|e| e.into_inner());
                }
            }
            let mut n = self.next_seq.lock().unwrap_or_else(|e| e.into_inner());
            Ok(batches
                .iter()
                .map(|b| {
                    *n += b.len() as u64;
                    *n
                })
                .collect())
        }
    }

    #[test]
    fn writers_arriving_during_a_sync_form_the_next_group() {
        let gc = GroupCommit::new(1 << 20);
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        let wal = FakeWal {
            groups: Mutex::new(Vec::new()),
            next_seq: Mutex::new(0),
            in_sync: tx,
            gate: Mutex::new(false),
            gate_cv: Condvar::new(),
        };
        let batch = |r: &str| {
            let mut wb = WriteBatch::new();
            wb.put(r.as_bytes(), b"f", b"q", 1, b"v");
            wb
        };
        let late = 3usize;
        let seqs: Vec<StorageResult<u64>> = std::thread::scope(|s| {
            let (gc, wal) = (&gc, &wal);
            let first = s.spawn(move || gc.commit(&batch("a"), true, |b, y| wal.commit(b, y)));
            // The first writer leads a group of one and is now inside its sync.
            rx.recv().unwrap_or_default();
            let others: Vec<_> = (0..late)
                .map(|i| {
                    s.spawn(move || {
                        gc.commit(&batch(&format!("late{i}")), i == 0, |b, y| wal.commit(b, y))
                    })
                })
                .collect();
            // Every late writer is queued behind the in-flight sync (no timing: wait for the
            // queue itself), then the sync completes.
            while gc.queued() < late {
                std::thread::yield_now();
            }
            *wal.gate.lock().unwrap_or_else(|e| e.into_inner()) = true;
            wal.gate_cv.notify_all();
            std::iter::once(first)
                .chain(others)
                .map(|h| h.join().unwrap_or(Err(StorageError::Closed)))
                .collect()
        });
        let groups = wal.groups.lock().map(|g| g.clone()).unwrap_or_default();
        assert_eq!(
            groups,
            vec![(1, true), (late, true)],
            "the writers that arrived during the first sync are one group with one sync"
        );
        let mut got: Vec<u64> = seqs.into_iter().map(|r| r.unwrap_or(0)).collect();
        assert_eq!(got[0], 1);
        got.sort_unstable();
        assert_eq!(
            got,
            vec![1, 2, 3, 4],
            "each writer got its own batch's sequence"
        );
        assert_eq!(gc.queued(), 0);
    }

    #[test]
    fn a_panicking_commit_fails_its_followers_instead_of_hanging_them() {
        let gc = GroupCommit::new(1 << 20);
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        let gate = (Mutex::new(false), Condvar::new());
        let mut wb = WriteBatch::new();
        wb.put(b"r", b"f", b"q", 1, b"v");
        let follower = std::thread::scope(|s| {
            let (gc, gate, wb) = (&gc, &gate, &wb);
            let leader = s.spawn(move || {
                gc.commit(wb, true, |_, _| {
                    let _ = tx.send(());
                    let mut open = gate.0.lock().unwrap_or_else(|e| e.into_inner());
                    while !*open {
                        open = gate.1.wait(open).unwrap_or_else(|e| e.into_inner());
                    }
                    Ok(vec![1])
                })
            });
            rx.recv().unwrap_or_default();
            // Two followers queue; the first one to lead panics inside its commit.
            let followers: Vec<_> = (0..2)
                .map(|_| {
                    s.spawn(move || {
                        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                            gc.commit(wb, true, |_, _| panic!("commit panicked"))
                        }))
                    })
                })
                .collect();
            while gc.queued() < 2 {
                std::thread::yield_now();
            }
            *gate.0.lock().unwrap_or_else(|e| e.into_inner()) = true;
            gate.1.notify_all();
            assert_eq!(leader.join().ok(), Some(Ok(1)));
            followers
                .into_iter()
                .map(|h| h.join().ok())
                .collect::<Vec<_>>()
        });
        // One follower led and panicked; the other got an error rather than waiting forever.
        let panicked = follower
            .iter()
            .filter(|r| matches!(r, Some(Err(_))))
            .count();
        let failed = follower
            .iter()
            .filter(|r| matches!(r, Some(Ok(Err(StorageError::Closed)))))
            .count();
        assert_eq!((panicked, failed), (1, 1));
        assert_eq!(gc.commit(&wb, true, |b, _| Ok(vec![9; b.len()])), Ok(9));
    }
}
