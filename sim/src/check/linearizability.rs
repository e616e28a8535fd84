//! Linearizability checking in the manner of Porcupine: Wing and Gong's search with Lowe's
//! memoization (a set of fingerprints of (linearized-ops bitset, model state) pairs already
//! explored), run
//! separately on each key's sub-history (P-compositionality), bounded by a step budget.
//!
//! Owns the search, its budget and the shrinking of a violation to a small explanation. Must
//! not read wall time (the budget counts search steps, so a verdict is the same on every
//! machine) and must not know any particular model; `kv.rs` is one.

use super::history::{Model, Operation};
use shale_actors::Time;
use std::collections::hash_map::DefaultHasher;
use std::collections::{BTreeMap, HashSet};
use std::fmt::{Debug, Write as _};
use std::hash::BuildHasherDefault;

/// Search limits, in steps (one step considers one entry of the history).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LinearizabilityConfig {
    /// A key whose search takes more steps than this is reported undecided.
    pub steps_max_per_key: u64,
    /// Total steps spent shrinking a violation's explanation; past it, the explanation is
    /// returned as small as it got.
    pub shrink_steps_max: u64,
}

impl Default for LinearizabilityConfig {
    fn default() -> Self {
        Self {
            // split-under-load seed 40's hottest key (3,599 operations, 15 never answered)
            // needs between 2M and 10M steps; with 16-byte memo entries 10M stays in a few
            // hundred MB at worst.
            steps_max_per_key: 10_000_000,
            shrink_steps_max: 2_000_000,
        }
    }
}

/// A key's sub-history has no linearization.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Violation<K> {
    pub key: K,
    /// Indices (into the checked history) of operations that together admit no order: the
    /// key's operations minus reads that were not needed to show the violation.
    pub ops: Vec<usize>,
    /// The longest prefix of `ops` the search could order, in that order.
    pub linearized: Vec<usize>,
    /// The operation that had to come next after `linearized` but could not.
    pub stuck: Option<usize>,
    /// True if shrinking ran to the end; false if its budget ran out first.
    pub shrunk: bool,
}

/// Keys whose search ran out of steps (and no key showed a violation).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Undecided<K> {
    pub keys: Vec<K>,
    pub steps_max_per_key: u64,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict<K> {
    Linearizable,
    Violation(Violation<K>),
    Undecided(Undecided<K>),
}

/// A verdict plus what it cost.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Report<K> {
    pub verdict: Verdict<K>,
    /// Keys searched (the search stops at the first violating key, in key order).
    pub keys_checked: usize,
    pub steps: u64,
}

/// The history itself is malformed (a recorder bug, not a system bug).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum HistoryError {
    #[error("operation {index} returns at {ret:?}, before its call at {call:?}")]
    ReturnBeforeCall { index: usize, call: Time, ret: Time },
}

