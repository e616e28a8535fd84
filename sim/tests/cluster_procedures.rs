//! Forced split, merge and move through admin calls on a real cluster under a concurrent
//! workload: each ends with every tablet Ready, exact coverage, zero lost writes and a
//! linearizable history. Also failures of node requests and meta writes (partitions of the
//! master from a node or from the meta store while a procedure runs).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod cluster_support;
use cluster_support::*;
use shale_sim::cluster::{master_id, ClusterConfig, Shape, SimCluster, META};
use std::time::Duration;

const SPLITS: [&[u8]; 2] = [b"k00000040", b"k00000080"];

fn loaded(seed: u64) -> SimCluster {
    let mut c = SimCluster::new(ClusterConfig::new(seed, Shape::new(1, 3, 2))).unwrap();
    c.create_table("t", &SPLITS).unwrap();
    c.add_workload(workload("t", 120, 300, 8, 16, MIX, seed));
    c.run_for(Duration::from_secs(1));
    c
}

fn finish_clean(mut c: SimCluster) {
    let r = c.finish(Duration::from_secs(30));
    assert!(
        r.ops_answered > 300,
        "{} answered of {} ({} pending)",
        r.ops_answered,
        r.ops_started,
        r.ops_pending
    );
    assert_clean(&c, &r);
}

#[test]
fn forced_split_under_load() {
    let mut c = loaded(21);
    let before = ids(&c, "t");
    force(&mut c, "t", Forced::Split);
    settle(&mut c, "t", 20);
    let after = c.tablets("t");
    assert_eq!(after.len(), before.len() + 1);
    assert!(!after.iter().any(|t| t.id == before[0]), "parent gone");
    let children: Vec<_> = after
        .iter()
        .filter(|t| t.parents == vec![before[0]])
        .collect();
    assert_eq!(children.len(), 2);
    assert!(children.iter().all(|t| t.version >= 2));
    c.run_for(Duration::from_secs(2));
    finish_clean(c);
}

#[test]
fn forced_merge_under_load() {
    let mut c = loaded(22);
    let before = ids(&c, "t");
    force(&mut c, "t", Forced::Merge);
    settle(&mut c, "t", 20);
    let after = c.tablets("t");
    assert_eq!(after.len(), before.len() - 1);
    assert_eq!(after[0].parents, vec![before[0], before[1]]);
    assert_eq!(after[0].end, SPLITS[1].to_vec());
    c.run_for(Duration::from_secs(2));
    finish_clean(c);
}

#[test]
fn forced_move_under_load() {
    let mut c = loaded(23);
    let t0 = c.tablets("t")[0].clone();
    let from = force(&mut c, "t", Forced::Move);
    settle(&mut c, "t", 20);
    let moved = c.tablets("t")[0].clone();
    assert_eq!(moved.id, t0.id);
    assert_ne!(moved.assigned.unwrap().node, from);
    assert!(moved.version > t0.version);
    assert!(c
        .node(from)
        .unwrap()
        .tablets()
        .iter()
        .all(|(id, _, _)| *id != t0.id));
    c.run_for(Duration::from_secs(2));
    finish_clean(c);
}

#[test]
fn split_then_merge_back_then_move_in_sequence() {
    let mut c = loaded(24);
    force(&mut c, "t", Forced::Split);
    settle(&mut c, "t", 20);
    force(&mut c, "t", Forced::Merge);
    settle(&mut c, "t", 20);
    force(&mut c, "t", Forced::Move);
    settle(&mut c, "t", 20);
    assert_eq!(c.tablets("t").len(), 3);
    finish_clean(c);
}

/// Control requests from the master to the node fail (no answer) while the procedure runs:
/// the procedure retries or rolls back, and ends once the link heals.
#[test]
fn node_requests_fail_during_each_procedure() {
    for (i, what) in [Forced::Split, Forced::Merge, Forced::Move]
        .into_iter()
        .enumerate()
    {
        let mut c = loaded(30 + i as u64);
        let (call, node) = force_call(&c, "t", what);
        c.partition(&[master_id(0)], &[node]);
        // The call itself is answered by the master; the node commands are what fail.
        let _ = c.admin(call).unwrap();
        c.run_for(Duration::from_secs(3));
        c.heal();
        settle(&mut c, "t", 30);
        finish_clean(c);
    }
}

/// The master cannot reach the meta store for a while mid-procedure: its writes fail (and
/// its lease may lapse); after the heal the procedure ends and memory agrees with meta.
#[test]
fn meta_writes_fail_during_each_procedure() {
    for (i, what) in [Forced::Split, Forced::Merge, Forced::Move]
        .into_iter()
        .enumerate()
    {
        let mut c = loaded(40 + i as u64);
        let (call, _) = force_call(&c, "t", what);
        let _ = c.admin(call).unwrap();
        c.partition(&[master_id(0)], &[META]);
        c.run_for(Duration::from_secs(2 + i as u64 * 2));
        c.heal();
        settle(&mut c, "t", 30);
        finish_clean(c);
    }
}
