//! Group commit for threaded callers: many writers, one WAL append and one sync per group.
//!
//! Leader/follower, as in LevelDB's `DBImpl::Write`, with two changes that matter when there
//! are more writers than cores.
//!
//! **Groups, not writers, are queued.** A writer appends its batch to the group forming at the
//! back of the queue (a new group opens when that one would pass `group_bytes_max`). Any
//! member of the group at the front may lead it once no other group is committing: the leader
//! takes the whole group, releases the queue lock, commits it with one call of the tablet's
//! commit function (one append, one sync), and publishes the results through the group's
//! one-shot cell. Followers wait on that cell, not on the queue lock, so publishing a group
//! of any size is one wake-up call, and a woken follower takes no lock to read its result.
//! The first member of each group also watches the queue (`turn`), so that somebody is awake
//! to lead it when the group before it finishes.
//!
//! **A leader gathers the writers that are coming back.** When a group finishes, its writers
//! return to their callers, and a closed-loop caller (a thread writing one synced batch after
//! another) comes straight back with the next one. Without gathering, the next leader starts
//! at once with whoever queued during the last sync, the returners queue behind its sync,
//! and N closed-loop writers settle into two alternating groups of N/2, each write waiting
//! through two syncs. So the first member of the next group waits, up to `gather` (a
//! bounded, configurable delay, like PostgreSQL's `commit_delay`), until every writer the
//! last group released has come back; the last one to come back leads at once. A single
//! writer never waits: it is the only one returning. A writer that does not come back costs
//! one timed-out wait, and each timeout in a row doubles how many groups skip gathering
//! (up to 64), so callers that pause between writes do not pay the delay on every group.
//!
//! Must not: do I/O itself or hold the queue lock during the commit (writers must be able to
//! enqueue while the leader syncs). A single-threaded actor does not need any of this: it
//! calls the tablet's `write_group` directly.

use std::collections::VecDeque;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock};
use std::time::Duration;

use super::batch::WriteBatch;
use crate::error::{StorageError, StorageResult};

/// Consecutive gather timeouts beyond which the skip count stops doubling (2^6 = 64 groups).
const GATHER_BACKOFF_MAX: u32 = 6;

/// Where a group's result is published: every batch's last sequence number, in order.
type Outcome = Arc<OnceLock<StorageResult<Vec<u64>>>>;

/// A group still in the queue.
struct Pending {
    /// Groups are numbered in queue order; `Queue::taken` says which ones a leader has.
    gen: u64,
    batches: Vec<WriteBatch>,
    sync: bool,
    bytes: usize,
    outcome: Outcome,
}

#[derive(Default)]
struct Queue {
    pending: VecDeque<Pending>,
    next_gen: u64,
    /// Every group numbered below this has been taken by a leader.
    taken: u64,
    leader_active: bool,
    /// Writers the last finished group released that have not called `commit` again.
    returning: usize,
    /// A first member is gathering (waiting for returners) with a timeout.
    gathering: bool,
    /// Groups left that start without gathering, and the current run of gather timeouts.
    gather_skip: u64,
    gather_timeouts_in_a_row: u32,
    stats: GroupCommitStats,
}

/// What group commit did, for tests and the benchmark.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct GroupCommitStats {
    /// Groups whose leader waited for returning writers.
    pub gathers: u64,
    /// Gathers that ended at the time limit with writers still missing.
    pub gather_timeouts: u64,
}

pub struct GroupCommit {
    queue: Mutex<Queue>,
    /// The first member of each queued group sleeps here until it may lead (or gathers here).
    turn: Condvar,
    group_bytes_max: usize,
    gather: Duration,
}

/// A leader's duty once its group is out of the queue: give up the lead, wake whoever leads
/// next and publish the results. Dropped unreleased (the commit function panicked), it fails
/// the group so that nobody waits forever.
struct Lead<'a> {
    gc: &'a GroupCommit,
    /// Where the group's followers wait (none for a group of one).
    outcome: Option<Outcome>,
    released: bool,
}

