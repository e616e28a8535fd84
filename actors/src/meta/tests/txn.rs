//! Transactions: compare-and-set on every record kind, atomicity, the store's own rules
//! (references, overlap, id reuse), location lookup, scans and retry deduplication.

use super::harness::*;
use crate::kernel::{Addr, Epoch, NodeId};
use crate::meta::*;

fn put(op: Op) -> Txn {
    Txn::new().op(op)
}

/// Node 7, up, as a master would write it.
fn node7() -> NodeRecord {
    NodeRecord {
        id: NodeId(7),
        name: "n7".into(),
        addr: Addr("h:7".into()),
        status: NodeStatus::Up,
        epoch: Epoch(1),
        lease_expiry: crate::kernel::Time::ZERO,
        registered_at: crate::kernel::Time::ZERO,
        total_disk_bytes: 0,
    }
}

/// One record of each kind, for table-driven CAS tests. The table "t" must exist first.
fn each_kind() -> Vec<(RecordKey, Op, Op, Op)> {
    let node = node7();
    let mut node2 = node.clone();
    node2.status = NodeStatus::Decommissioned;
    let mut t2 = table("u");
    t2.status = TableStatus::Disabled;
    let mut tb2 = tablet(5, "t", "", "");
    tb2.status = TabletStatus::Ready;
    let mut p2 = procedure(3, ProcedureKind::Split);
    p2.phase = "unload".into();
    // A node's row: a tablet's row is only written while the tablet exists.
    let subject = StatSubject::Node(NodeId(9));
    vec![
        (
            tkey("u"),
            Op::PutTable(table("u")),
            Op::PutTable(t2),
            Op::DeleteTable("u".into()),
        ),
        (
            tbkey(5),
            Op::PutTablet(tablet(5, "t", "", "")),
            Op::PutTablet(tb2),
            Op::DeleteTablet(TabletId(5)),
        ),
        (
            RecordKey::Node(NodeId(7)),
            Op::PutNode(node),
            Op::PutNode(node2),
            Op::DeleteNode(NodeId(7)),
        ),
        (
            RecordKey::Procedure(ProcedureId(3)),
            Op::PutProcedure(procedure(3, ProcedureKind::Split)),
            Op::PutProcedure(p2),
            Op::DeleteProcedure(ProcedureId(3)),
        ),
        (
            RecordKey::Stat(subject),
            Op::PutStat(stat(subject, 1)),
            Op::PutStat(stat(subject, 2)),
            Op::DeleteStat(subject),
        ),
    ]
}

#[test]
fn cas_succeeds_and_conflicts_for_every_record_kind() {
    let mut h = Harness::new();
    h.txn(MASTER, put(Op::PutTable(table("t"))))
        .expect("table t");
    for (key, create, update, delete) in each_kind() {
        let absent = Check::Absent { key: key.clone() };
        let v1 = h
            .txn(MASTER, put(create.clone()).check(absent.clone()))
            .unwrap_or_else(|e| panic!("create {key}: {e}"));
        assert_eq!(
            h.version(key.clone()),
            Some(v1),
            "{key}: version is the revision"
        );
        // Creating again over an existing record conflicts and reports the current version.
        let err = h.txn(MASTER, put(create.clone()).check(absent.clone()));
        assert_eq!(
            err,
            Err(MetaError::VersionConflict {
                key: key.clone(),
                expected: None,
                current: Some(v1)
            })
        );
        let at_v1 = Check::VersionIs {
            key: key.clone(),
            version: v1,
        };
        let v2 = h
            .txn(MASTER, put(update.clone()).check(at_v1.clone()))
            .expect("update");
        assert!(v2 > v1, "{key}: versions grow");
        let got = h.get(key.clone()).expect("present");
        assert_eq!(got.version, v2);
        assert_eq!(Some(got.value.key()), Some(key.clone()));
        // A stale version conflicts and changes nothing.
        let err = h.txn(MASTER, put(create.clone()).check(at_v1.clone()));
        assert_eq!(
            err,
            Err(MetaError::VersionConflict {
                key: key.clone(),
                expected: Some(v1),
                current: Some(v2)
            })
        );
        assert_eq!(h.version(key.clone()), Some(v2));
        let at_v2 = Check::VersionIs {
            key: key.clone(),
            version: v2,
        };
        h.txn(MASTER, put(delete.clone()).check(at_v2.clone()))
            .expect("delete");
        assert_eq!(h.get(key.clone()), None, "{key}: deleted");
        // Deleting what is gone is NotFound; a check on it conflicts with current None.
        assert_eq!(
            h.txn(MASTER, put(delete.clone())),
            Err(MetaError::NotFound(key.clone()))
        );
        assert!(matches!(
            h.txn(MASTER, put(update).check(at_v2)),
            Err(MetaError::VersionConflict { current: None, .. })
        ));
        // Created again, it never returns to an old version (no ABA).
        if !matches!(key, RecordKey::Tablet(_) | RecordKey::Procedure(_)) {
            let v3 = h.txn(MASTER, put(create).check(absent)).expect("recreate");
            assert!(v3 > v2);
        }
    }
}

