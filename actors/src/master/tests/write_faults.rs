//! Procedure writes that fail, and merges whose parents were not unloaded cleanly: the
//! regressions the cluster sweep found with meta store reboots (seeds 1020, 1028).
//!
//! A phase write that gives up without landing must be sent again as it was (every phase of
//! every kind), without the master resyncing; a merge must not commit over a parent whose
//! node lost it; and the merged tablet must stay the merge's own until it is loaded.

use super::ddl::{create, schema};
use super::harness::*;
use crate::kernel::NodeId;
use crate::meta::{MetaCall, MetaRequest, Op, RequestId, TabletStatus};
use crate::proto::admin::{AdminCall, AdminError, AdminReply};
use crate::proto::control::LoadMode;
use std::cell::RefCell;
use std::collections::BTreeSet;
use std::rc::Rc;
use std::time::Duration;

/// A procedure write's shape: what it does, without ids, so "the same phase of the same
/// kind" is one shape however often it runs.
fn shape(req: &MetaRequest) -> Option<String> {
    let MetaCall::Txn(txn) = &req.call else {
        return None;
    };
    let is_proc = txn
        .ops
        .iter()
        .any(|o| matches!(o, Op::PutProcedure(_) | Op::DeleteProcedure(_)));
    if !is_proc {
        return None;
    }
    let parts: Vec<String> = txn
        .ops
        .iter()
        .map(|o| match o {
            Op::PutTablet(t) => format!("tablet:{:?}", t.status),
            Op::DeleteTablet(_) => "delete_tablet".into(),
            Op::PutProcedure(p) => format!("{:?}:{}", p.kind, p.phase),
            Op::DeleteProcedure(_) => "delete_procedure".into(),
            Op::PutTable(t) => format!("table:{:?}", t.status),
            Op::DeleteTable(_) => "delete_table".into(),
            other => format!("{other:?}"),
        })
        .collect();
    Some(parts.join(","))
}

/// Fails every attempt of the first write of each shape (so the write gives up after its
/// bounded retries, surely not applied) and records the shapes it failed.
fn fail_each_shape_once(c: &mut Cluster) -> Rc<RefCell<BTreeSet<String>>> {
    let failed = Rc::new(RefCell::new(BTreeSet::new()));
    let seen = Rc::clone(&failed);
    let mut failing: BTreeSet<RequestId> = BTreeSet::new();
    c.fail_meta = Some(Box::new(move |req: &MetaRequest| {
        if failing.contains(&req.id) {
            return true;
        }
        let first = shape(req).is_some_and(|s| seen.borrow_mut().insert(s));
        if first {
            failing.insert(req.id);
        }
        first
    }));
    failed
}

/// An admin call, asked again while the meta write behind it fails (a DDL write is the first
/// phase write of a table procedure: the caller sees the failure and retries).
fn admin_retrying(c: &mut Cluster, call: AdminCall) -> AdminReply {
    for _ in 0..5 {
        match c.admin(call.clone()) {
            Err(AdminError::MetaUnavailable(_)) => c.run_for(Duration::from_millis(500)),
            Ok(r) => return r,
            Err(e) => panic!("{call:?}: {e}"),
        }
    }
    panic!("{call:?} kept failing");
}

fn settle_without_procedures(c: &mut Cluster, what: &str) {
    for _ in 0..40 {
        c.run_for(Duration::from_millis(500));
        if c.snapshot().procedures.is_empty() && c.master(M1).procedures().is_empty() {
            return;
        }
    }
    let stuck: Vec<String> = c
        .snapshot()
        .procedures
        .values()
        .map(|p| format!("{:?}@{}", p.value.kind, p.value.phase))
        .collect();
    panic!("{what}: procedures never finished: {stuck:?}");
}

