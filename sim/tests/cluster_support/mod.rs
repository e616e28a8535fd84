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