#[test]
fn stat_rows_go_with_their_tablets_and_nodes() {
    let mut h = Harness::new();
    h.txn(MASTER, put(Op::PutTable(table("t"))))
        .expect("table t");
    let node = StatSubject::Node(NodeId(7));
    let (t5, t6) = (
        StatSubject::Tablet(TabletId(5)),
        StatSubject::Tablet(TabletId(6)),
    );
    h.txn(
        MASTER,
        Txn::new()
            .op(Op::PutTablet(tablet(5, "t", "", "m")))
            .op(Op::PutTablet(tablet(6, "t", "m", "")))
            .op(Op::PutStat(stat(t5, 1)))
            .op(Op::PutStat(stat(t6, 1))),
    )
    .expect("tablets with their stat rows");
    h.txn(
        MASTER,
        Txn::new()
            .op(Op::PutNode(node7()))
            .op(Op::PutStat(stat(node, 1))),
    )
    .expect("a node with its stat row");
    for s in [node, t5, t6] {
        assert!(h.get(RecordKey::Stat(s)).is_some(), "{s:?} written");
    }
    // A merge: both tablets go, one takes their place. Their rows go with them.
    h.txn(
        MASTER,
        Txn::new()
            .op(Op::DeleteTablet(TabletId(5)))
            .op(Op::DeleteTablet(TabletId(6)))
            .op(Op::PutTablet(tablet(8, "t", "", ""))),
    )
    .expect("merge");
    assert_eq!(h.get(RecordKey::Stat(t5)), None);
    assert_eq!(h.get(RecordKey::Stat(t6)), None);
    // Dropping the table's last tablet and the table takes the row as well.
    h.txn(
        MASTER,
        put(Op::PutStat(stat(StatSubject::Tablet(TabletId(8)), 2))),
    )
    .expect("row of tablet 8");
    h.txn(
        MASTER,
        Txn::new()
            .op(Op::DeleteTablet(TabletId(8)))
            .op(Op::DeleteTable("t".into())),
    )
    .expect("drop");
    assert_eq!(
        h.get(RecordKey::Stat(StatSubject::Tablet(TabletId(8)))),
        None
    );
    h.txn(MASTER, put(Op::DeleteNode(NodeId(7))))
        .expect("node removed");
    assert_eq!(h.get(RecordKey::Stat(node)), None);
}

#[test]
fn a_stat_row_for_a_tablet_that_is_gone_is_not_written() {
    let mut h = Harness::new();
    h.txn(MASTER, put(Op::PutTable(table("t"))))
        .expect("table t");
    h.txn(MASTER, put(Op::PutTablet(tablet(5, "t", "", ""))))
        .expect("tablet 5");
    // A query round's rows, arriving after a split removed tablet 4 (or before tablet 9
    // exists): the other rows are written, those two are not, and the transaction commits.
    let (t4, t5, t9) = (
        StatSubject::Tablet(TabletId(4)),
        StatSubject::Tablet(TabletId(5)),
        StatSubject::Tablet(TabletId(9)),
    );
    let n = StatSubject::Node(NodeId(1));
    h.txn(
        MASTER,
        Txn::new()
            .op(Op::PutStat(stat(t4, 3)))
            .op(Op::PutStat(stat(t5, 3)))
            .op(Op::PutStat(stat(t9, 3)))
            .op(Op::PutStat(stat(n, 3))),
    )
    .expect("the round's rows commit");
    assert_eq!(h.get(RecordKey::Stat(t4)), None);
    assert_eq!(h.get(RecordKey::Stat(t9)), None);
    assert!(h.get(RecordKey::Stat(t5)).is_some());
    assert!(h.get(RecordKey::Stat(n)).is_some());
    // The tablet and its row in one transaction: written.
    h.txn(
        MASTER,
        Txn::new()
            .op(Op::PutTablet(tablet(9, "t", "zz", "")))
            .op(Op::PutTablet(tablet(5, "t", "", "zz")))
            .op(Op::PutStat(stat(t9, 4))),
    )
    .expect("split-like");
    assert!(h.get(RecordKey::Stat(t9)).is_some());
}

