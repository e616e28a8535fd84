//! Crashes at every procedure phase on a real cluster: the master (a standby takes over and
//! resumes or rolls back from meta), the tablet node under split/merge/move, node death
//! (tablets move only after lease + margin), the meta store, and a power cut of the shared
//! file store. Each run must end clean: liveness, coverage, no lost write, linearizable.
//!
//! Crash points are deterministic, not buggified: first a clean run of the procedure records
//! every phase its meta record passes through; then one run per phase crashes at it.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod cluster_support;
use cluster_support::*;
use shale_actors::meta::TabletStatus;
use shale_sim::cluster::{ClusterConfig, Shape, SimCluster, META};
use shale_sim::NodeStatus;
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

/// Every phase name the procedure's meta record shows in a clean run, in order.
fn phases(seed: u64, what: Forced) -> Vec<String> {
    let mut c = loaded(seed, 1);
    force(&mut c, "t", what);
    let mut seen: Vec<String> = Vec::new();
    let deadline = c.now().plus(Duration::from_secs(20));
    c.run_until_cond(deadline, |c| {
        if let Some(p) = phase_of(c, what.kind()) {
            if !seen.contains(&p) {
                seen.push(p);
            }
        }
        no_procedures(c) && all_ready(c, "t")
    });
    seen
}

/// Force `what`, run until its record shows `phase`, then `crash`; finish clean.
fn crash_at(
    seed: u64,
    what: Forced,
    phase: &str,
    crash: impl FnOnce(&mut SimCluster, shale_actors::NodeId),
) {
    let mut c = loaded(seed, 2);
    let node = force(&mut c, "t", what);
    let deadline = c.now().plus(Duration::from_secs(20));
    let reached = c.run_until_cond(deadline, |c| {
        phase_of(c, what.kind()).as_deref() == Some(phase)
    });
    assert!(reached, "{what:?} reached {phase}");
    crash(&mut c, node);
    finish_clean(c);
}

#[test]
fn master_crash_at_each_procedure_phase() {
    for (i, what) in [Forced::Split, Forced::Merge, Forced::Move]
        .into_iter()
        .enumerate()
    {
        let seed = 50 + i as u64;
        let ph = phases(seed, what);
        assert!(!ph.is_empty(), "{what:?} persisted a phase");
        eprintln!("{what:?} phases: {ph:?}");
        for phase in ph {
            crash_at(seed, what, &phase, |c, _| {
                let (leader, _) = c.leader().expect("a leader");
                c.crash(leader).unwrap();
                // The standby must take over and finish or roll back the procedure.
                let deadline = c.now().plus(Duration::from_secs(20));
                assert!(
                    c.run_until_cond(deadline, |c| c.leader().is_some_and(|(id, _)| id != leader))
                );
                assert!(c.run_until_cond(c.now().plus(Duration::from_secs(20)), no_procedures));
                c.restart(leader).unwrap();
            });
        }
    }
}

#[test]
fn node_crash_at_each_procedure_phase() {
    for (i, what) in [Forced::Split, Forced::Merge, Forced::Move]
        .into_iter()
        .enumerate()
    {
        let seed = 60 + i as u64;
        for phase in phases(seed, what) {
            crash_at(seed, what, &phase, |c, node| {
                c.crash(node).unwrap();
                c.run_for(Duration::from_secs(2));
                c.restart(node).unwrap();
            });
        }
    }
}

