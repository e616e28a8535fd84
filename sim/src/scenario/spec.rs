//! The typed shape of a scenario file (docs/scenario-format.md). Every struct rejects unknown
//! fields, so a misspelt key is an error rather than a silently ignored setting.
//!
//! Owns the data types and their defaults only. Must not validate across fields (`validate.rs`)
//! or generate anything (`workload.rs`).

use super::values::{Dur, SignedDur, Target, Trigger};
use crate::NetConfig;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::time::Duration;

/// A whole scenario file.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    pub name: String,
    #[serde(default)]
    pub description: String,
    pub cluster: Cluster,
    /// `[[table]]` entries.
    #[serde(rename = "table")]
    pub tables: Vec<TableSpec>,
    pub workload: Workload,
    #[serde(default)]
    pub network: Network,
    #[serde(default)]
    pub faults: Faults,
    /// Code-level fault points (`ctx.buggify`), FoundationDB's 25% / 25%.
    #[serde(default)]
    pub buggify: bool,
    pub checks: Vec<Check>,
    pub liveness: Liveness,
    /// The master's split/merge/move policy; absent means the balancer is off (procedures
    /// run only for DDL, failures and repairs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub balancer: Option<Balancer>,
    /// Coverage marks a sweep of this scenario must hit at least once each.
    #[serde(default)]
    pub marks: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Cluster {
    /// Tablet nodes.
    pub nodes: u32,
    /// Master processes (one active, the rest standby).
    pub masters: u32,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TableSpec {
    pub name: String,
    /// Pre-split row keys, strictly increasing: `n` keys make `n + 1` tablets.
    #[serde(default)]
    pub splits: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Workload {
    /// How long clients issue operations (simulated time from the start).
    pub duration: Dur,
    /// Operations per second over all clients.
    pub rate_per_sec: u32,
    /// Concurrent clients; each has at most one operation in flight.
    pub clients: u32,
    /// Tables the workload uses; empty means all.
    #[serde(default)]
    pub tables: Vec<String>,
    pub mix: Mix,
    pub keys: Keys,
    pub value_size: ValueSize,
}

/// Relative weights of operation kinds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Mix {
    pub put: u32,
    pub get: u32,
    pub delete: u32,
    pub check_and_mutate: u32,
    pub increment: u32,
    pub append: u32,
}

impl Mix {
    pub fn total(&self) -> u64 {
        [
            self.put,
            self.get,
            self.delete,
            self.check_and_mutate,
            self.increment,
            self.append,
        ]
        .iter()
        .map(|w| u64::from(*w))
        .sum()
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Keys {
    /// Distinct rows per table: `{prefix}{index:08}` for index in `0..count`.
    pub count: u64,
    #[serde(default = "default_prefix")]
    pub prefix: String,
    pub distribution: Distribution,
}

fn default_prefix() -> String {
    "k".to_string()
}

/// How row indices are drawn. Index 0 is the hottest for `zipf` and `hotspot`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Distribution {
    Uniform,
    /// P(index i) proportional to 1 / (i + 1)^exponent.
    Zipf {
        exponent: f64,
    },
    /// `hot_fraction` of operations go to the first `hot_keys` rows, the rest uniformly to the
    /// others.
    Hotspot {
        hot_keys: u64,
        hot_fraction: f64,
    },
    /// Rows in order, wrapping: an append-at-the-end load that keeps splitting the last tablet.
    Sequential,
}

/// Value sizes in bytes, drawn uniformly from `min..=max`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ValueSize {
    pub min: u32,
    pub max: u32,
}

/// The network model while faults are active; see [`NetConfig`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Network {
    pub latency_min: Dur,
    pub latency_max: Dur,
    pub loss: f64,
    pub duplicate: f64,
    pub reorder: bool,
}

impl Default for Network {
    fn default() -> Self {
        let net = NetConfig::default();
        Self {
            latency_min: Dur(net.latency_min),
            latency_max: Dur(net.latency_max),
            loss: net.loss_probability,
            duplicate: net.duplicate_probability,
            reorder: net.reorder,
        }
    }
}

impl Network {
    pub fn to_net_config(&self) -> NetConfig {
        NetConfig {
            latency_min: self.latency_min.0,
            latency_max: self.latency_max.0,
            loss_probability: self.loss,
            duplicate_probability: self.duplicate,
            reorder: self.reorder,
        }
    }
}

