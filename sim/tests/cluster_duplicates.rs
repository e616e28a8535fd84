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

/// Admin calls under duplication (the open finding of session 1): the master takes a
/// mutating admin request once per (sender, request id), so a duplicated `CreateTable`
/// answers `Done` to its caller rather than `TableExists`, and a duplicated disable, enable
/// or split is not applied twice. Every message is delivered twice, each copy with its own
/// latency.
#[test]
fn duplicated_admin_calls_are_taken_once() {
    use shale_actors::client::ClientError;
    use shale_actors::meta::{TableStatus, TabletStatus};
    use shale_actors::proto::admin::{AdminCall, AdminError};
    for seed in 0..4 {
        let mut c = SimCluster::new(ClusterConfig::new(seed, Shape::new(1, 2, 2))).unwrap();
        c.set_net(NetConfig {
            latency_min: Duration::from_millis(1),
            latency_max: Duration::from_millis(40),
            loss_probability: 0.0,
            duplicate_probability: 1.0,
            reorder: true,
        })
        .unwrap();
        for name in ["a", "b"] {
            c.create_table(name, &[b"k00000004"])
                .unwrap_or_else(|e| panic!("seed {seed}: create {name}: {e}"));
        }
        let all = |c: &SimCluster, s: TabletStatus| {
            c.tablets("a").iter().all(|t| t.status == s) && c.tablets("a").len() == 2
        };
        c.admin_ok(AdminCall::DisableTable { name: "a".into() })
            .unwrap_or_else(|e| panic!("seed {seed}: disable: {e}"));
        let deadline = c.now().plus(Duration::from_secs(30));
        assert!(c.run_until_cond(deadline, |c| all(c, TabletStatus::Disabled)));
        // The disable procedure finishes a little after its last tablet is Disabled; until
        // then an enable is refused (that refusal is not what this test is about).
        let mut enabled = false;
        for _ in 0..50 {
            match c
                .admin(AdminCall::EnableTable { name: "a".into() })
                .unwrap()
            {
                Ok(_) => {
                    enabled = true;
                    break;
                }
                Err(ClientError::Admin(AdminError::WrongTableStatus {
                    status: TableStatus::Disabled,
                    ..
                })) => c.run_for(Duration::from_millis(100)),
                Err(e) => panic!("seed {seed}: enable: {e}"),
            }
        }
        assert!(enabled, "seed {seed}: the disable procedure never finished");
        let deadline = c.now().plus(Duration::from_secs(30));
        assert!(c.run_until_cond(deadline, |c| all(c, TabletStatus::Ready)));
        let r = c.finish(Duration::from_secs(30));
        assert_clean(&c, &r);
    }
}
