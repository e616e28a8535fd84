//! The tablet node, client and meta store together in the deterministic executor, driven by a
//! test-only fake master: loads (create, open, merge), data through the client, split under
//! concurrent writes, moves, fencing, leases, crashes, group commit and increments.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use shale_actors::client::{ClientError, OpInput, OpOutput, OpResult};
use shale_actors::meta::{Op, TabletId};
use shale_actors::proto::control::{ControlCmd, ControlError, ControlReply, LoadMode};
use shale_actors::proto::data::{
    DataError, DataOp, DataRequest, Mutation, ReadFilter, RowMutation,
};
use shale_actors::proto::limits::InputError;
use shale_actors::proto::RequestId;
use shale_actors::Epoch;
use shale_tests::{Cluster, FAMILY, NODES, TABLE};
use std::time::Duration;

fn put(row: &str, value: &str) -> OpInput {
    OpInput::Write {
        table: TABLE.into(),
        rows: vec![RowMutation {
            row: row.as_bytes().to_vec(),
            mutations: vec![Mutation::Put {
                family: FAMILY.into(),
                qualifier: b"q".to_vec(),
                ts: None,
                value: value.as_bytes().to_vec(),
            }],
        }],
    }
}

fn get(row: &str) -> OpInput {
    OpInput::Get {
        table: TABLE.into(),
        row: row.as_bytes().to_vec(),
        filter: ReadFilter::default(),
    }
}

fn scan(reverse: bool, limit: u32) -> OpInput {
    OpInput::Scan {
        table: TABLE.into(),
        start: Vec::new(),
        end: Vec::new(),
        reverse,
        limit,
        filter: ReadFilter::default(),
    }
}

fn value_of(result: &OpResult) -> Option<Vec<u8>> {
    match result {
        OpResult::Done(OpOutput::Row(r)) => r.cells.first().map(|c| c.value.clone()),
        other => panic!("not a row: {other:?}"),
    }
}

fn rows_of(result: &OpResult) -> Vec<Vec<u8>> {
    match result {
        OpResult::Done(OpOutput::Rows(rows)) => rows.iter().map(|r| r.row.clone()).collect(),
        other => panic!("not rows: {other:?}"),
    }
}

fn key(i: usize) -> String {
    format!("row{i:04}")
}

/// One tablet covering the whole table, created on `node` and recorded Ready in meta.
fn one_tablet(c: &mut Cluster, node: shale_actors::NodeId) -> u64 {
    let spec = Cluster::spec(1, b"", b"", 1);
    let r = c.control(
        node,
        ControlCmd::Load {
            tablet: spec.clone(),
            mode: LoadMode::Create,
        },
    );
    assert!(matches!(r, Ok(ControlReply::Loaded { .. })), "{r:?}");
    let op = c.record_tablet(&spec, Some(node), vec![]);
    c.txn(vec![op]);
    1
}

fn write_rows(c: &mut Cluster, n: usize) {
    let ops: Vec<_> = (0..n)
        .map(|i| c.start(put(&key(i), &format!("v{i}"))))
        .collect();
    for done in c.wait_ops(&ops) {
        assert_eq!(done.result, OpResult::Done(OpOutput::Written), "{done:?}");
    }
}

fn read_all(c: &mut Cluster, n: usize) {
    let all = c.run_op(scan(false, 100_000));
    let want: Vec<Vec<u8>> = (0..n).map(|i| key(i).into_bytes()).collect();
    assert_eq!(rows_of(&all.result), want);
    let back = c.run_op(scan(true, 100_000));
    let mut rev = want.clone();
    rev.reverse();
    assert_eq!(rows_of(&back.result), rev);
}

