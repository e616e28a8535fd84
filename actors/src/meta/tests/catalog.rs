//! The backend conformance suite (`meta::conformance`) on the embedded backends: in memory
//! and on a simulated file store.

use crate::meta::conformance::run_all;
use crate::meta::{FsBackend, MemBackend, MetaBackend};
use shale_storage::fs::{SimFs, SimFsConfig};
use std::sync::Arc;

#[test]
fn conformance_on_the_memory_backend() {
    run_all(&|| Arc::new(MemBackend::new()) as Arc<dyn MetaBackend>);
}

#[test]
fn conformance_on_the_file_store_backend() {
    run_all(&|| {
        let fs = Arc::new(SimFs::new(SimFsConfig::default()));
        Arc::new(FsBackend::new(fs, "/meta")) as Arc<dyn MetaBackend>
    });
}

/// Nodes report storage while partitions of several days are created, all in flight at once;
/// the store crashes with some of it unsynced. Every acknowledged placement survives
/// unchanged, nothing unacknowledged is half there, and asking again after the restart
/// answers what was acknowledged.
#[test]
fn placement_is_stable_across_a_crash_with_reports_in_flight() {
    use super::harness::Harness;
    use crate::kernel::{Addr, NodeId};
    use crate::meta::{ColumnSpec, MetaCall, MetaReply, PartitionInfo};
    use shale_storage::ts::ColumnType;
    const DAY_MS: u64 = 86_400_000;
    let mut h = Harness::new();
    for i in 1..=4u64 {
        let call = MetaCall::RegisterNode {
            name: format!("w{i}"),
            addr: Addr(format!("10.0.0.{i}:7000")),
            total_disk_bytes: 1_000 * i,
        };
        assert!(h.call(NodeId(i), call).is_ok());
    }
    let table = MetaCall::InsertTableInfo {
        table: "m".into(),
        partition_count_per_day: 48,
        columns: vec![ColumnSpec {
            name: "v".into(),
            column_type: ColumnType::F64,
            index: 0,
            comment: String::new(),
        }],
    };
    assert!(h.call(NodeId(9), table).is_ok());
    let client = NodeId(9);
    let mut asked = Vec::new();
    for round in 0..6u64 {
        for i in 1..=4u64 {
            let report = MetaCall::ReportStorage {
                node: NodeId(i),
                used_disk_bytes: 100 * round * i,
            };
            h.send(NodeId(i), report);
        }
        let day = (19_783 + round) * DAY_MS;
        let id = h.send(
            client,
            MetaCall::GetPartitionInfos {
                table: "m".into(),
                timestamp_ms: day,
                create: true,
            },
        );
        asked.push((day, id));
        if round == 2 {
            // The first job carries the first record; the second the batch queued behind it
            // (rounds 0..=2). Rounds 3.. stay in flight and die with the crash.
            h.run_one_job();
            h.run_one_job();
        }
    }
    h.crash();
    assert!(h.store.state().check_invariants().is_ok());
    let mut acknowledged = 0;
    for (day, id) in asked {
        let again = match h.call(
            client,
            MetaCall::GetPartitionInfos {
                table: "m".into(),
                timestamp_ms: day,
                create: false,
            },
        ) {
            Ok(MetaReply::Partitions(p)) => p,
            other => panic!("{other:?}"),
        };
        match h.response(client, id) {
            Some(Ok(MetaReply::Partitions(before))) => {
                acknowledged += 1;
                let key = |p: &[PartitionInfo]| -> Vec<(u32, u32, NodeId)> {
                    p.iter().map(|p| (p.id, p.index, p.node)).collect()
                };
                assert_eq!(key(&again), key(&before), "acknowledged placement changed");
                let nodes: std::collections::BTreeSet<_> = before.iter().map(|p| p.node).collect();
                assert!(nodes.len() >= 3, "a day is spread: {nodes:?}");
            }
            None => assert!(
                again.is_empty() || again.len() == 48,
                "a day is placed whole or not at all"
            ),
            Some(other) => panic!("{other:?}"),
        }
    }
    assert_eq!(
        acknowledged, 3,
        "rounds 0..=2 synced and were acknowledged, 3.. were lost"
    );
}