/// Checks `history` against `model`, key by key in key order.
///
/// An operation that returned at the same instant another was called counts as concurrent
/// with it: coarse timestamps must not invent a real-time order. Pending operations may be
/// placed anywhere after their call, or nowhere.
pub fn check_linearizable<M: Model>(
    model: &M,
    history: &[Operation<M::Input, M::Output>],
    cfg: &LinearizabilityConfig,
) -> Result<Report<M::Key>, HistoryError> {
    let mut by_key: BTreeMap<M::Key, Vec<usize>> = BTreeMap::new();
    for (index, op) in history.iter().enumerate() {
        if let Some(ret) = op.return_time() {
            if ret < op.call {
                return Err(HistoryError::ReturnBeforeCall {
                    index,
                    call: op.call,
                    ret,
                });
            }
        }
        by_key.entry(model.key(&op.input)).or_default().push(index);
    }
    let mut steps = 0u64;
    let mut undecided = Vec::new();
    let mut keys_checked = 0;
    for (key, ops) in by_key {
        keys_checked += 1;
        let mut key_steps = 0;
        match search(model, history, &ops, cfg.steps_max_per_key, &mut key_steps) {
            Search::Linearizable => {}
            Search::OutOfSteps => {
                tracing::debug!(?key, steps = key_steps, "linearizability undecided");
                undecided.push(key);
            }
            Search::Fail { linearized, stuck } => {
                steps += key_steps;
                let mut v = Violation {
                    key,
                    ops,
                    linearized,
                    stuck,
                    shrunk: false,
                };
                steps += shrink(model, history, &mut v, cfg);
                tracing::debug!(key = ?v.key, ops = v.ops.len(), "not linearizable");
                return Ok(Report {
                    verdict: Verdict::Violation(v),
                    keys_checked,
                    steps,
                });
            }
        }
        steps += key_steps;
    }
    let verdict = if undecided.is_empty() {
        Verdict::Linearizable
    } else {
        Verdict::Undecided(Undecided {
            keys: undecided,
            steps_max_per_key: cfg.steps_max_per_key,
        })
    };
    Ok(Report {
        verdict,
        keys_checked,
        steps,
    })
}

impl<K: Debug> Violation<K> {
    /// A human explanation: the operations in call order, the order found, and the operation
    /// that could not be placed.
    pub fn explain<I: Debug, O: Debug>(&self, history: &[Operation<I, O>]) -> String {
        let mut ops = self.ops.clone();
        ops.sort_by_key(|&i| (history[i].call, i));
        let mut s = format!(
            "key {:?}: these {} operations admit no linearization{}\n",
            self.key,
            ops.len(),
            if self.shrunk {
                ""
            } else {
                " (not fully shrunk)"
            }
        );
        for i in ops {
            let op = &history[i];
            let ret = match op.return_time() {
                Some(t) => format!("{}", t.as_nanos()),
                None => "pending".to_string(),
            };
            let _ = write!(
                s,
                "  #{i} client {} [{} .. {ret}] {:?}",
                op.client,
                op.call.as_nanos(),
                op.input
            );
            if let Some(out) = op.output() {
                let _ = write!(s, " -> {out:?}");
            }
            if self.stuck == Some(i) {
                s.push_str("   <- cannot be placed");
            }
            s.push('\n');
        }
        let order: Vec<String> = self.linearized.iter().map(|i| format!("#{i}")).collect();
        let _ = writeln!(s, "  longest order found: [{}]", order.join(", "));
        s
    }
}

enum Search {
    Linearizable,
    Fail {
        linearized: Vec<usize>,
        stuck: Option<usize>,
    },
    OutOfSteps,
}

const NIL: usize = usize::MAX;
const HEAD: usize = 0;

/// Bits over the key's operations; cloned into the memo table.
#[derive(Clone, PartialEq, Eq, Hash)]
struct Bits(Vec<u64>);

impl Bits {
    fn new(n: usize) -> Self {
        Self(vec![0; n.div_ceil(64)])
    }
    fn set(&mut self, i: usize) {
        self.0[i / 64] |= 1 << (i % 64);
    }
    fn clear(&mut self, i: usize) {
        self.0[i / 64] &= !(1 << (i % 64));
    }
}

/// The history's call and return entries as a doubly linked list (node 0 is the head), so that
/// linearizing an operation unlinks its two entries and backtracking relinks them (dancing
/// links: relinking in reverse order restores the list exactly).
struct Entries {
    next: Vec<usize>,
    prev: Vec<usize>,
    /// Local operation index of each entry, and whether it is the call.
    op: Vec<usize>,
    is_call: Vec<bool>,
    call_of: Vec<usize>,
    ret_of: Vec<usize>,
}