#[test]
fn create_write_read_scan_both_ways() {
    let mut c = Cluster::new(1);
    one_tablet(&mut c, NODES[0]);
    write_rows(&mut c, 40);
    let g = c.run_op(get(&key(7)));
    assert_eq!(value_of(&g.result), Some(b"v7".to_vec()));
    read_all(&mut c, 40);
    // A limited scan stops at its limit, in both directions.
    let few = c.run_op(scan(true, 3));
    assert_eq!(
        rows_of(&few.result),
        vec![
            key(39).into_bytes(),
            key(38).into_bytes(),
            key(37).into_bytes()
        ]
    );
    // Delete a row, then it is gone.
    let del = c.run_op(OpInput::Write {
        table: TABLE.into(),
        rows: vec![RowMutation {
            row: key(7).into_bytes(),
            mutations: vec![Mutation::DeleteRow],
        }],
    });
    assert_eq!(del.result, OpResult::Done(OpOutput::Written));
    assert_eq!(value_of(&c.run_op(get(&key(7))).result), None);
    // Query reports the tablet with its size and rates.
    let r = c.control(NODES[0], ControlCmd::Query { round: 1 });
    let Ok(ControlReply::Report(report)) = r else {
        panic!("{r:?}")
    };
    assert_eq!(report.tablets.len(), 1);
    assert!(report.tablets[0].size_bytes > 0);
    assert_eq!(report.epoch, c.epoch(NODES[0]).unwrap());
}

#[test]
fn group_commit_batches_concurrent_writes() {
    let mut c = Cluster::new(2);
    one_tablet(&mut c, NODES[0]);
    let before = c.node(NODES[0]).counters();
    write_rows(&mut c, 200);
    let after = c.node(NODES[0]).counters();
    let jobs = after.commit_jobs - before.commit_jobs;
    assert_eq!(after.writes_committed - before.writes_committed, 200);
    assert!(jobs < 100, "200 concurrent writes took {jobs} commit jobs");
    assert!(c.sim.marks().count("node.group_commit_batched") > 0);
    let syncs = c
        .node(NODES[0])
        .engine(TabletId(1))
        .unwrap()
        .stats()
        .wal_syncs;
    assert!(syncs < 100, "{syncs} WAL syncs for 200 writes");
}

#[test]
fn concurrent_increments_never_lose_an_update() {
    let mut c = Cluster::new(3);
    one_tablet(&mut c, NODES[0]);
    let inc = || OpInput::Increment {
        table: TABLE.into(),
        row: b"counter".to_vec(),
        family: FAMILY.into(),
        qualifier: b"n".to_vec(),
        delta: 1,
    };
    let ops: Vec<_> = (0..60).map(|_| c.start(inc())).collect();
    let mut seen: Vec<i64> = c
        .wait_ops(&ops)
        .iter()
        .map(|d| match d.result {
            OpResult::Done(OpOutput::Counter(v)) => v,
            ref other => panic!("{other:?}"),
        })
        .collect();
    seen.sort_unstable();
    assert_eq!(seen, (1..=60).collect::<Vec<i64>>());
    // Append and check-and-mutate are serialized the same way.
    let a = c.run_op(OpInput::Append {
        table: TABLE.into(),
        row: b"log".to_vec(),
        family: FAMILY.into(),
        qualifier: b"l".to_vec(),
        suffix: b"ab".to_vec(),
    });
    assert_eq!(a.result, OpResult::Done(OpOutput::Appended(b"ab".to_vec())));
    let cam = |expect: &[u8]| OpInput::CheckAndMutate {
        table: TABLE.into(),
        row: b"log".to_vec(),
        check: shale_actors::proto::data::Condition::Equals {
            family: FAMILY.into(),
            qualifier: b"l".to_vec(),
            value: expect.to_vec(),
        },
        on_match: vec![Mutation::Put {
            family: FAMILY.into(),
            qualifier: b"l".to_vec(),
            ts: None,
            value: b"swapped".to_vec(),
        }],
        on_miss: vec![],
    };
    assert_eq!(
        c.run_op(cam(b"ab")).result,
        OpResult::Done(OpOutput::Checked(true))
    );
    assert_eq!(
        c.run_op(cam(b"ab")).result,
        OpResult::Done(OpOutput::Checked(false))
    );
    // Not a counter.
    let bad = c.run_op(OpInput::Increment {
        table: TABLE.into(),
        row: b"log".to_vec(),
        family: FAMILY.into(),
        qualifier: b"l".to_vec(),
        delta: 1,
    });
    assert_eq!(
        bad.result,
        OpResult::Failed(ClientError::Data(DataError::NotACounter))
    );
}