#[test]
fn every_phase_write_failing_once_is_sent_again_and_every_procedure_completes() {
    let mut c = Cluster::new(2);
    let gen = c.master(M1).gen;
    let failed = fail_each_shape_once(&mut c);

    let created = admin_retrying(
        &mut c,
        AdminCall::CreateTable {
            name: "t".into(),
            schema: schema(),
            split_keys: vec![b"m".to_vec()],
        },
    );
    assert_eq!(created, AdminReply::Done);
    settle_without_procedures(&mut c, "create");
    c.assert_table_healthy("t");

    let ts = c.tablets("t");
    let split = AdminCall::SplitTablet {
        tablet: ts[1].id,
        key: Some(b"s".to_vec()),
    };
    assert!(matches!(c.admin(split), Ok(AdminReply::Started { .. })));
    settle_without_procedures(&mut c, "split");
    c.assert_table_healthy("t");
    assert_eq!(c.tablets("t").len(), 3);

    let ts = c.tablets("t");
    let merge = AdminCall::MergeTablets {
        a: ts[1].id,
        b: ts[2].id,
    };
    assert!(matches!(c.admin(merge), Ok(AdminReply::Started { .. })));
    settle_without_procedures(&mut c, "merge");
    c.assert_table_healthy("t");
    assert_eq!(c.tablets("t").len(), 2);

    let t = c.tablets("t")[0].clone();
    let to = match t.assigned.map(|a| a.node) {
        Some(NodeId(11)) => NodeId(12),
        _ => NodeId(11),
    };
    let mv = AdminCall::MoveTablet {
        tablet: t.id,
        node: to,
    };
    assert!(matches!(c.admin(mv), Ok(AdminReply::Started { .. })));
    settle_without_procedures(&mut c, "move");
    c.assert_table_healthy("t");
    assert_eq!(c.tablets("t")[0].assigned.map(|a| a.node), Some(to));

    admin_retrying(&mut c, AdminCall::DisableTable { name: "t".into() });
    settle_without_procedures(&mut c, "disable");
    assert!(c
        .tablets("t")
        .iter()
        .all(|t| t.status == TabletStatus::Disabled));
    admin_retrying(&mut c, AdminCall::EnableTable { name: "t".into() });
    settle_without_procedures(&mut c, "enable");
    c.assert_table_healthy("t");
    admin_retrying(&mut c, AdminCall::DisableTable { name: "t".into() });
    settle_without_procedures(&mut c, "disable again");
    admin_retrying(&mut c, AdminCall::DropTable { name: "t".into() });
    settle_without_procedures(&mut c, "drop");
    assert!(c.snapshot().tables.is_empty(), "dropped");
    c.assert_memory_matches_meta();

    // Every procedure kind had a phase write fail, and none made the master start over.
    let failed = failed.borrow();
    for kind in [
        "Load:",
        "Unload:",
        "Move:",
        "Split:",
        "Merge:",
        "CreateTable:",
        "EnableTable:",
        "DisableTable:",
        "DropTable:",
    ] {
        assert!(
            failed.iter().any(|s| s.contains(kind)),
            "no {kind} write failed: {failed:?}"
        );
    }
    assert!(failed.len() >= 15, "few shapes failed: {failed:?}");
    assert_eq!(
        c.master(M1).gen,
        gen,
        "the failures were absorbed without a resync"
    );
}

#[test]
fn merge_gives_up_when_a_parents_node_lost_it_instead_of_committing() {
    let mut c = Cluster::new(2);
    create(&mut c, "t", &["m"]).ok();
    c.run_for(Duration::from_secs(2));
    let ts = c.tablets("t");
    let lost_on = ts[1].assigned.map(|a| a.node).unwrap_or(NodeId(0));
    // The node restarts: it serves nothing and has a new epoch, and the tablet's last writes
    // are in a log only a reload replays, so its files cannot be merged as they are.
    c.register(lost_on);
    let r = c.admin(AdminCall::MergeTablets {
        a: ts[0].id,
        b: ts[1].id,
    });
    assert!(matches!(r, Ok(AdminReply::Started { .. })), "{r:?}");
    settle_without_procedures(&mut c, "merge");
    c.run_for(Duration::from_secs(3));
    let after: Vec<_> = c.tablets("t").iter().map(|t| t.id).collect();
    assert_eq!(after, vec![ts[0].id, ts[1].id], "the merge gave up");
    c.assert_table_healthy("t");
    let merge_loads = c
        .nodes
        .values()
        .flat_map(|n| n.loads.iter())
        .filter(|(_, mode)| matches!(mode, LoadMode::MergeOf { .. }))
        .count();
    assert_eq!(merge_loads, 0, "no merged tablet was ever loaded");
    c.assert_memory_matches_meta();
}

