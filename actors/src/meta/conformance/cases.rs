//! The conformance cases: the node registry, storage reports, the id mapping, schemas and
//! partitions, each with good and bad input and a restart over the same backend.
//!
//! Must not: depend on a particular backend or reach into the store's state; every check goes
//! through calls, as a client's would.

use super::*;
use crate::meta::catalog::{column_key, STORAGE_HISTORY_MAX};

fn n(i: u64) -> NodeId {
    NodeId(1_000 + i)
}

pub(super) fn registry(d: &mut Driver) {
    let e1 = d
        .register(n(1), "w1", "10.0.0.1:7001", 1_000)
        .unwrap_or_else(|e| panic!("{e}"));
    // Idempotent by name: the same id, a new epoch.
    let e2 = d
        .register(n(1), "w1", "10.0.0.1:7001", 1_000)
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(e2 > e1);
    assert_eq!(
        d.register(n(2), "w1", "10.0.0.2:7001", 1_000),
        Err(MetaError::NodeNameTaken {
            name: "w1".into(),
            node: n(1)
        })
    );
    assert_eq!(
        d.register(n(2), "w2", "10.0.0.1:7001", 1_000),
        Err(MetaError::NodeAddressTaken {
            addr: "10.0.0.1:7001".into(),
            node: n(1)
        })
    );
    assert!(d
        .register(n(2), "", "10.0.0.2:7001", 1)
        .is_err_and(|e| matches!(e, MetaError::BadRequest(_))));
    d.register(n(2), "w2", "[::1]:7002", 2_000)
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        d.call(CLIENT, MetaCall::GetNodeId { name: "w2".into() }),
        Ok(MetaReply::NodeIdIs(n(2)))
    );
    assert_eq!(
        d.call(
            CLIENT,
            MetaCall::GetNodeId {
                name: "nope".into()
            }
        ),
        Err(MetaError::UnknownNodeName("nope".into()))
    );
    let info = d.node_info(n(2)).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        (info.name.as_str(), info.ip.as_str(), info.port),
        ("w2", "::1", 7002)
    );
    assert_eq!(
        (
            info.total_disk_bytes,
            info.used_disk_bytes,
            info.free_disk_bytes
        ),
        (2_000, None, 2_000)
    );
    assert_eq!(d.node_info(n(9)), Err(MetaError::UnknownNode(n(9))));
    // Heartbeats are acknowledged; a node that stops sending them is marked down.
    let hb = |status| MetaCall::Heartbeat { epoch: e2, status };
    assert!(matches!(
        d.call(n(1), hb(NodeStatus::Up)),
        Ok(MetaReply::HeartbeatAck { .. })
    ));
    assert!(matches!(
        d.call(n(3), hb(NodeStatus::Up)),
        Err(MetaError::NodeUnknown { .. })
    ));
    let e3 = match d.call(
        n(2),
        MetaCall::Heartbeat {
            epoch: Epoch(0),
            status: NodeStatus::Up,
        },
    ) {
        Err(MetaError::NodeUnknown { .. }) => d.node_info(n(2)).map(|i| i.status),
        other => panic!("{other:?}"),
    };
    assert_eq!(e3, Ok(NodeStatus::Up));
    for _ in 0..10 {
        d.advance(Duration::from_secs(1));
        assert!(d.call(n(1), hb(NodeStatus::Up)).is_ok());
    }
    assert_eq!(d.node_info(n(1)).map(|i| i.status), Ok(NodeStatus::Up));
    assert_eq!(
        d.node_info(n(2)).map(|i| i.status),
        Ok(NodeStatus::Down),
        "w2 sent none"
    );
    // A node leaving says so in its heartbeat.
    assert!(matches!(
        d.call(n(1), hb(NodeStatus::Decommissioned)),
        Ok(MetaReply::HeartbeatAck { lease_ms: 0 })
    ));
    assert_eq!(
        d.node_info(n(1)).map(|i| i.status),
        Ok(NodeStatus::Decommissioned)
    );
    let listed = match d.call(
        CLIENT,
        MetaCall::ListNodes {
            after: None,
            limit: 1,
        },
    ) {
        Ok(MetaReply::Nodes { nodes, more }) => (nodes.len(), more),
        other => panic!("{other:?}"),
    };
    assert_eq!(listed, (1, true));
    d.restart();
    let info = d.node_info(n(2)).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        (info.name.as_str(), info.total_disk_bytes, info.status),
        ("w2", 2_000, NodeStatus::Down)
    );
    assert_eq!(
        d.call(CLIENT, MetaCall::GetNodeId { name: "w1".into() }),
        Ok(MetaReply::NodeIdIs(n(1)))
    );
}