#[test]
fn dead_node_tablets_move_only_after_lease_and_margin() {
    let mut c = loaded(70, 1);
    let victim = c.tablets("t")[0].assigned.unwrap().node;
    let on_victim: Vec<_> = c
        .tablets("t")
        .iter()
        .filter(|t| t.assigned.is_some_and(|a| a.node == victim))
        .map(|t| t.id)
        .collect();
    let crashed_at = c.now();
    // The lease the victim itself believes it holds (from the send time of its registration
    // or last acknowledged heartbeat; the meta store's expiry is never earlier).
    let lease_until = c
        .node(victim)
        .and_then(|n| n.lease_until())
        .expect("the victim is registered");
    c.sim.stop(victim).unwrap();
    let cfg = c.config().clone();
    // The master takes a node for dead when the meta store marked it Down (lease expiry
    // plus `node_down_margin`) or when its lease expiry plus `clock_skew_margin_ms` has
    // passed, whichever comes first (`master/nodes.rs`). (This test used to add both
    // margins to the crash time less one heartbeat interval; that only held while the
    // last heartbeat before the crash had been answered, and here the victim crashes right
    // after registering.)
    let skew = Duration::from_millis(cfg.master.clock_skew_margin_ms);
    let earliest = lease_until
        .plus(cfg.meta.node_down_margin.min(skew))
        .as_nanos();
    assert!(
        lease_until.as_nanos() + cfg.node.heartbeat_interval.as_nanos() as u64 * 3
            >= crashed_at.plus(cfg.meta.node_lease).as_nanos(),
        "the victim's lease was fresh: {lease_until:?} at the crash at {crashed_at:?}"
    );
    let moved = |c: &SimCluster| {
        c.tablets("t")
            .iter()
            .filter(|t| on_victim.contains(&t.id))
            .any(|t| t.assigned.is_some_and(|a| a.node != victim))
    };
    assert!(c.run_until_cond(c.now().plus(Duration::from_secs(30)), moved));
    assert!(
        c.now().as_nanos() >= earliest,
        "reassigned at {:?}, before lease + margins ({earliest})",
        c.now()
    );
    settle(&mut c, "t", 30);
    let ready_after = c.now().since(crashed_at);
    assert!(ready_after < Duration::from_secs(15), "{ready_after:?}");
    assert!(c
        .tablets("t")
        .iter()
        .all(|t| t.assigned.unwrap().node != victim));
    assert_eq!(c.sim.status(victim), Some(NodeStatus::Stopped));
    finish_clean(c);
}

#[test]
fn meta_store_crash_and_restart_under_load() {
    let mut c = loaded(71, 1);
    c.run_for(Duration::from_secs(1));
    c.crash(META).unwrap();
    c.run_for(Duration::from_secs(1));
    c.restart(META).unwrap();
    c.run_for(Duration::from_secs(2));
    // A procedure right after recovery.
    force(&mut c, "t", Forced::Split);
    c.reboot(META).unwrap();
    settle(&mut c, "t", 30);
    finish_clean(c);
}

#[test]
fn master_partitioned_from_meta_hands_over_to_the_standby() {
    let mut c = loaded(72, 2);
    let (leader, _) = c.leader().unwrap();
    c.partition(&[leader], &[META]);
    let deadline = c.now().plus(Duration::from_secs(20));
    assert!(c.run_until_cond(deadline, |c| c.leader().is_some_and(|(id, _)| id != leader)));
    force(&mut c, "t", Forced::Move);
    c.heal();
    settle(&mut c, "t", 30);
    finish_clean(c);
}

#[test]
fn power_cut_of_the_shared_store_keeps_every_acknowledged_write() {
    let mut c = loaded(73, 1);
    c.run_for(Duration::from_secs(2));
    c.power_cut().unwrap();
    let deadline = c.now().plus(Duration::from_secs(30));
    assert!(c.run_until_cond(deadline, |c| c.converged().is_ok()));
    assert!(c
        .tablets("t")
        .iter()
        .all(|t| t.status == TabletStatus::Ready));
    finish_clean(c);
}

/// `kill -9` of a one-process cluster (`shale dev`): the meta store, the master and every
/// tablet node die together at each procedure phase and restart together. The restarted
/// master must finish or roll back the procedure and every tablet must be Ready again.
#[test]
fn whole_process_crash_at_each_procedure_phase() {
    for (i, what) in [Forced::Split, Forced::Merge, Forced::Move]
        .into_iter()
        .enumerate()
    {
        let seed = 80 + i as u64;
        for phase in phases(seed, what) {
            let mut c = loaded(seed, 1);
            let node = force(&mut c, "t", what);
            let deadline = c.now().plus(Duration::from_secs(20));
            let reached = c.run_until_cond(deadline, |c| {
                phase_of(c, what.kind()).as_deref() == Some(phase.as_str())
            });
            assert!(reached, "{what:?} reached {phase}");
            assert!(c.node_ids().contains(&node));
            let all: Vec<_> = [META]
                .into_iter()
                .chain(c.master_ids())
                .chain(c.node_ids())
                .collect();
            for id in &all {
                c.crash(*id).unwrap();
            }
            for id in &all {
                c.restart(*id).unwrap();
            }
            eprintln!("whole-process crash: {what:?} at {phase}");
            let r = c.finish(Duration::from_secs(60));
            assert_clean(&c, &r);
        }
    }
}