/// Every kind of fault a scenario may name: the executor's environment faults plus the disk
/// faults of the simulated file store.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FaultKind {
    /// Kill a node (unsynced disk data is lost); `for` restarts it after that long.
    Crash,
    /// Restart a crashed node.
    Restart,
    /// Crash and restart at once.
    Reboot,
    /// Crash and never restart.
    Stop,
    /// Cut `target` from `peer` both ways; `for` heals it.
    Partition,
    /// Drop messages from `target` to `peer` only.
    OneWayPartition,
    /// Hold all of `target`'s messages; `for` releases them.
    Clog,
    /// Freeze `target` for `for` (a GC pause, a stopped VM).
    Pause,
    /// Offset `target`'s clock by `offset`.
    ClockSkew,
    /// Remove all partitions and clogs.
    Heal,
    /// Network-wide loss `probability` (and duplication at the same rate) for `for`.
    NetworkDegrade,
    /// `target`'s disk fails operations with `probability`.
    DiskError,
    /// `target`'s disk reports full.
    DiskFull,
    /// `target`'s disk operations take ten times longer.
    SlowDisk,
    /// `target`'s next crash tears its last unsynced write.
    TornWrite,
    /// Jobs (flush, compaction, load) fail with `probability`.
    JobFailure,
    /// Admin actions the scenario races against faults (sent, not awaited): split the tablet
    /// of `table` holding `row`, and disable, enable or drop `table`.
    Split,
    DisableTable,
    EnableTable,
    DropTable,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Faults {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub random: Option<RandomFaults>,
    /// `[[faults.script]]` entries.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub script: Vec<ScriptedFault>,
}

/// Faults drawn at random between `start` and `stop`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RandomFaults {
    pub start: Dur,
    pub stop: Dur,
    /// Mean occurrences per simulated minute, per kind.
    pub rates_per_min: BTreeMap<FaultKind, f64>,
    /// At most this many tablet nodes down at once, so a run tests recovery, not total loss.
    #[serde(default = "one")]
    pub nodes_down_max: u32,
    /// How long a random partition, clog, pause or degradation lasts before it heals.
    #[serde(default = "default_fault_duration")]
    pub duration: Dur,
}

fn one() -> u32 {
    1
}

fn default_fault_duration() -> Dur {
    Dur(Duration::from_secs(5))
}

/// One fault at a time (`at`) or at a procedure phase (`when`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScriptedFault {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at: Option<Dur>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub when: Option<Trigger>,
    /// With `when`: fire on the n-th time the phase is reached (1-based; default 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub occurrence: Option<u32>,
    pub fault: FaultKind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<Target>,
    /// The other side of a partition (default `rest`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peer: Option<Target>,
    /// How long the fault lasts before it is undone.
    #[serde(default, rename = "for", skip_serializing_if = "Option::is_none")]
    pub lasting: Option<Dur>,
    /// Clock offset for `clock_skew`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offset: Option<SignedDur>,
    /// For `network_degrade`, `disk_error`, `job_failure`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub probability: Option<f64>,
    /// For `split` and the table actions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub table: Option<String>,
    /// For `split`: a row of the tablet to split.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub row: Option<String>,
}

/// Checkers a run applies (architecture.md, section 9).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Check {
    /// Per-row linearizability of the client history.
    Linearizability,
    /// Every acknowledged write is in the final reads.
    NoLostWrites,
    /// Every key of an enabled table is in exactly one tablet in meta, and meta holds no
    /// stat row of a tablet it does not have.
    MetaCoverage,
    /// A tablet is served by at most one node, at its latest version.
    SingleOwner,
    /// No file a live tablet can read is deleted.
    GcSafety,
    /// Tablet and procedure states change only along allowed transitions.
    Transitions,
    /// After healing, procedures end and tablets are Ready within the deadline.
    Liveness,
    /// Meta store and master memory agree after recovery.
    MetaAgreesWithMaster,
}

/// When the master splits, merges and moves tablets on its own.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Balancer {
    /// Split a tablet whose reported size exceeds this many bytes.
    pub split_bytes: u64,
    /// Merge neighbouring tablets whose sizes are both below this many bytes.
    #[serde(default)]
    pub merge_bytes: u64,
    /// Moves the balancer may start per round (0: never moves for load).
    #[serde(default)]
    pub moves_per_round: u32,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Liveness {
    /// When to heal everything and stop faults (default: the end of the workload).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub heal_at: Option<Dur>,
    /// After healing, everything must converge within this long.
    pub deadline: Dur,
}