pub(super) fn storage_reports(d: &mut Driver) {
    d.register(n(1), "w1", "h1:1", 10_000)
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(d.report(n(5), 1), Err(MetaError::UnknownNode(n(5))));
    for i in 0..(STORAGE_HISTORY_MAX as u64 + 5) {
        d.advance(Duration::from_secs(300));
        d.report(n(1), 100 * i).unwrap_or_else(|e| panic!("{e}"));
    }
    let info = d.node_info(n(1)).unwrap_or_else(|e| panic!("{e}"));
    let last = 100 * (STORAGE_HISTORY_MAX as u64 + 4);
    assert_eq!(info.used_disk_bytes, Some(last));
    assert_eq!(info.free_disk_bytes, 10_000 - last);
    assert_eq!(
        info.storage_history.len(),
        STORAGE_HISTORY_MAX,
        "history is bounded"
    );
    assert!(
        info.storage_history.windows(2).all(|w| w[0].at < w[1].at),
        "timestamped, oldest first"
    );
    d.report(n(1), 50_000).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        d.node_info(n(1)).map(|i| i.free_disk_bytes),
        Ok(0),
        "free saturates"
    );
    let before = d.node_info(n(1));
    d.restart();
    assert_eq!(
        d.node_info(n(1)).map(|i| i.storage_history),
        before.map(|i| i.storage_history)
    );
}

pub(super) fn id_mapping(d: &mut Driver) {
    let a = d.id_of("alpha").unwrap_or_else(|e| panic!("{e}"));
    let b = d.id_of("beta").unwrap_or_else(|e| panic!("{e}"));
    assert_ne!(a, b);
    assert_eq!(d.id_of("alpha"), Ok(a), "created once, then stable");
    assert!(matches!(d.id_of(""), Err(MetaError::BadRequest(_))));
    assert!(matches!(
        d.id_of(&"x".repeat(256)),
        Err(MetaError::BadRequest(_))
    ));
    d.restart();
    assert_eq!(d.id_of("alpha"), Ok(a), "stable across restarts");
    assert_eq!(d.id_of("beta"), Ok(b));
    let c = d.id_of("gamma").unwrap_or_else(|e| panic!("{e}"));
    assert!(c != a && c != b, "new ids never reuse old ones");
}

pub(super) fn schemas(d: &mut Driver) {
    let cols = [
        ("temp", ColumnType::F64),
        ("host", ColumnType::String),
        ("ok", ColumnType::Bool),
    ];
    let t = d
        .insert_table("metrics", 24, &cols)
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(t.columns.len(), 3);
    for c in &t.columns {
        assert_eq!(
            d.id_of(&column_key("metrics", &c.name)),
            Ok(c.id),
            "column ids come from the id mapping"
        );
    }
    assert_eq!(
        d.insert_table("metrics", 24, &cols),
        Ok(t.clone()),
        "same definition: no-op"
    );
    assert_eq!(
        d.insert_table("metrics", 48, &cols),
        Err(MetaError::TableExists("metrics".into()))
    );
    for bad in [0, 7, 1441, 2880] {
        assert_eq!(
            d.insert_table("m2", bad, &cols),
            Err(MetaError::BadPartitionCount(bad))
        );
    }
    let dup = [("a", ColumnType::I32), ("a", ColumnType::I64)];
    assert!(matches!(
        d.insert_table("m2", 24, &dup),
        Err(MetaError::BadSchema(_))
    ));
    assert!(matches!(
        d.insert_table("bad name", 24, &cols),
        Err(MetaError::BadSchema(_))
    ));
    assert!(matches!(
        d.insert_table("m2", 24, &[]),
        Err(MetaError::BadSchema(_))
    ));
    let gap = MetaCall::InsertTableInfo {
        table: "m3".into(),
        partition_count_per_day: 24,
        columns: vec![ColumnSpec {
            name: "a".into(),
            column_type: ColumnType::U32,
            index: 1,
            comment: String::new(),
        }],
    };
    assert!(matches!(d.call(CLIENT, gap), Err(MetaError::BadSchema(_))));
    assert_eq!(d.table("nope"), Err(MetaError::UnknownTable("nope".into())));
    d.restart();
    let got = d.table("metrics").unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(got, t);
    // Written values are checked against the column types this schema returns.
    let typed: Vec<(String, ColumnType)> = got
        .columns
        .iter()
        .map(|c| (c.name.clone(), c.column_type))
        .collect();
    let row = vec![
        Value::F64(1.0),
        Value::String("h".into()),
        Value::Bool(true),
    ];
    assert_eq!(check_values(&typed, &row), Ok(()));
    let bad = vec![Value::I64(1), Value::String("h".into()), Value::Bool(true)];
    assert_eq!(
        check_values(&typed, &bad),
        Err(ValueError::TypeMismatch {
            column: "temp".into(),
            expected: ColumnType::F64,
            got: ColumnType::I64
        })
    );
}

