//! Shared helpers of the cluster-runner tests: a workload from a small scenario text, and
//! assertions that print every violation.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use shale_sim::cluster::{RunReport, SimCluster};
use shale_sim::scenario::{PlannedOp, Scenario, WorkloadGen};

/// `rate` operations per second for `secs` seconds over `keys` rows of `table`, from
/// `clients` logical clients; `mix` is a TOML inline table such as `{ put = 1, get = 1 }`.
pub fn workload(
    table: &str,
    keys: u64,
    rate: u32,
    secs: u32,
    clients: u32,
    mix: &str,
    seed: u64,
) -> Vec<PlannedOp> {
    let text = format!(
        r#"
name = "test"
description = "test workload"
checks = ["linearizability"]
[cluster]
nodes = 3
masters = 1
[[table]]
name = "{table}"
[workload]
duration = "{secs}s"
rate_per_sec = {rate}
clients = {clients}
mix = {mix}
[workload.keys]
count = {keys}
prefix = "k"
distribution = {{ kind = "uniform" }}
[workload.value_size]
min = 8
max = 24
[liveness]
deadline = "30s"
"#
    );
    let sc = Scenario::from_toml(&text).expect("test scenario parses");
    WorkloadGen::new(&sc, seed).collect()
}

/// The standard mix: puts, gets, deletes and check-and-mutates (every row keeps a plain
/// value, so the lost-write checker judges every row).
pub const MIX: &str = "{ put = 5, get = 4, delete = 1, check_and_mutate = 1 }";

pub fn assert_clean(c: &SimCluster, r: &RunReport) {
    if !r.is_ok() {
        for v in &r.violations {
            eprintln!("VIOLATION: {v}");
        }
        panic!(
            "{} violations (seed {}); {}",
            r.violations.len(),
            c.config().seed,
            c.describe()
        );
    }
    assert!(r.liveness.converged);
}

use shale_actors::meta::{ProcedureKind, TabletId, TabletRecord, TabletStatus};
use shale_actors::proto::admin::{AdminCall, AdminReply};
use shale_actors::NodeId;
use std::time::Duration;

/// Neither meta nor the leading master holds a procedure.
pub fn no_procedures(c: &SimCluster) -> bool {
    c.procedures().is_empty() && c.leader().is_some_and(|(_, m)| m.procedures().is_empty())
}

pub fn all_ready(c: &SimCluster, table: &str) -> bool {
    let t = c.tablets(table);
    !t.is_empty() && t.iter().all(|t| t.status == TabletStatus::Ready)
}

/// Run until the table is all Ready and no procedure runs; panics after `secs`.
pub fn settle(c: &mut SimCluster, table: &str, secs: u64) {
    let deadline = c.now().plus(Duration::from_secs(secs));
    let ok = c.run_until_cond(deadline, |c| all_ready(c, table) && no_procedures(c));
    assert!(ok, "not settled: {}", c.describe());
}

/// The procedure to force, by kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Forced {
    Split,
    Merge,
    Move,
}

impl Forced {
    pub fn kind(self) -> ProcedureKind {
        match self {
            Forced::Split => ProcedureKind::Split,
            Forced::Merge => ProcedureKind::Merge,
            Forced::Move => ProcedureKind::Move,
        }
    }
}

/// The admin call that forces `what` on `table`'s first tablets, and the node that serves
/// the first tablet (the one a node crash should hit).
pub fn force_call(c: &SimCluster, table: &str, what: Forced) -> (AdminCall, NodeId) {
    let t: Vec<TabletRecord> = c.tablets(table);
    let first = &t[0];
    let node = first.assigned.expect("assigned").node;
    let call = match what {
        Forced::Split => AdminCall::SplitTablet {
            tablet: first.id,
            key: None,
        },
        Forced::Merge => AdminCall::MergeTablets {
            a: first.id,
            b: t[1].id,
        },
        Forced::Move => {
            let to = c
                .node_ids()
                .into_iter()
                .find(|n| *n != node)
                .expect("another node");
            AdminCall::MoveTablet {
                tablet: first.id,
                node: to,
            }
        }
    };
    (call, node)
}

/// Force `what` and check the master accepted it.
pub fn force(c: &mut SimCluster, table: &str, what: Forced) -> NodeId {
    let (call, node) = force_call(c, table, what);
    match c.admin_ok(call).expect("accepted") {
        AdminReply::Started { .. } | AdminReply::Done => node,
        other => panic!("{what:?}: {other:?}"),
    }
}

/// The phase of the first procedure record of `kind` in meta.
pub fn phase_of(c: &SimCluster, kind: ProcedureKind) -> Option<String> {
    c.procedures()
        .into_iter()
        .find(|p| p.kind == kind)
        .map(|p| p.phase)
}

pub fn ids(c: &SimCluster, table: &str) -> Vec<TabletId> {
    c.tablets(table).iter().map(|t| t.id).collect()
}
