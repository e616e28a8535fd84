//! The simulated network's state: the current model ([`NetConfig`]), partitions, clogs, the
//! messages clogs hold, and per-link FIFO bookkeeping.
//!
//! Owns the answers to "is this link cut / clogged?" and "when does this copy arrive?". Must not
//! touch the event queue or actors; the executor asks and acts. Every collection is a BTree so
//! nothing here depends on hash iteration order.

use crate::NetConfig;
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use shale_actors::{NodeId, Time};
use std::collections::{BTreeMap, BTreeSet, VecDeque};

/// A message parked by a clog, in arrival order.
pub(crate) struct Held<M> {
    pub(crate) from: NodeId,
    pub(crate) to: NodeId,
    pub(crate) msg: M,
}

pub(crate) struct Network<M> {
    pub(crate) cfg: NetConfig,
    /// Directed links whose messages are dropped.
    blocked: BTreeSet<(NodeId, NodeId)>,
    clogged_nodes: BTreeSet<NodeId>,
    clogged_links: BTreeSet<(NodeId, NodeId)>,
    pub(crate) held: VecDeque<Held<M>>,
    /// Latest arrival time scheduled per directed link, for FIFO mode (`reorder == false`).
    last_arrival: BTreeMap<(NodeId, NodeId), u64>,
}

impl<M> Network<M> {
    pub(crate) fn new(cfg: NetConfig) -> Self {
        Self {
            cfg,
            blocked: BTreeSet::new(),
            clogged_nodes: BTreeSet::new(),
            clogged_links: BTreeSet::new(),
            held: VecDeque::new(),
            last_arrival: BTreeMap::new(),
        }
    }

    /// Self-sends never cross the network, so they are never cut.
    #[inline]
    pub(crate) fn is_blocked(&self, from: NodeId, to: NodeId) -> bool {
        from != to && !self.blocked.is_empty() && self.blocked.contains(&(from, to))
    }

    #[inline]
    pub(crate) fn is_clogged(&self, from: NodeId, to: NodeId) -> bool {
        if from == to || (self.clogged_nodes.is_empty() && self.clogged_links.is_empty()) {
            return false;
        }
        self.clogged_nodes.contains(&from)
            || self.clogged_nodes.contains(&to)
            || self.clogged_links.contains(&(from, to))
    }

    pub(crate) fn block(&mut self, from: &[NodeId], to: &[NodeId]) {
        for &f in from {
            for &t in to {
                if f != t {
                    self.blocked.insert((f, t));
                }
            }
        }
    }

    pub(crate) fn heal(&mut self) {
        self.blocked.clear();
    }

    pub(crate) fn partitioned_links(&self) -> usize {
        self.blocked.len()
    }

    pub(crate) fn clog_node(&mut self, node: NodeId) {
        self.clogged_nodes.insert(node);
    }

    pub(crate) fn unclog_node(&mut self, node: NodeId) {
        self.clogged_nodes.remove(&node);
    }

    pub(crate) fn clog_link(&mut self, from: NodeId, to: NodeId) {
        self.clogged_links.insert((from, to));
    }

    pub(crate) fn unclog_link(&mut self, from: NodeId, to: NodeId) {
        self.clogged_links.remove(&(from, to));
    }

    pub(crate) fn unclog_all(&mut self) {
        self.clogged_nodes.clear();
        self.clogged_links.clear();
    }

    /// True arrival time of one copy sent at `now` on `from -> to`.
    #[inline]
    pub(crate) fn arrival(
        &mut self,
        rng: &mut ChaCha8Rng,
        now: u64,
        from: NodeId,
        to: NodeId,
    ) -> u64 {
        if from == to {
            // Loopback: after the current event, at the same instant.
            return now;
        }
        let min = nanos(self.cfg.latency_min);
        let max = nanos(self.cfg.latency_max);
        let latency = if min == max {
            min
        } else {
            rng.gen_range(min..=max)
        };
        let mut at = now.saturating_add(latency);
        if !self.cfg.reorder {
            let last = self.last_arrival.entry((from, to)).or_insert(0);
            // Equal times keep send order through the queue's sequence numbers.
            at = at.max(*last);
            *last = at;
        }
        at
    }
}

fn nanos(d: std::time::Duration) -> u64 {
    Time::ZERO.plus(d).as_nanos()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use std::time::Duration;

    #[test]
    fn partitions_are_directed_and_spare_self_links() {
        let mut net: Network<()> = Network::new(NetConfig::default());
        let (a, b, c) = (NodeId(1), NodeId(2), NodeId(3));
        net.block(&[a, b], &[b, c]);
        assert!(net.is_blocked(a, b));
        assert!(net.is_blocked(a, c));
        assert!(net.is_blocked(b, c));
        assert!(!net.is_blocked(b, b));
        assert!(!net.is_blocked(c, a));
        assert!(!net.is_blocked(b, a));
        assert_eq!(net.partitioned_links(), 3);
        net.heal();
        assert!(!net.is_blocked(a, b));
    }

    #[test]
    fn clogs_cover_a_node_both_ways_or_one_directed_link() {
        let mut net: Network<()> = Network::new(NetConfig::default());
        let (a, b, c) = (NodeId(1), NodeId(2), NodeId(3));
        net.clog_node(a);
        assert!(net.is_clogged(a, b) && net.is_clogged(c, a));
        assert!(!net.is_clogged(b, c) && !net.is_clogged(a, a));
        net.unclog_node(a);
        net.clog_link(b, c);
        assert!(net.is_clogged(b, c));
        assert!(!net.is_clogged(c, b));
        net.unclog_all();
        assert!(!net.is_clogged(b, c));
    }

    #[test]
    fn fifo_mode_never_lets_a_later_send_arrive_first() {
        let cfg = NetConfig {
            latency_min: Duration::from_millis(1),
            latency_max: Duration::from_millis(50),
            reorder: false,
            ..NetConfig::default()
        };
        let mut net: Network<()> = Network::new(cfg);
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        let mut last = 0;
        for now in 0..200u64 {
            let at = net.arrival(&mut rng, now * 1000, NodeId(1), NodeId(2));
            assert!(at >= last);
            assert!(at >= now * 1000 + 1_000_000);
            last = at;
        }
    }
}