impl Entries {
    fn new<I, O>(history: &[Operation<I, O>], ops: &[usize]) -> Self {
        // (time, call before return, local op): ties make a return and a call concurrent.
        let mut order: Vec<(Time, u8, usize)> = Vec::with_capacity(ops.len() * 2);
        for (local, &i) in ops.iter().enumerate() {
            order.push((history[i].call, 0, local));
            if let Some(ret) = history[i].return_time() {
                order.push((ret, 1, local));
            }
        }
        order.sort_unstable();
        let m = order.len();
        let mut e = Entries {
            next: (1..=m + 1).map(|i| if i > m { NIL } else { i }).collect(),
            prev: (0..=m).map(|i| i.wrapping_sub(1)).collect(),
            op: vec![NIL; m + 1],
            is_call: vec![false; m + 1],
            call_of: vec![NIL; ops.len()],
            ret_of: vec![NIL; ops.len()],
        };
        for (slot, &(_, kind, local)) in order.iter().enumerate() {
            let node = slot + 1;
            e.op[node] = local;
            e.is_call[node] = kind == 0;
            if kind == 0 {
                e.call_of[local] = node;
            } else {
                e.ret_of[local] = node;
            }
        }
        e
    }

    fn unlink(&mut self, x: usize) {
        let (p, n) = (self.prev[x], self.next[x]);
        self.next[p] = n;
        if n != NIL {
            self.prev[n] = p;
        }
    }

    fn relink(&mut self, x: usize) {
        let (p, n) = (self.prev[x], self.next[x]);
        self.next[p] = x;
        if n != NIL {
            self.prev[n] = x;
        }
    }

    fn lift(&mut self, local: usize) {
        self.unlink(self.call_of[local]);
        if self.ret_of[local] != NIL {
            self.unlink(self.ret_of[local]);
        }
    }

    fn unlift(&mut self, local: usize) {
        if self.ret_of[local] != NIL {
            self.relink(self.ret_of[local]);
        }
        self.relink(self.call_of[local]);
    }
}

/// Explored (linearized set, state) pairs, kept as a 128-bit fingerprint (two fixed-key
/// SipHash values) rather than a clone: a clone holds the done-bits and the row's value, a
/// few kilobytes per entry on a hot key with large values, where the fingerprint is 16 bytes.
/// A collision (odds about 2^-128 per pair) could only prune a branch never explored.
type Memo = HashSet<u128, BuildHasherDefault<DefaultHasher>>;

fn fingerprint<S: std::hash::Hash>(done: &Bits, state: &S, need_observer: bool) -> u128 {
    use std::hash::{Hash, Hasher};
    let half = |salt: u64| {
        let mut h = DefaultHasher::new();
        salt.hash(&mut h);
        done.hash(&mut h);
        state.hash(&mut h);
        need_observer.hash(&mut h);
        h.finish()
    };
    (u128::from(half(0x5ba1e)) << 64) | u128::from(half(0xc0ffee))
}