pub(super) fn partitions(d: &mut Driver) {
    d.insert_table("m", 24, &[("v", ColumnType::I64)])
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(d.partitions("m", MAR1, true), Err(MetaError::NoLiveNode));
    for (i, disk) in [(1, 4_000), (2, 2_000), (3, 2_000)] {
        d.register(n(i), &format!("w{i}"), &format!("10.0.0.{i}:7000"), disk)
            .unwrap_or_else(|e| panic!("{e}"));
    }
    assert_eq!(
        d.partitions("x", MAR1, true),
        Err(MetaError::UnknownTable("x".into()))
    );
    let end = shale_storage::ts::civil::TIMESTAMP_END_MS;
    assert_eq!(
        d.partitions("m", end, true),
        Err(MetaError::TimestampOutOfRange(end))
    );
    assert_eq!(
        d.partitions("m", MAR1, false),
        Ok(vec![]),
        "readers create nothing"
    );
    let ps = d
        .partitions("m", MAR1 + 3_600_000 * 5 + 7, true)
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(ps.len(), 24);
    for (i, p) in ps.iter().enumerate() {
        assert_eq!((p.date, p.index), (20240301, i as u32));
        assert_eq!(
            (p.time_start_ms, p.time_end_ms),
            (
                MAR1 + i as u64 * 3_600_000,
                MAR1 + (i as u64 + 1) * 3_600_000
            )
        );
        assert_eq!(p.worker_ip, format!("10.0.0.{}", p.node.0 - 1_000));
        assert_eq!(p.worker_port, 7000);
    }
    let mut per_node: BTreeMap<NodeId, usize> = BTreeMap::new();
    for p in &ps {
        *per_node.entry(p.node).or_insert(0) += 1;
    }
    assert_eq!(
        per_node,
        [(n(1), 12), (n(2), 6), (n(3), 6)].into_iter().collect(),
        "spread by free disk"
    );
    assert_eq!(
        d.partitions("m", MAR1 + DAY_MS - 1, true).as_ref(),
        Ok(&ps),
        "placed once"
    );
    // A move is explicit and the only way a partition changes node.
    let mv = |to| MetaCall::MovePartition {
        table: "m".into(),
        date: 20240301,
        index: 0,
        to,
    };
    let from = ps[0].node;
    let to = if from == n(3) { n(2) } else { n(3) };
    match d.call(CLIENT, mv(to)) {
        Ok(MetaReply::Partitions(p)) => assert_eq!(p[0].node, to),
        other => panic!("{other:?}"),
    }
    assert_eq!(d.call(CLIENT, mv(n(9))), Err(MetaError::UnknownNode(n(9))));
    let unknown = MetaCall::MovePartition {
        table: "m".into(),
        date: 20240302,
        index: 0,
        to,
    };
    assert_eq!(
        d.call(CLIENT, unknown),
        Err(MetaError::UnknownPartition {
            table: "m".into(),
            date: 20240302,
            index: 0
        })
    );
    // Node death does not move anything.
    d.advance(Duration::from_secs(30));
    let after = d
        .partitions("m", MAR1, false)
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(after.iter().all(|p| p.worker_status == NodeStatus::Down));
    assert_eq!(
        after.iter().map(|p| p.node).collect::<Vec<_>>()[1..],
        ps.iter().map(|p| p.node).collect::<Vec<_>>()[1..]
    );
    assert_eq!(
        d.partitions("m", MAR1 + DAY_MS, true),
        Err(MetaError::NoLiveNode)
    );
    d.restart();
    let again = d
        .partitions("m", MAR1, false)
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        again.iter().map(|p| (p.id, p.node)).collect::<Vec<_>>(),
        after.iter().map(|p| (p.id, p.node)).collect::<Vec<_>>()
    );
    assert_eq!(again[0].node, to);
}
