//! Issue 6's acceptance test in the deterministic executor: tablet nodes report storage while
//! a client creates partitions of several tables and days concurrently, the meta store
//! crashes in the middle and restarts; placement stays consistent: every partition is placed
//! exactly once, on the node first acknowledged, never moved, spread over the nodes within the
//! policy's bound, and the same again after a second crash and restart.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use shale_actors::client::{OpInput, OpOutput, OpResult};
use shale_actors::meta::catalog::{ColumnSpec, PartitionInfo};
use shale_actors::meta::{MetaCall, MetaConfig, MetaReply};
use shale_actors::NodeId;
use shale_sim::NetConfig;
use shale_storage::ts::civil::MS_PER_DAY;
use shale_storage::ts::ColumnType;
use shale_tests::{Cluster, META, NODES};
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

const PER_DAY: u32 = 24;
const DAY0: u64 = 19_723 * MS_PER_DAY; // 2024-01-01
const TABLES: [&str; 2] = ["cpu", "mem"];
const DAYS: u64 = 4;

fn meta(c: &mut Cluster, call: MetaCall) -> MetaReply {
    match c.run_op(OpInput::Meta(call.clone())).result {
        OpResult::Done(OpOutput::Meta(r)) => r,
        other => panic!("{call:?}: {other:?}"),
    }
}

/// (table, date, index) -> (partition id, node), from the meta store's own state.
fn placement(c: &mut Cluster) -> BTreeMap<(String, u32, u32), (u32, NodeId)> {
    let mut out = BTreeMap::new();
    for t in TABLES {
        for d in 0..DAYS {
            let call = MetaCall::GetPartitionInfos {
                table: t.into(),
                timestamp_ms: DAY0 + d * MS_PER_DAY,
                create: false,
            };
            let MetaReply::Partitions(ps) = meta(c, call) else {
                panic!("partitions expected")
            };
            for p in ps {
                assert!(
                    out.insert((p.table.clone(), p.date, p.index), (p.id, p.node))
                        .is_none(),
                    "{p:?} listed twice"
                );
            }
        }
    }
    out
}

fn run(seed: u64) {
    // Unequal disks, frequent reports: placement reads free disk as it changes.
    let mut c = Cluster::with_nodes(seed, NetConfig::default(), |i, n| {
        n.total_disk_bytes = (i as u64) << 30;
        n.storage_report_interval = Duration::from_millis(200);
        n.used_disk_bytes = Some((i as u64) << 20);
    });
    for t in TABLES {
        let columns = vec![ColumnSpec {
            name: "v".into(),
            column_type: ColumnType::F64,
            index: 0,
            comment: String::new(),
        }];
        meta(
            &mut c,
            MetaCall::InsertTableInfo {
                table: t.into(),
                partition_count_per_day: PER_DAY,
                columns,
            },
        );
    }
    // Two writers per (table, day), racing; the meta store crashes while they are in flight.
    let mut ops = Vec::new();
    for _ in 0..2 {
        for t in TABLES {
            for d in 0..DAYS {
                ops.push(c.start(OpInput::Meta(MetaCall::GetPartitionInfos {
                    table: t.into(),
                    timestamp_ms: DAY0 + d * MS_PER_DAY + d * 3_600_000,
                    create: true,
                })));
            }
        }
    }
    c.run_for(Duration::from_millis(3 + seed % 7));
    let finished = ops.iter().filter(|o| c.completion(**o).is_some()).count();
    assert!(
        finished < ops.len(),
        "the crash must hit creations in flight"
    );
    c.sim.crash(META).unwrap();
    c.run_for(Duration::from_millis(700));
    c.sim.restart(META).unwrap();
    let done = c.wait_ops(&ops);

    // What writers were told is what the store keeps.
    let mut acked: BTreeMap<(String, u32, u32), (u32, NodeId)> = BTreeMap::new();
    for d in &done {
        let OpResult::Done(OpOutput::Meta(MetaReply::Partitions(ps))) = &d.result else {
            panic!(
                "a partition creation failed across the restart: {:?}",
                d.result
            )
        };
        assert_eq!(ps.len(), PER_DAY as usize, "a whole day is created at once");
        for p in ps {
            let PartitionInfo { id, node, .. } = *p;
            let prev = acked.insert((p.table.clone(), p.date, p.index), (id, node));
            assert!(
                prev.is_none_or(|x| x == (id, node)),
                "{p:?} answered as {prev:?} too"
            );
        }
    }
    let stored = placement(&mut c);
    assert_eq!(
        stored, acked,
        "placement after the crash differs from what was acknowledged"
    );
    assert_eq!(
        stored.len(),
        TABLES.len() * DAYS as usize * PER_DAY as usize
    );
    let ids: BTreeSet<u32> = stored.values().map(|(id, _)| *id).collect();
    assert_eq!(ids.len(), stored.len(), "partition ids are unique");

    // Spread per the policy: each table-day on several nodes, at most spread_max, and the
    // node with the most free disk holds the most of each day.
    let spread_max = MetaConfig::default().placement_spread_max;
    let mut per_day: BTreeMap<(String, u32), BTreeMap<NodeId, u32>> = BTreeMap::new();
    for ((t, date, _), (_, node)) in &stored {
        *per_day
            .entry((t.clone(), *date))
            .or_default()
            .entry(*node)
            .or_default() += 1;
    }
    for (day, counts) in &per_day {
        assert!(
            counts.len() >= 2 && counts.len() <= spread_max,
            "{day:?}: {counts:?}"
        );
        let biggest = counts
            .iter()
            .max_by_key(|(n, k)| (**k, n.0))
            .map(|(n, _)| *n);
        assert_eq!(
            biggest,
            Some(NODES[2]),
            "{day:?}: {counts:?} (node 3 has the most disk)"
        );
    }

    // Storage reports kept coming and survived the restart; nothing moved.
    c.run_for(Duration::from_secs(1));
    for n in NODES {
        let MetaReply::Node(info) = meta(&mut c, MetaCall::GetNodeInfo { node: n }) else {
            panic!("node info expected")
        };
        assert!(
            info.storage_history.len() >= 2,
            "{n}: {:?}",
            info.storage_history
        );
        assert!(info.used_disk_bytes.is_some());
    }
    let state = c.sim.actor(META).and_then(|w| w.meta()).map(|m| {
        m.state()
            .snapshot()
            .partitions
            .values()
            .map(|p| p.moves)
            .max()
    });
    assert_eq!(state, Some(Some(0)), "no partition moved");

    // A second crash, with no creations in flight: the same placement comes back.
    c.sim.crash(META).unwrap();
    c.run_for(Duration::from_millis(300));
    c.sim.restart(META).unwrap();
    c.run_for(Duration::from_millis(500));
    assert_eq!(placement(&mut c), stored);
}

#[test]
fn placement_is_consistent_across_meta_crashes_with_reports_and_concurrent_creation() {
    for seed in 1..=4 {
        run(seed);
    }
}