impl Lead<'_> {
    /// `returning`: the writers that now go back to their callers (the whole group).
    fn release(&mut self, returning: usize, result: &StorageResult<Vec<u64>>) {
        self.released = true;
        let next = {
            let mut q = self.gc.lock();
            q.leader_active = false;
            q.returning = returning;
            !q.pending.is_empty()
        };
        if let Some(outcome) = self.outcome.take() {
            // One wake-up call for the whole group.
            let _ = outcome.set(result.clone());
        }
        if next {
            self.gc.turn.notify_all();
        }
    }
}

impl Drop for Lead<'_> {
    fn drop(&mut self) {
        if !self.released {
            self.release(0, &Err(StorageError::Closed));
        }
    }
}

impl GroupCommit {
    /// Group commit without gathering: each group is whoever queued while the last one ran.
    pub fn new(group_bytes_max: usize) -> Self {
        Self::with_gather(group_bytes_max, Duration::ZERO)
    }

    /// Group commit whose leaders wait up to `gather` for the writers the last group released
    /// (zero: never wait).
    pub fn with_gather(group_bytes_max: usize, gather: Duration) -> Self {
        assert!(group_bytes_max > 0);
        GroupCommit {
            queue: Mutex::new(Queue::default()),
            turn: Condvar::new(),
            group_bytes_max,
            gather,
        }
    }

    fn lock(&self) -> MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Batches queued for the next groups (for tests and statistics).
    pub fn queued(&self) -> usize {
        self.lock().pending.iter().map(|p| p.batches.len()).sum()
    }

    pub fn stats(&self) -> GroupCommitStats {
        self.lock().stats
    }

    /// Commit `batch` as part of some group. `commit(batches, sync)` must write them in order
    /// and return the last sequence number of each. Returns this batch's last sequence number.
    pub fn commit<F>(&self, batch: &WriteBatch, sync: bool, mut commit: F) -> StorageResult<u64>
    where
        F: FnMut(&[&WriteBatch], bool) -> StorageResult<Vec<u64>>,
    {
        let mut q = self.lock();
        q.returning = q.returning.saturating_sub(1);
        if !q.leader_active && q.pending.is_empty() && q.returning == 0 {
            // Nobody to batch with: lead a group of one without copying the batch.
            q.leader_active = true;
            drop(q);
            let mut lead = Lead {
                gc: self,
                outcome: None,
                released: false,
            };
            let result = commit(&[batch], sync).map(|seqs| {
                assert_eq!(seqs.len(), 1, "one sequence number per batch");
                seqs[0]
            });
            lead.release(1, &Ok(Vec::new()));
            return result;
        }
        let (gen, index, outcome) = self.join(&mut q, batch, sync);
        let mut gathered = false;
        loop {
            if gen < q.taken {
                // A leader has this writer's group: wait for its result, without the lock.
                drop(q);
                return pick(outcome.wait(), index);
            }
            let front = q.pending.front().map(|p| p.gen) == Some(gen);
            if front && !q.leader_active {
                let wanted = q.returning > 0 && !self.gather.is_zero();
                let skipped = wanted && q.gather_skip > 0;
                if !wanted || skipped || (index == 0 && gathered) {
                    if skipped {
                        q.gather_skip -= 1;
                    }
                    return self.lead(q, index, &mut commit);
                }
                if index == 0 {
                    q = self.gather(q, gen);
                    gathered = true;
                    continue;
                }
            }
            if index == 0 {
                q = self.turn.wait(q).unwrap_or_else(|e| e.into_inner());
                continue;
            }
            drop(q);
            return pick(outcome.wait(), index);
        }
    }