#[test]
fn the_merged_tablet_stays_locked_while_its_load_write_is_retried() {
    let mut cfg = master_config();
    // Long enough for query rounds (and their assign passes) to run while the merge waits.
    cfg.proc_retry_ms = 2_500;
    let mut c = Cluster::with(2, cfg);
    create(&mut c, "t", &["m"]).ok();
    c.run_for(Duration::from_secs(2));
    let ts = c.tablets("t");
    let mut failing: BTreeSet<RequestId> = BTreeSet::new();
    // Fail the write that assigns the merged tablet (Offline -> Loading, phase `loading`).
    c.fail_meta = Some(Box::new(move |req: &MetaRequest| {
        let assign = shape(req).is_some_and(|s| s == "tablet:Loading,Merge:loading");
        if assign && failing.is_empty() {
            failing.insert(req.id);
        }
        failing.contains(&req.id)
    }));
    let r = c.admin(AdminCall::MergeTablets {
        a: ts[0].id,
        b: ts[1].id,
    });
    assert!(matches!(r, Ok(AdminReply::Started { .. })), "{r:?}");
    settle_without_procedures(&mut c, "merge");
    c.assert_table_healthy("t");
    let merged = c.tablets("t")[0].id;
    let loads: Vec<LoadMode> = c
        .nodes
        .values()
        .flat_map(|n| n.loads.iter())
        .filter(|(id, _)| *id == merged)
        .map(|(_, mode)| mode.clone())
        .collect();
    assert!(!loads.is_empty());
    assert!(
        loads.iter().all(|m| matches!(m, LoadMode::MergeOf { .. })),
        "only the merge loads the merged tablet (a plain open finds no files): {loads:?}"
    );
    c.assert_memory_matches_meta();
}

/// A meta store that refuses the same write after every rebuild (here: every procedure write
/// of a move that is under way) makes the master resync again and again. The resyncs back
/// off (none, 50 ms, 100 ms, ... up to 2 s) instead of spinning on snapshots, and once the
/// meta store accepts again the move finishes and the backoff starts over.
#[test]
fn resyncs_in_a_row_back_off() {
    let mut c = Cluster::new(2);
    assert_eq!(create(&mut c, "t", &[]), Ok(AdminReply::Done));
    c.run_for(Duration::from_secs(3));
    c.assert_table_healthy("t");
    let t = c.tablets("t")[0].clone();
    let to = match t.assigned.map(|a| a.node) {
        Some(NodeId(11)) => NodeId(12),
        _ => NodeId(11),
    };
    // The move's first write (its record) lands; every later procedure write is refused.
    let mut procedure_writes = 0;
    c.refuse_meta = Some(Box::new(move |req: &MetaRequest| {
        procedure_writes += usize::from(shape(req).is_some());
        shape(req).is_some() && procedure_writes > 1
    }));
    let gen = c.master(M1).gen;
    let r = c.admin(AdminCall::MoveTablet {
        tablet: t.id,
        node: to,
    });
    assert!(matches!(r, Ok(AdminReply::Started { .. })), "{r:?}");
    c.run_for(Duration::from_secs(10));
    let resyncs = c.master(M1).gen - gen;
    // Waits of 0, 50, 100, ..., 1600, 2000, 2000 ms: about ten resyncs fit in 10 s.
    assert!((4..=12).contains(&resyncs), "{resyncs} resyncs in 10 s");
    assert!(c.master(M1).resyncs_in_a_row >= 4);
    c.refuse_meta = None;
    c.run_for(Duration::from_secs(5));
    c.assert_table_healthy("t");
    assert_eq!(c.tablets("t")[0].assigned.map(|a| a.node), Some(to));
    assert_eq!(
        c.master(M1).resyncs_in_a_row,
        0,
        "a committed write ends the run"
    );
    c.assert_memory_matches_meta();
}