#[test]
fn a_failed_check_or_rule_applies_nothing() {
    let mut h = Harness::new();
    h.txn(MASTER, put(Op::PutTable(table("t")))).expect("table");
    let before = h.store.state().snapshot().clone();
    // Last check fails: the earlier ops must not apply.
    let txn = Txn::new()
        .op(Op::PutTablet(tablet(1, "t", "", "m")))
        .op(Op::PutProcedure(procedure(1, ProcedureKind::CreateTable)))
        .check(Check::Absent { key: tbkey(1) })
        .check(Check::VersionIs {
            key: tkey("t"),
            version: 999,
        });
    assert!(matches!(
        h.txn(MASTER, txn),
        Err(MetaError::VersionConflict { .. })
    ));
    // Last op breaks a rule (tablet of a missing table): nothing applies either.
    let txn = Txn::new()
        .op(Op::PutTablet(tablet(1, "t", "", "m")))
        .op(Op::PutTablet(tablet(2, "nope", "", "")));
    assert!(matches!(h.txn(MASTER, txn), Err(MetaError::BadRequest(_))));
    assert_eq!(h.store.state().snapshot(), &before, "state unchanged");
    // And a good multi-record transaction applies all of it at one revision.
    let txn = Txn::new()
        .op(Op::PutTablet(tablet(1, "t", "", "m")))
        .op(Op::PutTablet(tablet(2, "t", "m", "")))
        .op(Op::PutProcedure(procedure(1, ProcedureKind::CreateTable)));
    let rev = h.txn(MASTER, txn).expect("commit");
    assert_eq!(h.version(tbkey(1)), Some(rev));
    assert_eq!(h.version(tbkey(2)), Some(rev));
    assert_eq!(h.version(RecordKey::Procedure(ProcedureId(1))), Some(rev));
}

#[test]
fn merge_and_split_are_single_transactions_and_overlap_is_refused() {
    let mut h = Harness::new();
    let txn = Txn::new()
        .op(Op::PutTable(table("t")))
        .op(Op::PutTablet(tablet(1, "t", "", "g")))
        .op(Op::PutTablet(tablet(2, "t", "g", "p")))
        .op(Op::PutTablet(tablet(3, "t", "p", "")));
    let rev = h.txn(MASTER, txn).expect("create");
    // A tablet overlapping its neighbour is refused.
    let err = h.txn(MASTER, put(Op::PutTablet(tablet(4, "t", "f", "h"))));
    assert!(
        matches!(err, Err(MetaError::TabletsOverlap { .. })),
        "{err:?}"
    );
    let err = h.txn(MASTER, put(Op::PutTablet(tablet(4, "t", "g", "h"))));
    assert!(
        matches!(err, Err(MetaError::TabletsOverlap { .. })),
        "{err:?}"
    );
    // Widening one tablet into its neighbour is refused too.
    let err = h.txn(MASTER, put(Op::PutTablet(tablet(2, "t", "g", "q"))));
    assert!(
        matches!(err, Err(MetaError::TabletsOverlap { .. })),
        "{err:?}"
    );
    // Two new tablets overlapping each other in one transaction.
    let err = h.txn(
        MASTER,
        Txn::new()
            .op(Op::DeleteTablet(TabletId(3)))
            .op(Op::PutTablet(tablet(4, "t", "p", "x")))
            .op(Op::PutTablet(tablet(5, "t", "w", ""))),
    );
    assert!(
        matches!(err, Err(MetaError::TabletsOverlap { .. })),
        "{err:?}"
    );
    // Merge 1 and 2: delete both, add the union, checked against both versions.
    let mut merged = tablet(4, "t", "", "p");
    merged.parents = vec![TabletId(1), TabletId(2)];
    merged.version = 2;
    let merge = Txn::new()
        .check(Check::VersionIs {
            key: tbkey(1),
            version: rev,
        })
        .check(Check::VersionIs {
            key: tbkey(2),
            version: rev,
        })
        .op(Op::DeleteTablet(TabletId(1)))
        .op(Op::DeleteTablet(TabletId(2)))
        .op(Op::PutTablet(merged));
    h.txn(MASTER, merge.clone()).expect("merge");
    // The same merge again (a stale master's retry without dedup) conflicts.
    assert!(matches!(
        h.txn(MASTER, merge),
        Err(MetaError::VersionConflict { .. })
    ));
    // Split 3 into 5 and 6.
    let split = Txn::new()
        .op(Op::DeleteTablet(TabletId(3)))
        .op(Op::PutTablet(tablet(5, "t", "p", "s")))
        .op(Op::PutTablet(tablet(6, "t", "s", "")));
    h.txn(MASTER, split).expect("split");
    let ids: Vec<TabletId> = h.store.state().snapshot().tablets.keys().copied().collect();
    assert_eq!(ids, vec![TabletId(4), TabletId(5), TabletId(6)]);
    h.store.state().check_invariants().expect("invariants");
}