    /// Add `batch` to the group forming at the back of the queue (or open one); its group
    /// number, its index in the group and where the group's result will appear.
    fn join(&self, q: &mut Queue, batch: &WriteBatch, sync: bool) -> (u64, usize, Outcome) {
        let size = batch.size_bytes();
        let fits = q
            .pending
            .back()
            .is_some_and(|p| p.bytes + size <= self.group_bytes_max);
        if !fits {
            let gen = q.next_gen;
            q.next_gen += 1;
            q.pending.push_back(Pending {
                gen,
                batches: Vec::new(),
                sync: false,
                bytes: 0,
                outcome: Arc::new(OnceLock::new()),
            });
            if q.gathering {
                // A full group is waiting behind the gatherer's: stop gathering.
                self.turn.notify_all();
            }
        }
        let Some(p) = q.pending.back_mut() else {
            unreachable!("a group was just opened")
        };
        p.batches.push(batch.clone());
        p.sync |= sync;
        p.bytes += size;
        (p.gen, p.batches.len() - 1, p.outcome.clone())
    }

    /// Wait (as the first member of the front group) until the writers the last group
    /// released are back, a second group has formed, or the time limit passes.
    fn gather<'a>(&'a self, mut q: MutexGuard<'a, Queue>, gen: u64) -> MutexGuard<'a, Queue> {
        q.stats.gathers += 1;
        q.gathering = true;
        let (mut q, waited) = self
            .turn
            .wait_timeout_while(q, self.gather, |q| {
                q.returning > 0 && q.taken <= gen && q.pending.len() == 1 && !q.leader_active
            })
            .unwrap_or_else(|e| e.into_inner());
        q.gathering = false;
        if waited.timed_out() && q.returning > 0 {
            // Somebody is not coming back soon: forget them, and gather less for a while.
            q.returning = 0;
            q.stats.gather_timeouts += 1;
            q.gather_skip = 1 << q.gather_timeouts_in_a_row;
            q.gather_timeouts_in_a_row = (q.gather_timeouts_in_a_row + 1).min(GATHER_BACKOFF_MAX);
        } else if q.returning == 0 {
            q.gather_timeouts_in_a_row = 0;
        }
        q
    }

    /// Take the front group (which holds this writer's batch at `index`) and commit it.
    fn lead<F>(
        &self,
        mut q: MutexGuard<'_, Queue>,
        index: usize,
        commit: &mut F,
    ) -> StorageResult<u64>
    where
        F: FnMut(&[&WriteBatch], bool) -> StorageResult<Vec<u64>>,
    {
        let Some(group) = q.pending.pop_front() else {
            unreachable!("the caller checked its group is at the front")
        };
        q.taken = group.gen + 1;
        q.leader_active = true;
        let first_member_waits = index != 0;
        drop(q);
        if first_member_waits {
            // It may be asleep on `turn` (gathering): send it to wait for the result.
            self.turn.notify_all();
        }
        let mut lead = Lead {
            gc: self,
            outcome: Some(group.outcome.clone()),
            released: false,
        };
        let refs: Vec<&WriteBatch> = group.batches.iter().collect();
        let result = commit(&refs, group.sync);
        if let Ok(seqs) = &result {
            assert_eq!(seqs.len(), refs.len(), "one sequence number per batch");
        }
        lead.release(refs.len(), &result);
        pick(&result, index)
    }
}