/// Wing and Gong's search over the operations `ops` (indices into `history`) of one key.
fn search<M: Model>(
    model: &M,
    history: &[Operation<M::Input, M::Output>],
    ops: &[usize],
    steps_max: u64,
    steps: &mut u64,
) -> Search {
    let mut list = Entries::new(history, ops);
    let mut state = model.init();
    let mut done = Bits::new(ops.len());
    // Linearized operations (local index) with the state before each.
    let mut stack: Vec<(usize, M::State, bool)> = Vec::with_capacity(ops.len());
    // Set right after a pending operation was placed: the next operation placed must not be
    // a blind write. Sound and complete: in any linearization, a pending operation directly
    // followed by a blind write (or placed last) can be removed, since nothing observes its
    // effect and a pending operation may never take effect at all; repeating that leaves a
    // linearization in which every pending operation is directly followed by one that is not
    // a blind write, and those are all this search tries. Without the rule each timed-out
    // operation could float to every position: the hottest keys of split-under-load seeds
    // 40, 60 and 91 (about 3,600 operations, 15 of them pending) were undecided, the last two
    // even at 100M steps.
    let mut need_observer = false;
    // The memo only answers membership, so its iteration order never matters; the fixed
    // hasher keeps even its performance identical across runs.
    let mut memo: Memo = HashSet::default();
    let mut returned_left = ops
        .iter()
        .filter(|&&i| history[i].return_time().is_some())
        .count();
    let mut best: Option<(Vec<usize>, Option<usize>)> = None;
    let mut entry = list.next[HEAD];
    loop {
        if returned_left == 0 {
            // Whatever remains is pending and may simply never have taken effect.
            return Search::Linearizable;
        }
        *steps += 1;
        if *steps > steps_max {
            return Search::OutOfSteps;
        }
        if entry != NIL && list.is_call[entry] {
            let local = list.op[entry];
            let op = &history[ops[local]];
            let blind = model.is_blind_write(&op.input);
            if need_observer && blind {
                entry = list.next[entry];
                continue;
            }
            let (next_state, output) = model.step(&state, &op.input);
            if op.output().is_none_or(|seen| *seen == output) {
                let mut next_done = done.clone();
                next_done.set(local);
                let next_need = op.return_time().is_none();
                if memo.insert(fingerprint(&next_done, &next_state, next_need)) {
                    let before = std::mem::replace(&mut state, next_state);
                    stack.push((local, before, need_observer));
                    need_observer = next_need;
                    done = next_done;
                    if op.return_time().is_some() {
                        returned_left -= 1;
                    }
                    list.lift(local);
                    entry = list.next[HEAD];
                    continue;
                }
            }
            entry = list.next[entry];
            continue;
        }
        // A return entry (or, defensively, the end): that operation had to be linearized
        // by now and no order managed it. Remember the deepest such point, then backtrack.
        if best.as_ref().is_none_or(|(b, _)| stack.len() > b.len()) {
            let order = stack.iter().map(|(l, _, _)| ops[*l]).collect();
            let stuck = (entry != NIL).then(|| ops[list.op[entry]]);
            best = Some((order, stuck));
        }
        let Some((local, before, need_before)) = stack.pop() else {
            let (linearized, stuck) = best.unwrap_or_default();
            return Search::Fail { linearized, stuck };
        };
        state = before;
        need_observer = need_before;
        done.clear(local);
        if history[ops[local]].return_time().is_some() {
            returned_left += 1;
        }
        list.unlift(local);
        entry = list.next[list.call_of[local]];
    }
}

/// Drops read-only operations the violation does not need, one at a time, until no single
/// drop keeps it (or the budget runs out). Only reads may go: removing a read cannot turn a
/// linearizable history into a non-linearizable one, so what is left is still a true witness,
/// whereas removing a write could invent a "read of a value never written".
fn shrink<M: Model>(
    model: &M,
    history: &[Operation<M::Input, M::Output>],
    v: &mut Violation<M::Key>,
    cfg: &LinearizabilityConfig,
) -> u64 {
    let mut spent = 0u64;
    loop {
        let mut dropped_any = false;
        // Later reads first: they are the most often irrelevant to an early violation.
        let candidates: Vec<usize> = v
            .ops
            .iter()
            .rev()
            .copied()
            .filter(|&i| model.is_read_only(&history[i].input))
            .collect();
        for candidate in candidates {
            let budget = cfg
                .steps_max_per_key
                .min(cfg.shrink_steps_max.saturating_sub(spent));
            if budget == 0 {
                return spent;
            }
            let trial: Vec<usize> = v.ops.iter().copied().filter(|&i| i != candidate).collect();
            let mut steps = 0;
            let result = search(model, history, &trial, budget, &mut steps);
            spent += steps;
            if let Search::Fail { linearized, stuck } = result {
                v.ops = trial;
                v.linearized = linearized;
                v.stuck = stuck;
                dropped_any = true;
            }
        }
        if !dropped_any {
            v.shrunk = true;
            return spent;
        }
    }
}
