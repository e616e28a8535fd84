//! Network duplication of data requests (kitchen-sink seeds 0 and 3, docs/simulation.md): a
//! second copy of a mutation must never be applied. The workload is all read-modify-writes,
//! deletes and puts on a few rows, so a re-applied append or increment, or a delete applied
//! again after a later put, shows up as a non-linearizable history. Deterministic per seed.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod cluster_support;
use cluster_support::*;
use shale_sim::cluster::{ClusterConfig, Shape, SimCluster};
use shale_sim::NetConfig;
use std::time::Duration;

const RMW_MIX: &str =
    "{ put = 2, get = 3, delete = 1, check_and_mutate = 1, increment = 2, append = 2 }";

fn run(seed: u64) {
    let mut c = SimCluster::new(ClusterConfig::new(seed, Shape::new(1, 3, 2))).unwrap();
    c.create_table("t", &[b"k00000004"]).unwrap();
    // A third of all messages arrive twice, each copy with its own latency, so copies of a
    // mutation land both right behind the first and after later writes to the same row.
    c.set_net(NetConfig {
        latency_min: Duration::from_millis(1),
        latency_max: Duration::from_millis(20),
        loss_probability: 0.0,
        duplicate_probability: 0.3,
        reorder: true,
    })
    .unwrap();
    c.add_workload(workload("t", 8, 200, 4, 8, RMW_MIX, seed));
    assert!(
        c.drain_workload(Duration::from_secs(30)),
        "the workload finished"
    );
    let r = c.finish(Duration::from_secs(30));
    assert_clean(&c, &r);
    assert!(r.ops_answered > 400, "the workload ran: {r:?}");
}

#[test]
fn duplicated_mutations_are_applied_once() {
    for seed in 0..3 {
        run(seed);
    }
}
