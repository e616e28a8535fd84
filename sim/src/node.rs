//! One simulated node: its actor (while running), the factory that rebuilds it, the crash hook,
//! its RNG, id generator, live timers, clock offset and pause.
//!
//! Owns per-node state and the clock-offset arithmetic. Must not touch the event queue or the
//! network; the executor does that when it crashes or restarts a node.

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use shale_actors::kernel::IdGen;
use shale_actors::{NodeId, Time, TimerId};
use std::collections::BTreeSet;

/// Builds a fresh incarnation of a node's actor from whatever durable state the factory holds.
pub type Factory<A> = Box<dyn FnMut(NodeId) -> A>;

/// Runs when a node crashes or is stopped, before anything else sees the crash: the place where
/// a simulated disk forgets unsynced writes. It gets the executor's RNG so it may, e.g., tear a
/// random suffix deterministically.
pub type CrashHook = Box<dyn FnMut(NodeId, &mut ChaCha8Rng)>;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NodeStatus {
    Up,
    /// Crashed; [`crate::Sim::restart`] brings it back.
    Down,
    /// Stopped for good.
    Stopped,
}

pub(crate) struct Node<A> {
    pub(crate) status: NodeStatus,
    pub(crate) actor: Option<A>,
    pub(crate) factory: Factory<A>,
    pub(crate) crash_hook: Option<CrashHook>,
    pub(crate) rng: ChaCha8Rng,
    /// Draws for buggify points reached on this node; kept apart from `rng` so turning
    /// buggify on does not change what the actor itself draws.
    pub(crate) buggify_rng: ChaCha8Rng,
    pub(crate) ids: IdGen,
    /// Timers set and neither fired nor cancelled in this incarnation. A timer event whose id
    /// is missing here was cancelled and must not fire.
    pub(crate) live_timers: BTreeSet<TimerId>,
    /// Bumped at every crash; timer and job events carry the incarnation that created them.
    pub(crate) incarnation: u64,
    pub(crate) clock_offset_ns: i64,
    /// True time before which this node processes nothing.
    pub(crate) paused_until: u64,
    /// Job durations are multiplied by this ([`crate::Fault::SlowJobs`]); survives crashes,
    /// as a slow disk would.
    pub(crate) job_slowdown: u32,
}

impl<A> Node<A> {
    pub(crate) fn new(seed: u64, id: NodeId, factory: Factory<A>) -> Self {
        Self {
            status: NodeStatus::Down,
            actor: None,
            factory,
            crash_hook: None,
            rng: node_rng(seed, id),
            buggify_rng: node_rng(seed ^ 0x4255_4747_4946_5952, id),
            ids: IdGen::new(),
            live_timers: BTreeSet::new(),
            incarnation: 0,
            clock_offset_ns: 0,
            paused_until: 0,
            job_slowdown: 1,
        }
    }

    /// The node's clock: true time plus its offset, clamped to the representable range.
    #[inline]
    pub(crate) fn local_now(&self, true_now: u64) -> Time {
        Time(skewed(true_now, self.clock_offset_ns))
    }
}

/// `t + offset`, saturating at 0 and at `u64::MAX`.
pub(crate) fn skewed(t: u64, offset_ns: i64) -> u64 {
    if offset_ns >= 0 {
        t.saturating_add(offset_ns.unsigned_abs())
    } else {
        t.saturating_sub(offset_ns.unsigned_abs())
    }
}

/// SplitMix64's finaliser: spreads nearby inputs (seed 1 vs 2, node 1 vs 2) far apart.
pub(crate) fn mix64(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// The RNG the executor itself draws from (latency, loss, job durations, crash hooks).
pub(crate) fn env_rng(seed: u64) -> ChaCha8Rng {
    ChaCha8Rng::seed_from_u64(mix64(seed))
}

/// Each node's actor RNG depends only on the master seed and the node id, so adding a node
/// or changing the network model does not change what other actors draw.
pub(crate) fn node_rng(seed: u64, id: NodeId) -> ChaCha8Rng {
    ChaCha8Rng::seed_from_u64(mix64(seed ^ mix64(id.0 ^ 0x5348_414c_455f_4e44)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::RngCore;

    #[test]
    fn skew_saturates_both_ways() {
        assert_eq!(skewed(100, -30), 70);
        assert_eq!(skewed(100, -300), 0);
        assert_eq!(skewed(100, i64::MIN), 0);
        assert_eq!(skewed(u64::MAX - 1, 5), u64::MAX);
        assert_eq!(skewed(100, 0), 100);
    }

    #[test]
    fn node_rngs_differ_by_node_and_by_seed_and_from_the_env_rng() {
        let first = |mut r: ChaCha8Rng| r.next_u64();
        let a = first(node_rng(1, NodeId(1)));
        assert_eq!(a, first(node_rng(1, NodeId(1))));
        assert_ne!(a, first(node_rng(1, NodeId(2))));
        assert_ne!(a, first(node_rng(2, NodeId(1))));
        assert_ne!(a, first(env_rng(1)));
    }
}