fn raw(
    c: &Cluster,
    node: shale_actors::NodeId,
    version: u64,
    epoch: Option<Epoch>,
    op: DataOp,
) -> DataRequest {
    DataRequest {
        id: RequestId(0),
        table: TABLE.into(),
        tablet: TabletId(1),
        tablet_version: version,
        node_epoch: epoch.unwrap_or_else(|| c.epoch(node).unwrap()),
        op,
    }
}

#[test]
fn stale_epochs_terms_versions_and_bad_input_get_typed_errors() {
    let mut c = Cluster::new(4);
    one_tablet(&mut c, NODES[0]);
    let n = NODES[0];
    let epoch = c.epoch(n).unwrap();
    let get_op = |row: &[u8]| DataOp::Get {
        row: row.to_vec(),
        filter: ReadFilter::default(),
    };
    let r = c.raw_data(n, raw(&c, n, 1, Some(Epoch(epoch.0 + 7)), get_op(b"a")));
    assert!(
        matches!(r.result, Err(DataError::StaleEpoch { .. })),
        "{r:?}"
    );
    let r = c.raw_data(n, raw(&c, n, 9, None, get_op(b"a")));
    assert!(
        matches!(
            r.result,
            Err(DataError::StaleVersion {
                asked: 9,
                served: 1,
                ..
            })
        ),
        "{r:?}"
    );
    let mut other = raw(&c, n, 1, None, get_op(b"a"));
    other.tablet = TabletId(77);
    assert!(matches!(
        c.raw_data(n, other).result,
        Err(DataError::NotServing { .. })
    ));
    let r = c.raw_data(n, raw(&c, n, 1, None, get_op(b"")));
    assert_eq!(r.result, Err(DataError::Invalid(InputError::EmptyRow)));
    let huge = vec![b'x'; shale_actors::proto::limits::ROW_KEY_BYTES_MAX + 1];
    let r = c.raw_data(n, raw(&c, n, 1, None, get_op(&huge)));
    assert!(matches!(
        r.result,
        Err(DataError::Invalid(InputError::RowTooLarge { .. }))
    ));
    let bad_family = DataOp::Write {
        rows: vec![RowMutation {
            row: b"a".to_vec(),
            mutations: vec![Mutation::DeleteFamily {
                family: "nope".into(),
            }],
        }],
    };
    let r = c.raw_data(n, raw(&c, n, 1, None, bad_family));
    assert_eq!(r.result, Err(DataError::NoSuchFamily("nope".into())));
    // The client checks input before sending.
    let op = c.sim.invoke(shale_tests::CLIENT, |w, ctx| match w {
        shale_tests::World::Cluster(x) => {
            ctx.nest(|m| m, |t| t, |j| j, |cx| x.start_op(get(""), cx))
        }
        _ => None,
    });
    assert!(matches!(
        op,
        Ok(Some(Err(ClientError::Invalid(InputError::EmptyRow))))
    ));

    // Master terms: a newer term is obeyed and remembered; an older one is refused.
    let r = c.control_as(n, 5, epoch, ControlCmd::Query { round: 1 });
    assert!(matches!(r, Ok(ControlReply::Report(_))));
    let r = c.control_as(n, 4, epoch, ControlCmd::Query { round: 2 });
    assert_eq!(r, Err(ControlError::StaleTerm { asked: 4, seen: 5 }));
    let r = c.control_as(n, 5, Epoch(epoch.0 + 1), ControlCmd::Query { round: 3 });
    assert!(matches!(r, Err(ControlError::StaleEpoch { .. })));
    c.term = 5;
    // Loading the same tablet at another version is refused; at the same version it is a no-op.
    let r = c.control(
        n,
        ControlCmd::Load {
            tablet: Cluster::spec(1, b"", b"", 2),
            mode: LoadMode::Open,
        },
    );
    assert!(matches!(r, Err(ControlError::StaleVersion { .. })), "{r:?}");
    let r = c.control(
        n,
        ControlCmd::Load {
            tablet: Cluster::spec(1, b"", b"", 1),
            mode: LoadMode::Open,
        },
    );
    assert!(matches!(r, Ok(ControlReply::Loaded { .. })), "{r:?}");
    // Create over an existing tablet is refused, open of a missing one too.
    let r = c.control(
        NODES[1],
        ControlCmd::Load {
            tablet: Cluster::spec(1, b"", b"", 1),
            mode: LoadMode::Create,
        },
    );
    assert!(matches!(r, Err(ControlError::Refused(_))), "{r:?}");
    let r = c.control(
        NODES[1],
        ControlCmd::Load {
            tablet: Cluster::spec(9, b"", b"", 1),
            mode: LoadMode::Open,
        },
    );
    assert!(matches!(r, Err(ControlError::Refused(_))), "{r:?}");
    assert!(c.sim.marks().count("node.stale_epoch_refused") >= 2);
    assert!(c.sim.marks().count("node.stale_term_refused") >= 1);
}

