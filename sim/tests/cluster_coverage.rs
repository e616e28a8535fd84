//! Scripted runs for paths the seed sweep rarely or never takes: a merge that rolls back
//! because a parent's node restarted under it, a split resumed by a new master after the
//! splitting node died, and a tablet node refusing a client that asks for an old tablet
//! version. Each asserts its coverage mark was hit and the run ends clean.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod cluster_support;
use cluster_support::*;
use shale_actors::client::{OpInput, OpResult};
use shale_actors::proto::admin::AdminCall;
use shale_actors::proto::data::ReadFilter;
use shale_sim::cluster::{ClusterConfig, Shape, SimCluster};
use std::time::Duration;

fn loaded(seed: u64, masters: usize) -> SimCluster {
    let mut c = SimCluster::new(ClusterConfig::new(seed, Shape::new(masters, 3, 2))).unwrap();
    c.create_table("t", &[b"k00000040", b"k00000080"]).unwrap();
    c.add_workload(workload("t", 120, 200, 8, 12, MIX, seed));
    c.run_for(Duration::from_millis(500));
    c
}

fn finish_clean(mut c: SimCluster) {
    let r = c.finish(Duration::from_secs(40));
    assert_clean(&c, &r);
}

#[test]
fn merge_rolls_back_when_a_parents_node_restarted_under_it() {
    let mut c = loaded(80, 1);
    let t = c.tablets("t");
    let (left_node, right_node) = (t[0].assigned.unwrap().node, t[1].assigned.unwrap().node);
    assert_ne!(left_node, right_node, "the parents are on two nodes");
    // The right parent's node restarts: it comes back with a new epoch serving nothing, and
    // the tablet's last writes are only in its log.
    let before = c.node(right_node).and_then(|n| n.epoch());
    c.crash(right_node).unwrap();
    c.restart(right_node).unwrap();
    let deadline = c.now().plus(Duration::from_secs(10));
    assert!(c.run_until_cond(deadline, |c| {
        c.node(right_node)
            .and_then(|n| n.epoch())
            .is_some_and(|e| Some(e) != before)
    }));
    // Merge before the master's next query round notices the restart.
    force(&mut c, "t", Forced::Merge);
    let deadline = c.now().plus(Duration::from_secs(20));
    assert!(c.run_until_cond(deadline, |c| no_procedures(c) && all_ready(c, "t")));
    assert!(c.sim.marks().count("master.merge.parent_lost") > 0);
    assert!(c.sim.marks().count("master.merge.rollback") > 0);
    assert_eq!(c.tablets("t").len(), 3, "the merge gave up");
    finish_clean(c);
}

#[test]
fn a_new_master_rolls_back_a_split_whose_node_died() {
    let mut c = loaded(81, 2);
    let node = force(&mut c, "t", Forced::Split);
    let deadline = c.now().plus(Duration::from_secs(10));
    let splitting = |c: &SimCluster| {
        phase_of(c, shale_actors::meta::ProcedureKind::Split).as_deref() == Some("splitting")
    };
    assert!(c.run_until_cond(deadline, splitting));
    // The splitting node and every master go down; a master comes back only after the
    // node's lease and every margin ran out, so it resumes the split with the node dead.
    c.crash(node).unwrap();
    for m in c.master_ids() {
        c.crash(m).unwrap();
    }
    c.run_for(Duration::from_secs(7));
    c.restart(c.master_ids()[0]).unwrap();
    let deadline = c.now().plus(Duration::from_secs(20));
    assert!(c.run_until_cond(deadline, no_procedures));
    assert!(c.sim.marks().count("master.split.resume_node_dead") > 0);
    assert_eq!(c.tablets("t").len(), 3, "the split rolled back");
    c.restart(node).unwrap();
    c.restart(c.master_ids()[1]).unwrap();
    settle(&mut c, "t", 30);
    finish_clean(c);
}

#[test]
fn a_node_refuses_a_client_that_asks_for_an_old_tablet_version() {
    let mut c = SimCluster::new(ClusterConfig::new(82, Shape::new(1, 2, 1))).unwrap();
    c.create_table("t", &[]).unwrap();
    settle(&mut c, "t", 10);
    let get = OpInput::Get {
        table: "t".into(),
        row: b"k1".to_vec(),
        filter: ReadFilter::default(),
    };
    // The admin client caches the tablet on its node at the current version...
    assert!(matches!(c.op(get.clone()).unwrap(), OpResult::Done(_)));
    let t = c.tablets("t")[0].clone();
    let home = t.assigned.unwrap().node;
    let away = c.node_ids().into_iter().find(|n| *n != home).unwrap();
    // ...then the tablet moves away and back: the same node at the same epoch now serves it
    // two versions later, and the cached request asks for the old one.
    for to in [away, home] {
        c.admin_ok(AdminCall::MoveTablet {
            tablet: t.id,
            node: to,
        })
        .unwrap();
        settle(&mut c, "t", 10);
    }
    assert_eq!(c.tablets("t")[0].version, t.version + 2);
    assert!(matches!(c.op(get).unwrap(), OpResult::Done(_)));
    assert!(c.sim.marks().count("node.stale_version_refused") > 0);
    finish_clean(c);
}