fn pick(result: &StorageResult<Vec<u64>>, index: usize) -> StorageResult<u64> {
    match result {
        Ok(seqs) => Ok(seqs[index]),
        Err(e) => Err(e.clone()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU64, Ordering};

    /// Many writers, uneven pauses, a byte budget of a few batches (so several groups queue
    /// at once and first members hand the lead on) and gathering on: every batch is committed
    /// exactly once, in each writer's order, no group passes the budget, nobody hangs.
    #[test]
    fn gathering_with_queued_groups_commits_every_batch_once() {
        let batch_bytes = one_put("w00-0000").size_bytes();
        let gc = GroupCommit::with_gather(3 * batch_bytes, Duration::from_millis(1));
        let next_seq = Mutex::new(0u64);
        let committed = Mutex::new(Vec::<Vec<u8>>::new());
        let oversize = AtomicU64::new(0);
        let (writers, per_writer) = (12u64, 150u64);
        let seqs: Vec<Vec<u64>> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..writers)
                .map(|w| {
                    let (gc, next_seq, committed, oversize) =
                        (&gc, &next_seq, &committed, &oversize);
                    s.spawn(move || {
                        let mut out = Vec::new();
                        for i in 0..per_writer {
                            // Writers 0-3 pause now and then: returners arrive unevenly.
                            if w < 4 && i % (w + 2) == 0 {
                                for _ in 0..(w * 50) {
                                    std::thread::yield_now();
                                }
                            }
                            let row = format!("w{w:02}-{i:04}");
                            let r = gc.commit(&one_put(&row), i % 3 == 0, |batches, _| {
                                let bytes: usize = batches.iter().map(|b| b.size_bytes()).sum();
                                if batches.len() > 1 && bytes > 3 * batch_bytes {
                                    oversize.fetch_add(1, Ordering::Relaxed);
                                }
                                let mut n = next_seq.lock().unwrap_or_else(|e| e.into_inner());
                                let mut c = committed.lock().unwrap_or_else(|e| e.into_inner());
                                Ok(batches
                                    .iter()
                                    .map(|b| {
                                        *n += 1;
                                        c.push(b.iter().next().map_or(Vec::new(), |m| {
                                            m.map(|m| m.row.to_vec()).unwrap_or_default()
                                        }));
                                        *n
                                    })
                                    .collect())
                            });
                            match r {
                                Ok(seq) => out.push(seq),
                                Err(_) => return Vec::new(),
                            }
                        }
                        out
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().unwrap_or_default())
                .collect()
        });
        assert!(seqs.iter().all(|s| s.len() as u64 == per_writer));
        for s in &seqs {
            assert!(
                s.windows(2).all(|w| w[0] < w[1]),
                "each writer in its order"
            );
        }
        let mut rows = committed.into_inner().unwrap_or_default();
        assert_eq!(rows.len() as u64, writers * per_writer);
        rows.sort();
        rows.dedup();
        assert_eq!(rows.len() as u64, writers * per_writer, "each batch once");
        assert_eq!(
            oversize.load(Ordering::Relaxed),
            0,
            "groups keep the byte budget"
        );
        assert_eq!(gc.queued(), 0);
    }

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
        let (wal, rx) = gated_wal();
        let late = 3usize;
        let seqs: Vec<StorageResult<u64>> = std::thread::scope(|s| {
            let (gc, wal) = (&gc, &wal);
            let first = s.spawn(move || gc.commit(&one_put("a"), true, |b, y| wal.commit(b, y)));
            // The first writer leads a group of one and is now inside its sync.
            rx.recv().unwrap_or_default();
            let others: Vec<_> = (0..late)
                .map(|i| {
                    s.spawn(move || {
                        gc.commit(&one_put(&format!("late{i}")), i == 0, |b, y| {
                            wal.commit(b, y)
                        })
                    })
                })
                .collect();
            // Every late writer is queued behind the in-flight sync (no timing: wait for the
            // queue itself), then the sync completes.
            while gc.queued() < late {
                std::thread::yield_now();
            }
            open_gate(wal);
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

    fn gated_wal() -> (FakeWal, std::sync::mpsc::Receiver<()>) {
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        let wal = FakeWal {
            groups: Mutex::new(Vec::new()),
            next_seq: Mutex::new(0),
            in_sync: tx,
            gate: Mutex::new(false),
            gate_cv: Condvar::new(),
        };
        (wal, rx)
    }

    /// The size of each group the fake WAL committed, in order.
    fn group_sizes(wal: &FakeWal) -> Vec<usize> {
        wal.groups
            .lock()
            .map(|g| g.iter().map(|(n, _)| *n).collect())
            .unwrap_or_default()
    }

    fn open_gate(wal: &FakeWal) {
        *wal.gate.lock().unwrap_or_else(|e| e.into_inner()) = true;
        wal.gate_cv.notify_all();
    }

    fn one_put(row: &str) -> WriteBatch {
        let mut wb = WriteBatch::new();
        wb.put(row.as_bytes(), b"f", b"q", 1, b"v");
        wb
    }

    #[test]
    fn released_writers_are_gathered_into_one_group() {
        let gc = GroupCommit::with_gather(1 << 20, Duration::from_secs(1));
        let (wal, in_first_sync) = gated_wal();
        let (others, rounds) = (3usize, 5usize);
        let results: Vec<StorageResult<u64>> = std::thread::scope(|s| {
            let (gc, wal) = (&gc, &wal);
            let writer = move |w: usize| {
                (0..rounds)
                    .map(|i| {
                        gc.commit(&one_put(&format!("{w}-{i}")), true, |b, y| wal.commit(b, y))
                    })
                    .collect::<Vec<_>>()
            };
            let first = s.spawn(move || writer(0));
            // The first writer leads a group of one, held in its sync until the others queue.
            in_first_sync.recv().unwrap_or_default();
            let rest: Vec<_> = (1..=others).map(|w| s.spawn(move || writer(w))).collect();
            while gc.queued() < others {
                std::thread::yield_now();
            }
            open_gate(wal);
            std::iter::once(first)
                .chain(rest)
                .flat_map(|h| h.join().unwrap_or_default())
                .collect()
        });
        assert_eq!(results.len(), (others + 1) * rounds);
        assert!(results.iter().all(|r| r.is_ok()));
        let sizes = group_sizes(&wal);
        // Without gathering, the first writer's next batch would queue behind the others'
        // group and the writers would alternate in two groups. With it, the others' group
        // waits for the first writer, and from then on every group waits for every writer the
        // group before released: all four share each sync. The last group holds the three
        // others' last batches; it waited for the first writer, which had finished, until
        // the time limit.
        let mut expected = vec![1];
        expected.extend(std::iter::repeat_n(others + 1, rounds - 1));
        expected.push(others);
        assert_eq!(sizes, expected);
        assert_eq!(
            gc.stats().gather_timeouts,
            1,
            "only the last group waited in vain"
        );
    }

    #[test]
    fn a_single_writer_never_gathers() {
        let gc = GroupCommit::with_gather(1 << 20, Duration::from_secs(3600));
        for i in 0..100u64 {
            assert_eq!(
                gc.commit(&one_put("r"), true, |b, _| Ok(vec![i; b.len()])),
                Ok(i)
            );
        }
        assert_eq!(gc.stats(), GroupCommitStats::default());
    }

    #[test]
    fn a_writer_that_does_not_come_back_costs_one_timeout_then_gathering_backs_off() {
        let gc = GroupCommit::with_gather(1 << 20, Duration::from_millis(50));
        let (wal, in_first_sync) = gated_wal();
        std::thread::scope(|s| {
            let (gc, wal) = (&gc, &wal);
            // A writes once, alone, held in its sync while B and C queue as one group.
            let a = s.spawn(move || gc.commit(&one_put("a"), true, |b, y| wal.commit(b, y)));
            in_first_sync.recv().unwrap_or_default();
            let c = s.spawn(move || gc.commit(&one_put("c"), true, |b, y| wal.commit(b, y)));
            while gc.queued() < 1 {
                std::thread::yield_now();
            }
            let b = s.spawn(move || {
                // B's group waits for A, which never writes again: one timeout. C does not
                // come back either, but the next group skips gathering after a timeout, and
                // the one after that is B's alone (B is the only one returning).
                (0..3)
                    .map(|i| gc.commit(&one_put(&format!("b{i}")), true, |b, y| wal.commit(b, y)))
                    .collect::<Vec<_>>()
            });
            while gc.queued() < 2 {
                std::thread::yield_now();
            }
            open_gate(wal);
            assert!(a.join().is_ok_and(|r| r.is_ok()));
            assert!(c.join().is_ok_and(|r| r.is_ok()));
            assert!(b.join().is_ok_and(|r| r.iter().all(|r| r.is_ok())));
        });
        let sizes = group_sizes(&wal);
        assert_eq!(sizes, vec![1, 2, 1, 1]);
        assert_eq!(
            gc.stats(),
            GroupCommitStats {
                gathers: 1,
                gather_timeouts: 1
            }
        );
    }
}