#[test]
fn store_rules_references_and_id_reuse() {
    let mut h = Harness::new();
    h.txn(MASTER, put(Op::PutTable(table("t")))).expect("table");
    h.txn(MASTER, put(Op::PutTablet(tablet(1, "t", "", ""))))
        .expect("tablet");
    // A table with tablets cannot be deleted alone...
    let err = h.txn(MASTER, put(Op::DeleteTable("t".into())));
    assert!(matches!(err, Err(MetaError::BadRequest(_))), "{err:?}");
    // ...but can together with its tablets.
    let drop = Txn::new()
        .op(Op::DeleteTable("t".into()))
        .op(Op::DeleteTablet(TabletId(1)));
    h.txn(MASTER, drop).expect("drop");
    h.txn(MASTER, put(Op::PutTable(table("t"))))
        .expect("table again");
    // A deleted tablet's id is never handed out again.
    let err = h.txn(MASTER, put(Op::PutTablet(tablet(1, "t", "", ""))));
    assert!(matches!(err, Err(MetaError::BadRequest(_))), "{err:?}");
    assert_eq!(h.store.state().marks().tablet_next, 2);
    let err = h.txn(MASTER, put(Op::PutTablet(tablet(0, "t", "", ""))));
    assert!(matches!(err, Err(MetaError::BadRequest(_))), "{err:?}");
    // Bad shapes.
    for bad in [
        Txn::new(),
        Txn::new()
            .op(Op::PutTable(table("x")))
            .op(Op::DeleteTable("x".into())),
        put(Op::PutTablet(tablet(9, "t", "b", "a"))),
        put(Op::PutTable(table(""))),
    ] {
        assert!(matches!(h.txn(MASTER, bad), Err(MetaError::BadRequest(_))));
    }
    let mut many = Txn::new();
    for i in 0..=h.store.config().txn.ops_max as u64 {
        many = many.op(Op::PutStat(stat(StatSubject::Node(NodeId(i)), 1)));
    }
    assert!(matches!(h.txn(MASTER, many), Err(MetaError::BadRequest(_))));
}

/// The acceptance run's livelock: a split reserves children 2 and 3 in its procedure record,
/// a younger merge creates tablet 4 first (the mark passes 3), then the split commits. Its
/// children are a first use of reserved ids, so the commit must land; an id no procedure
/// being written lists stays refused, and a reservation alone moves the mark.
#[test]
fn ids_reserved_by_a_procedure_may_be_created_after_younger_ones() {
    let mut h = Harness::new();
    h.txn(MASTER, put(Op::PutTable(table("t")))).expect("table");
    h.txn(MASTER, put(Op::PutTablet(tablet(1, "t", "", "m"))))
        .expect("tablet 1");
    let mut split = procedure(1, ProcedureKind::Split);
    split.tablets = vec![TabletId(1), TabletId(2), TabletId(3)];
    h.txn(MASTER, put(Op::PutProcedure(split)))
        .expect("split reserves 2, 3");
    assert_eq!(
        h.store.state().marks().tablet_next,
        4,
        "a reservation moves the mark"
    );
    h.txn(MASTER, put(Op::PutTablet(tablet(4, "t", "m", ""))))
        .expect("the younger merge's tablet lands first");
    // Without the procedure's own record in the transaction, 2 stays refused.
    let err = h.txn(MASTER, put(Op::PutTablet(tablet(2, "t", "", "g"))));
    assert!(matches!(err, Err(MetaError::BadRequest(_))), "{err:?}");
    let commit = Txn::new()
        .op(Op::DeleteTablet(TabletId(1)))
        .op(Op::PutTablet(tablet(2, "t", "", "g")))
        .op(Op::PutTablet(tablet(3, "t", "g", "m")))
        .op(Op::DeleteProcedure(ProcedureId(1)));
    h.txn(MASTER, commit)
        .expect("the split commits its reserved children");
    // The procedure is gone: its ids are ordinary used ids again.
    let drop = Txn::new().op(Op::DeleteTablet(TabletId(2)));
    h.txn(MASTER, drop).expect("delete 2");
    let err = h.txn(MASTER, put(Op::PutTablet(tablet(2, "t", "", "g"))));
    assert!(matches!(err, Err(MetaError::BadRequest(_))), "{err:?}");
    h.store.state().check_invariants().expect("invariants");
}