#[test]
fn the_same_seed_gives_the_same_trace() {
    let run = |seed| {
        let mut c = Cluster::new(seed);
        one_tablet(&mut c, NODES[0]);
        write_rows(&mut c, 30);
        read_all(&mut c, 30);
        c.sim.trace_hash()
    };
    assert_eq!(run(11), run(11));
    assert_ne!(run(11), run(12));
}

#[test]
fn split_under_concurrent_writes_loses_nothing_and_shows_no_errors() {
    let mut c = Cluster::new(5);
    one_tablet(&mut c, NODES[0]);
    write_rows(&mut c, 100);
    // Writes keep coming while the split runs.
    let ops: Vec<_> = (100..300).map(|i| c.start(put(&key(i), "late"))).collect();
    c.run_for(Duration::from_millis(3));
    let left = Cluster::spec(2, b"", key(150).as_bytes(), 1);
    let right = Cluster::spec(3, key(150).as_bytes(), b"", 1);
    let cmd = ControlCmd::Split {
        tablet: TabletId(1),
        version: 1,
        key: Some(key(150).into_bytes()),
        left: (left.id, left.path.clone()),
        right: (right.id, right.path.clone()),
    };
    let r = c.control(NODES[0], cmd.clone());
    let Ok(ControlReply::Split {
        key: k,
        left_size_bytes,
        right_size_bytes,
        ..
    }) = r.clone()
    else {
        panic!("{r:?}")
    };
    assert_eq!(k, key(150).into_bytes());
    assert!(left_size_bytes > 0 && right_size_bytes > 0);
    // A retried split gets the same answer.
    assert_eq!(c.control(NODES[0], cmd), r);
    assert!(c.node(NODES[0]).tablets().is_empty());
    // The fake master loads the children (one moves to another node) and records them.
    for (spec, node) in [(&left, NODES[0]), (&right, NODES[1])] {
        let r = c.control(
            node,
            ControlCmd::Load {
                tablet: spec.clone(),
                mode: LoadMode::Open,
            },
        );
        assert!(matches!(r, Ok(ControlReply::Loaded { .. })), "{r:?}");
    }
    let l = c.record_tablet(&left, Some(NODES[0]), vec![TabletId(1)]);
    let rr = c.record_tablet(&right, Some(NODES[1]), vec![TabletId(1)]);
    c.txn(vec![Op::DeleteTablet(TabletId(1)), l, rr]);
    for done in c.wait_ops(&ops) {
        assert_eq!(done.result, OpResult::Done(OpOutput::Written), "{done:?}");
    }
    assert!(c.sim.marks().count("node.split_barrier") > 0);
    // Every acknowledged write is there, across both children, both directions.
    read_all(&mut c, 300);
    // In the background the children rewrite what they inherited into their own files, so
    // the query stops reporting the parent's files (and the master may collect them).
    c.run_for(Duration::from_secs(3));
    let Ok(ControlReply::Report(rep)) = c.control(NODES[1], ControlCmd::Query { round: 1 }) else {
        panic!()
    };
    assert_eq!(rep.tablets.len(), 1);
    assert!(rep.tablets[0].inherited_files.is_empty(), "{rep:?}");
    assert!(c.node(NODES[1]).counters().background_steps > 0);
}

