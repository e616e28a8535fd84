//! Where a new partition goes: the placement policy, as a pure function of the state.
//!
//! Owns: the choice of node for each new partition of a day. Must not: read a clock, use
//! randomness, or change the state (the caller commits what this returns).
//!
//! The seed's first version picks the node with the most free disk. Alone that puts every
//! partition of a day on one node (free disk is only re-reported every few minutes), and a
//! day's partitions are written together, so one node would take a whole day's ingest.
//! The policy here (see docs/meta-server.md) is proportional and bounded:
//!
//! - Candidates are the live (Up) nodes with free disk, where free = total - last reported
//!   used (total if the node never reported).
//! - Each partition goes to the candidate with the highest `free / (placed + 1)`, where
//!   `placed` counts the partitions of the same date already on that node (every table:
//!   two tables written on the same day share the same disks). This is the D'Hondt rule:
//!   a day's partitions end up spread in proportion to free space, an empty node takes more
//!   than a nearly full one, and nodes of equal free space take turns.
//! - One table's day touches at most `spread_max` distinct nodes; once it has that many,
//!   its further partitions go only to those. This bounds the fan-out of a day's scan.
//! - Ties go to the lower node id, so the result is a function of the state alone and a
//!   replayed or restarted store would choose the same.

use crate::kernel::NodeId;
use std::collections::{BTreeMap, BTreeSet};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Candidate {
    pub node: NodeId,
    pub free_disk_bytes: u64,
    /// Partitions of the date being placed that are already on this node (all tables).
    pub placed_today: u32,
}

/// Choose a node for each of `count` new partitions of one table's day. `table_nodes` are
/// the nodes already holding partitions of that table's day. Returns None if no candidate
/// has free space.
pub fn place(
    candidates: &[Candidate],
    table_nodes: &BTreeSet<NodeId>,
    count: usize,
    spread_max: usize,
) -> Option<Vec<NodeId>> {
    let mut placed: BTreeMap<NodeId, (u64, u64)> = candidates
        .iter()
        .filter(|c| c.free_disk_bytes > 0)
        .map(|c| (c.node, (c.free_disk_bytes, u64::from(c.placed_today))))
        .collect();
    if placed.is_empty() {
        return None;
    }
    let mut used: BTreeSet<NodeId> = table_nodes
        .iter()
        .copied()
        .filter(|n| placed.contains_key(n))
        .collect();
    let spread_max = spread_max.max(1);
    let mut out = Vec::with_capacity(count);
    for _ in 0..count {
        let full = used.len() >= spread_max;
        let mut best: Option<(NodeId, u64, u64)> = None;
        for (&node, &(free, n)) in &placed {
            if full && !used.contains(&node) {
                continue;
            }
            // free_a / (n_a + 1) > free_b / (n_b + 1), compared without division.
            let better = match best {
                None => true,
                Some((_, bf, bn)) => {
                    u128::from(free) * u128::from(bn + 1) > u128::from(bf) * u128::from(n + 1)
                }
            };
            if better {
                best = Some((node, free, n));
            }
        }
        let (node, _, _) = best?;
        if let Some(e) = placed.get_mut(&node) {
            e.1 += 1;
        }
        used.insert(node);
        out.push(node);
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(node: u64, free: u64, placed: u32) -> Candidate {
        Candidate {
            node: NodeId(node),
            free_disk_bytes: free,
            placed_today: placed,
        }
    }

    fn counts(v: &[NodeId]) -> BTreeMap<u64, usize> {
        let mut m = BTreeMap::new();
        for n in v {
            *m.entry(n.0).or_insert(0) += 1;
        }
        m
    }

    #[test]
    fn a_day_spreads_in_proportion_to_free_space() {
        // Expectations as data: (candidates, count, spread, partitions per node).
        // (candidates, partitions, spread_max, expected partitions per node)
        type Case = (Vec<Candidate>, usize, usize, Vec<(u64, usize)>);
        let cases: Vec<Case> = vec![
            // Equal nodes take turns.
            (
                vec![c(1, 100, 0), c(2, 100, 0), c(3, 100, 0)],
                24,
                8,
                vec![(1, 8), (2, 8), (3, 8)],
            ),
            // Twice the free space, twice the partitions.
            (
                vec![c(1, 200, 0), c(2, 100, 0)],
                24,
                8,
                vec![(1, 16), (2, 8)],
            ),
            // "Most free disk" alone would put all 24 on node 1.
            (
                vec![c(1, 1_000, 0), c(2, 900, 0), c(3, 800, 0)],
                24,
                8,
                vec![(1, 9), (2, 8), (3, 7)],
            ),
            // A full node and a node with no space get nothing.
            (vec![c(1, 0, 0), c(2, 50, 0)], 4, 8, vec![(2, 4)]),
            // Fan-out bound: 10 equal nodes, at most 4 per table-day.
            (
                (1..=10).map(|i| c(i, 100, 0)).collect(),
                8,
                4,
                vec![(1, 2), (2, 2), (3, 2), (4, 2)],
            ),
            // Partitions already placed today (another table) count against a node.
            (vec![c(1, 100, 6), c(2, 100, 0)], 6, 8, vec![(2, 6)]),
        ];
        for (i, (cands, count, spread, want)) in cases.into_iter().enumerate() {
            let got = place(&cands, &BTreeSet::new(), count, spread)
                .unwrap_or_else(|| panic!("case {i}: no placement"));
            assert_eq!(got.len(), count, "case {i}");
            assert_eq!(counts(&got), want.into_iter().collect(), "case {i}");
        }
    }

    #[test]
    fn nodes_already_used_by_the_table_day_are_kept_within_the_bound() {
        let cands: Vec<Candidate> = (1..=6).map(|i| c(i, 100, 0)).collect();
        let used: BTreeSet<NodeId> = [NodeId(5), NodeId(6)].into();
        let got = place(&cands, &used, 6, 2).unwrap_or_else(|| panic!("no placement"));
        assert_eq!(counts(&got), [(5, 3), (6, 3)].into_iter().collect());
    }

    #[test]
    fn no_space_anywhere_is_none_and_the_choice_is_deterministic() {
        assert_eq!(place(&[c(1, 0, 0)], &BTreeSet::new(), 1, 8), None);
        assert_eq!(place(&[], &BTreeSet::new(), 1, 8), None);
        let cands: Vec<Candidate> = (1..=7).map(|i| c(i, 1_000 - i * 10, i as u32)).collect();
        let a = place(&cands, &BTreeSet::new(), 100, 5);
        assert_eq!(a, place(&cands, &BTreeSet::new(), 100, 5));
    }
}