/// The master allocates procedure ids in order, but its writes may land out of order (the
/// network reorders, a timed-out write is resent). A creation overtaken by a younger one is
/// accepted; an id that was used and deleted never comes back (a delayed copy of a finished
/// procedure's first write must not revive it), not even after a restart.
#[test]
fn procedures_may_be_created_out_of_order_but_never_revived() {
    let mut h = Harness::new();
    let create = |id| put(Op::PutProcedure(procedure(id, ProcedureKind::Move)));
    h.txn(MASTER, create(2)).expect("p2 lands first");
    h.txn(MASTER, create(1))
        .expect("p1, overtaken by p2, still lands");
    assert_eq!(h.store.state().marks().procedure_next, 3);
    h.txn(MASTER, put(Op::DeleteProcedure(ProcedureId(2))))
        .expect("p2 finishes");
    let err = h.txn(MASTER, create(2));
    assert!(matches!(err, Err(MetaError::BadRequest(_))), "{err:?}");
    // p4 overtakes p3, and p4 finishes before p3 lands: p3 is refused (the store cannot
    // tell it from a revival), which only costs the master a resync.
    h.txn(MASTER, create(4)).expect("p4");
    h.txn(MASTER, put(Op::DeleteProcedure(ProcedureId(4))))
        .expect("p4 finishes");
    let err = h.txn(MASTER, create(3));
    assert!(matches!(err, Err(MetaError::BadRequest(_))), "{err:?}");
    h.txn(MASTER, create(6)).expect("p6");
    // Recovery rebuilds the bound from the log (or, from a snapshot, counts every id below
    // the mark as possibly deleted): the deleted ids stay refused.
    h.restart();
    for id in [2, 4] {
        let err = h.txn(MASTER, create(id));
        assert!(
            matches!(err, Err(MetaError::BadRequest(_))),
            "p{id}: {err:?}"
        );
    }
    h.txn(MASTER, create(7))
        .expect("a fresh id after the restart");
    h.store.state().check_invariants().expect("invariants");
}

#[test]
fn location_lookup_answers_clients_directly() {
    let mut h = Harness::new();
    let node = match h.call(
        NodeId(50),
        MetaCall::RegisterNode {
            name: "ts1".into(),
            addr: Addr("10.0.0.1:9000".into()),
            total_disk_bytes: 0,
        },
    ) {
        Ok(MetaReply::Registered { epoch, .. }) => epoch,
        other => panic!("{other:?}"),
    };
    let mut a = tablet(1, "t", "", "g");
    a.assigned = Some(Assignment {
        node: NodeId(50),
        epoch: node,
    });
    a.status = TabletStatus::Ready;
    let txn = Txn::new()
        .op(Op::PutTable(table("t")))
        .op(Op::PutTable(table("other")))
        .op(Op::PutTablet(a))
        .op(Op::PutTablet(tablet(2, "t", "g", "p")))
        .op(Op::PutTablet(tablet(3, "t", "p", "")))
        .op(Op::PutTablet(tablet(4, "other", "", "")));
    h.txn(MASTER, txn).expect("create");
    let locate = |h: &mut Harness, row: &str, limit| {
        h.call(
            NodeId(60),
            MetaCall::Locate {
                table: "t".into(),
                row: row.as_bytes().to_vec(),
                limit,
            },
        )
    };
    let Ok(MetaReply::Locations(locs)) = locate(&mut h, "a", 1) else {
        panic!()
    };
    assert_eq!(locs.len(), 1);
    assert_eq!(locs[0].tablet, TabletId(1));
    assert_eq!(locs[0].addr, Some(Addr("10.0.0.1:9000".into())));
    assert_eq!(locs[0].status, TabletStatus::Ready);
    let Ok(MetaReply::Locations(locs)) = locate(&mut h, "g", 10) else {
        panic!()
    };
    let ids: Vec<_> = locs.iter().map(|l| l.tablet).collect();
    assert_eq!(
        ids,
        vec![TabletId(2), TabletId(3)],
        "stops at the table's end"
    );
    assert_eq!(locs[0].addr, None, "unassigned");
    let Ok(MetaReply::Locations(locs)) = locate(&mut h, "", 2) else {
        panic!()
    };
    assert_eq!(locs.len(), 2, "limit holds");
    let Ok(MetaReply::Locations(locs)) = locate(&mut h, "zzzz", 5) else {
        panic!()
    };
    assert_eq!(locs[0].tablet, TabletId(3), "empty end is +inf");
    // A gap: delete the middle tablet; lookups in it fail, runs stop before it.
    h.txn(MASTER, put(Op::DeleteTablet(TabletId(2))))
        .expect("delete");
    assert!(matches!(
        locate(&mut h, "h", 1),
        Err(MetaError::BadRequest(_))
    ));
    let Ok(MetaReply::Locations(locs)) = locate(&mut h, "a", 5) else {
        panic!()
    };
    assert_eq!(locs.len(), 1, "a run never crosses a gap");
    let missing = h.call(
        NodeId(60),
        MetaCall::Locate {
            table: "nope".into(),
            row: vec![],
            limit: 1,
        },
    );
    assert_eq!(missing, Err(MetaError::NotFound(tkey("nope"))));
}