#[test]
fn unload_then_load_elsewhere_replays_nothing_and_merge_reunites() {
    let mut c = Cluster::new(6);
    one_tablet(&mut c, NODES[0]);
    write_rows(&mut c, 50);
    let r = c.control(
        NODES[0],
        ControlCmd::Unload {
            tablet: TabletId(1),
            version: 1,
        },
    );
    assert_eq!(
        r,
        Ok(ControlReply::Unloaded {
            tablet: TabletId(1)
        })
    );
    // Idempotent.
    let r = c.control(
        NODES[0],
        ControlCmd::Unload {
            tablet: TabletId(1),
            version: 1,
        },
    );
    assert_eq!(
        r,
        Ok(ControlReply::Unloaded {
            tablet: TabletId(1)
        })
    );
    let moved = Cluster::spec(1, b"", b"", 2);
    let r = c.control(
        NODES[1],
        ControlCmd::Load {
            tablet: moved.clone(),
            mode: LoadMode::Open,
        },
    );
    assert!(
        matches!(r, Ok(ControlReply::Loaded { version: 2, .. })),
        "{r:?}"
    );
    let stats = c.node(NODES[1]).engine(TabletId(1)).unwrap().stats();
    assert_eq!(
        stats.replayed_batches, 0,
        "an unloaded tablet replays nothing"
    );
    let op = c.record_tablet(&moved, Some(NODES[1]), vec![]);
    c.txn(vec![op]);
    let cache = |c: &Cluster, n| {
        c.node(n)
            .config()
            .tablet
            .cache
            .as_ref()
            .expect("a node opens its tablets over its own block cache")
            .usage_bytes()
    };
    assert_eq!(cache(&c, NODES[1]), 0);
    read_all(&mut c, 50);
    // The rows now live in the SST the unload flushed; reading them filled the node's cache.
    assert!(cache(&c, NODES[1]) > 0, "reads went around the block cache");

    // Split, unload both children, and merge them back on a third node.
    let left = Cluster::spec(2, b"", key(25).as_bytes(), 1);
    let right = Cluster::spec(3, key(25).as_bytes(), b"", 1);
    let r = c.control(
        NODES[1],
        ControlCmd::Split {
            tablet: TabletId(1),
            version: 2,
            key: None,
            left: (left.id, left.path.clone()),
            right: (right.id, right.path.clone()),
        },
    );
    let Ok(ControlReply::Split { key: k, .. }) = r else {
        panic!("{r:?}")
    };
    let left = Cluster::spec(2, b"", &k, 1);
    let right = Cluster::spec(3, &k, b"", 1);
    for spec in [&left, &right] {
        let r = c.control(
            NODES[1],
            ControlCmd::Load {
                tablet: spec.clone(),
                mode: LoadMode::Open,
            },
        );
        assert!(matches!(r, Ok(ControlReply::Loaded { .. })), "{r:?}");
        let r = c.control(
            NODES[1],
            ControlCmd::Unload {
                tablet: spec.id,
                version: 1,
            },
        );
        assert!(matches!(r, Ok(ControlReply::Unloaded { .. })), "{r:?}");
    }
    let merged = Cluster::spec(4, b"", b"", 2);
    let mode = LoadMode::MergeOf {
        left_path: left.path.clone(),
        right_path: right.path.clone(),
    };
    let r = c.control(
        NODES[2],
        ControlCmd::Load {
            tablet: merged.clone(),
            mode,
        },
    );
    assert!(matches!(r, Ok(ControlReply::Loaded { .. })), "{r:?}");
    let op = c.record_tablet(&merged, Some(NODES[2]), vec![TabletId(2), TabletId(3)]);
    c.txn(vec![Op::DeleteTablet(TabletId(1)), op]);
    read_all(&mut c, 50);
}

#[test]
fn lease_expiry_stops_serving_and_a_new_epoch_follows() {
    let mut c = Cluster::new(7);
    one_tablet(&mut c, NODES[0]);
    write_rows(&mut c, 10);
    let old = c.epoch(NODES[0]).unwrap();
    c.sim.partition(&[NODES[0]], &[shale_tests::META]);
    // Node lease is 6 s; after it the node must have stopped serving.
    c.run_for(Duration::from_secs(7));
    assert!(c.node(NODES[0]).counters().lease_lapses >= 1);
    assert!(c.node(NODES[0]).tablets().is_empty());
    let r = c.raw_data(
        NODES[0],
        raw(
            &c,
            NODES[0],
            1,
            Some(old),
            DataOp::Get {
                row: b"a".to_vec(),
                filter: ReadFilter::default(),
            },
        ),
    );
    assert_eq!(r.result, Err(DataError::LeaseExpired));
    let r = c.control_as(NODES[0], 1, old, ControlCmd::Query { round: 1 });
    assert_eq!(r, Err(ControlError::LeaseExpired));
    assert!(c.sim.marks().count("node.lease_lapsed") > 0);
    c.sim.heal_all();
    c.run_for(Duration::from_secs(2));
    let new = c.epoch(NODES[0]).expect("registered again");
    assert!(new > old, "{new} > {old}");
    // The old epoch is refused; the tablet can be opened under the new one with all its data.
    let r = c.raw_data(
        NODES[0],
        raw(
            &c,
            NODES[0],
            1,
            Some(old),
            DataOp::Get {
                row: b"a".to_vec(),
                filter: ReadFilter::default(),
            },
        ),
    );
    assert!(
        matches!(r.result, Err(DataError::StaleEpoch { .. })),
        "{r:?}"
    );
    let spec = Cluster::spec(1, b"", b"", 2);
    let r = c.control(
        NODES[0],
        ControlCmd::Load {
            tablet: spec.clone(),
            mode: LoadMode::Open,
        },
    );
    assert!(matches!(r, Ok(ControlReply::Loaded { .. })), "{r:?}");
    let op = c.record_tablet(&spec, Some(NODES[0]), vec![]);
    c.txn(vec![op]);
    read_all(&mut c, 10);
}

#[test]
fn crash_and_restart_gets_a_new_epoch_and_keeps_acknowledged_writes() {
    let mut c = Cluster::new(8);
    one_tablet(&mut c, NODES[0]);
    write_rows(&mut c, 25);
    let old = c.epoch(NODES[0]).unwrap();
    c.sim.crash(NODES[0]).unwrap();
    c.sim.restart(NODES[0]).unwrap();
    c.run_for(Duration::from_millis(500));
    let new = c.epoch(NODES[0]).expect("registered again");
    assert!(new > old);
    let r = c.control_as(NODES[0], c.term, old, ControlCmd::Query { round: 1 });
    assert!(matches!(r, Err(ControlError::StaleEpoch { .. })), "{r:?}");
    let r = c.raw_data(
        NODES[0],
        raw(
            &c,
            NODES[0],
            1,
            Some(old),
            DataOp::Get {
                row: b"a".to_vec(),
                filter: ReadFilter::default(),
            },
        ),
    );
    assert!(
        matches!(r.result, Err(DataError::StaleEpoch { .. })),
        "{r:?}"
    );
    // The client's cache still points at the old epoch: it is refused, relocates and retries.
    let spec = Cluster::spec(1, b"", b"", 2);
    let r = c.control(
        NODES[0],
        ControlCmd::Load {
            tablet: spec.clone(),
            mode: LoadMode::Open,
        },
    );
    assert!(matches!(r, Ok(ControlReply::Loaded { .. })), "{r:?}");
    let op = c.record_tablet(&spec, Some(NODES[0]), vec![]);
    c.txn(vec![op]);
    read_all(&mut c, 25);
    assert!(
        c.node(NODES[0])
            .engine(TabletId(1))
            .unwrap()
            .stats()
            .replayed_batches
            > 0
    );
}