#[test]
fn scans_page_in_key_order() {
    let mut h = Harness::new();
    let mut txn = Txn::new().op(Op::PutTable(table("t")));
    for i in 1..=5u64 {
        let start = format!("{i}");
        let end = if i == 5 {
            String::new()
        } else {
            format!("{}", i + 1)
        };
        txn = txn.op(Op::PutTablet(tablet(i, "t", &start, &end)));
    }
    h.txn(MASTER, txn).expect("create");
    let mut seen = Vec::new();
    let mut after = None;
    loop {
        let r = h.call(
            MASTER,
            MetaCall::Scan {
                kind: RecordKind::Tablet,
                after: after.clone(),
                limit: 2,
            },
        );
        let Ok(MetaReply::Records { records, more }) = r else {
            panic!("{r:?}")
        };
        assert!(records.len() <= 2);
        after = records.last().map(|r| r.value.key());
        seen.extend(records.into_iter().map(|r| r.value.key()));
        if !more {
            break;
        }
    }
    assert_eq!(seen, (1..=5).map(tbkey).collect::<Vec<_>>());
    let wrong = h.call(
        MASTER,
        MetaCall::Scan {
            kind: RecordKind::Table,
            after: Some(tbkey(1)),
            limit: 2,
        },
    );
    assert!(matches!(wrong, Err(MetaError::BadRequest(_))));
}

#[test]
fn a_retried_request_is_answered_once() {
    let mut h = Harness::new();
    let call = MetaCall::Txn(put(Op::PutTable(table("t"))).check(Check::Absent { key: tkey("t") }));
    let id = RequestId(77);
    h.send_with_id(MASTER, id, call.clone());
    h.run_jobs();
    let first = h.response(MASTER, id).expect("answered");
    let rev = h.store.state().revision();
    // The reply was lost; the retry gets the same answer and commits nothing new.
    h.sent.clear();
    h.send_with_id(MASTER, id, call.clone());
    h.run_jobs();
    assert_eq!(h.response(MASTER, id), Some(first.clone()));
    assert!(first.is_ok());
    assert_eq!(h.store.state().revision(), rev);
    // The same id from another sender is another request (and conflicts).
    h.send_with_id(MASTER2, id, call);
    h.run_jobs();
    assert!(matches!(
        h.response(MASTER2, id),
        Some(Err(MetaError::VersionConflict { .. }))
    ));
    // A reused id with a different call is not answered from the table.
    h.sent.clear();
    h.send_with_id(MASTER, id, MetaCall::Txn(put(Op::PutTable(table("u")))));
    h.run_jobs();
    assert!(
        matches!(h.response(MASTER, id), Some(Ok(MetaReply::Committed { revision })) if revision == rev + 1)
    );
    // The table survives a restart (dedup entries are logged with the records).
    h.crash();
    h.sent.clear();
    h.send_with_id(MASTER, id, MetaCall::Txn(put(Op::PutTable(table("u")))));
    h.run_jobs();
    assert!(
        matches!(h.response(MASTER, id), Some(Ok(MetaReply::Committed { revision })) if revision == rev + 1)
    );
}
