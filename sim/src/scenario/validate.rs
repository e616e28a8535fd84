//! Whole-scenario validation: the rules that span fields (a fault's target names an existing
//! node or table, a kind gets exactly the parameters it uses, splits increase, weights are not
//! all zero). Every problem is collected and reported with the path of the field it concerns.
//!
//! Owns these rules. Must not parse text (`values.rs`, serde) or change the scenario.

use super::spec::{Distribution, FaultKind, Scenario, ScriptedFault};
use super::values::Target;
use std::collections::BTreeSet;
use std::fmt;
use std::time::Duration;

/// One field whose value is not acceptable.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    /// Dotted path, e.g. `faults.script[2].target`.
    pub field: String,
    pub reason: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.reason)
    }
}

/// Bounds that keep a run's memory and time reasonable.
pub const NODES_MAX: u32 = 64;
pub const MASTERS_MAX: u32 = 7;
pub const KEYS_MAX: u64 = 100_000_000;
/// Zipf sampling keeps a cumulative table of this many entries at most.
pub const ZIPF_KEYS_MAX: u64 = 1_000_000;
pub const VALUE_SIZE_MAX: u32 = 1 << 20;
/// Values carry an 8-byte operation number so every written value is distinct.
pub const VALUE_SIZE_MIN: u32 = 8;

struct Collector(Vec<Problem>);

impl Collector {
    fn check(&mut self, ok: bool, field: impl Into<String>, reason: impl Into<String>) {
        if !ok {
            self.0.push(Problem {
                field: field.into(),
                reason: reason.into(),
            });
        }
    }
}

fn probability(p: f64) -> bool {
    (0.0..=1.0).contains(&p)
}

pub(crate) fn validate(s: &Scenario) -> Vec<Problem> {
    let mut c = Collector(Vec::new());
    c.check(!s.name.trim().is_empty(), "name", "must not be empty");
    c.check(
        (1..=NODES_MAX).contains(&s.cluster.nodes),
        "cluster.nodes",
        format!("{} is not in 1..={NODES_MAX}", s.cluster.nodes),
    );
    c.check(
        (1..=MASTERS_MAX).contains(&s.cluster.masters),
        "cluster.masters",
        format!("{} is not in 1..={MASTERS_MAX}", s.cluster.masters),
    );
    let tables = validate_tables(s, &mut c);
    validate_workload(s, &tables, &mut c);
    let net = &s.network;
    c.check(
        net.latency_min <= net.latency_max,
        "network.latency_min",
        format!(
            "{} is above latency_max {}",
            net.latency_min, net.latency_max
        ),
    );
    c.check(
        probability(net.loss),
        "network.loss",
        format!("{} is not in 0..=1", net.loss),
    );
    c.check(
        probability(net.duplicate),
        "network.duplicate",
        format!("{} is not in 0..=1", net.duplicate),
    );
    validate_faults(s, &tables, &mut c);
    c.check(!s.checks.is_empty(), "checks", "list at least one check");
    let distinct: BTreeSet<_> = s.checks.iter().collect();
    c.check(
        distinct.len() == s.checks.len(),
        "checks",
        "a check is listed twice",
    );
    c.check(
        !s.liveness.deadline.0.is_zero(),
        "liveness.deadline",
        "must be positive",
    );
    for (i, m) in s.marks.iter().enumerate() {
        c.check(
            !m.trim().is_empty(),
            format!("marks[{i}]"),
            "must not be empty",
        );
    }
    c.0
}

fn validate_tables<'a>(s: &'a Scenario, c: &mut Collector) -> BTreeSet<&'a str> {
    let mut names = BTreeSet::new();
    c.check(
        !s.tables.is_empty(),
        "table",
        "declare at least one [[table]]",
    );
    for (i, t) in s.tables.iter().enumerate() {
        c.check(
            !t.name.is_empty(),
            format!("table[{i}].name"),
            "must not be empty",
        );
        c.check(
            names.insert(t.name.as_str()),
            format!("table[{i}].name"),
            format!("table {:?} is declared twice", t.name),
        );
        c.check(
            t.splits.iter().all(|k| !k.is_empty()),
            format!("table[{i}].splits"),
            "the empty key is already the start of the first tablet",
        );
        c.check(
            t.splits.windows(2).all(|w| w[0] < w[1]),
            format!("table[{i}].splits"),
            "split keys must be strictly increasing",
        );
    }
    names
}

fn validate_workload(s: &Scenario, tables: &BTreeSet<&str>, c: &mut Collector) {
    let w = &s.workload;
    c.check(
        !w.duration.0.is_zero(),
        "workload.duration",
        "must be positive",
    );
    c.check(
        w.rate_per_sec > 0,
        "workload.rate_per_sec",
        "must be positive",
    );
    c.check(w.clients > 0, "workload.clients", "must be positive");
    c.check(w.mix.total() > 0, "workload.mix", "all weights are zero");
    for (i, t) in w.tables.iter().enumerate() {
        c.check(
            tables.contains(t.as_str()),
            format!("workload.tables[{i}]"),
            format!("no table named {t:?}"),
        );
    }
    let count = w.keys.count;
    c.check(
        (1..=KEYS_MAX).contains(&count),
        "workload.keys.count",
        format!("{count} is not in 1..={KEYS_MAX}"),
    );
    match &w.keys.distribution {
        Distribution::Uniform | Distribution::Sequential => {}
        Distribution::Zipf { exponent } => {
            c.check(
                exponent.is_finite() && *exponent > 0.0,
                "workload.keys.distribution.exponent",
                format!("{exponent} must be a positive number"),
            );
            c.check(
                count <= ZIPF_KEYS_MAX,
                "workload.keys.count",
                format!("zipf supports at most {ZIPF_KEYS_MAX} keys, not {count}"),
            );
        }
        Distribution::Hotspot {
            hot_keys,
            hot_fraction,
        } => {
            c.check(
                (1..=count).contains(hot_keys),
                "workload.keys.distribution.hot_keys",
                format!("{hot_keys} is not in 1..={count} (keys.count)"),
            );
            c.check(
                probability(*hot_fraction),
                "workload.keys.distribution.hot_fraction",
                format!("{hot_fraction} is not in 0..=1"),
            );
        }
    }
    let v = w.value_size;
    c.check(
        (VALUE_SIZE_MIN..=VALUE_SIZE_MAX).contains(&v.min),
        "workload.value_size.min",
        format!("{} is not in {VALUE_SIZE_MIN}..={VALUE_SIZE_MAX}", v.min),
    );
    c.check(
        v.min <= v.max && v.max <= VALUE_SIZE_MAX,
        "workload.value_size.max",
        format!("{} is not in min..={VALUE_SIZE_MAX}", v.max),
    );
}

fn validate_target(
    t: &Target,
    s: &Scenario,
    tables: &BTreeSet<&str>,
    field: &str,
    c: &mut Collector,
) {
    match t {
        Target::Node(n) => c.check(
            *n <= s.cluster.nodes,
            field,
            format!(
                "node {n} does not exist (cluster.nodes = {})",
                s.cluster.nodes
            ),
        ),
        Target::ServingTablet { table, .. } => c.check(
            tables.contains(table.as_str()),
            field,
            format!("no table named {table:?}"),
        ),
        Target::StandbyMaster => c.check(
            s.cluster.masters >= 2,
            field,
            "a standby master needs cluster.masters >= 2",
        ),
        Target::Rest => c.check(false, field, "\"rest\" is only a partition's peer"),
        _ => {}
    }
}

/// Whether a fault kind takes a parameter.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Need {
    No,
    May,
    Must,
}

/// The parameters a kind takes: target, peer, `for`, offset, probability.
struct Shape {
    target: Need,
    peer: Need,
    lasting: Need,
    offset: Need,
    probability: Need,
}

fn shape(kind: FaultKind) -> Shape {
    use FaultKind::*;
    use Need::*;
    let (target, peer, lasting, offset, probability) = match kind {
        Restart | Reboot | Stop | TornWrite => (Must, No, No, No, No),
        Crash | Clog | DiskFull | SlowDisk => (Must, No, May, No, No),
        Partition | OneWayPartition => (Must, May, May, No, No),
        Pause => (Must, No, Must, No, No),
        ClockSkew => (Must, No, May, Must, No),
        Heal => (No, No, No, No, No),
        NetworkDegrade | JobFailure => (No, No, May, No, Must),
        DiskError => (Must, No, May, No, May),
        Split | DisableTable | EnableTable | DropTable => (No, No, No, No, No),
    };
    Shape {
        target,
        peer,
        lasting,
        offset,
        probability,
    }
}

/// Reports a parameter that is missing when it must be given or present when it must not.
fn need(c: &mut Collector, need: Need, present: bool, field: String, kind: &str, what: &str) {
    match need {
        Need::Must => c.check(present, field, format!("{kind} needs {what}")),
        Need::No => c.check(!present, field, format!("{kind} takes no {what}")),
        Need::May => {}
    }
}

fn validate_faults(s: &Scenario, tables: &BTreeSet<&str>, c: &mut Collector) {
    let end = s.workload.duration.0;
    if let Some(r) = &s.faults.random {
        c.check(
            r.start < r.stop,
            "faults.random.stop",
            format!("{} is not after start {}", r.stop, r.start),
        );
        c.check(
            r.rates_per_min.values().any(|v| *v > 0.0),
            "faults.random.rates_per_min",
            "give at least one kind a positive rate",
        );
        for (kind, rate) in &r.rates_per_min {
            c.check(
                rate.is_finite() && *rate >= 0.0,
                format!("faults.random.rates_per_min.{kind:?}"),
                format!("{rate} is not a non-negative number"),
            );
        }
        c.check(
            r.nodes_down_max < s.cluster.nodes,
            "faults.random.nodes_down_max",
            format!("{} would leave no tablet node up", r.nodes_down_max),
        );
    }
    for (i, f) in s.faults.script.iter().enumerate() {
        validate_scripted(i, f, s, tables, end, c);
    }
}

fn validate_scripted(
    i: usize,
    f: &ScriptedFault,
    s: &Scenario,
    tables: &BTreeSet<&str>,
    end: Duration,
    c: &mut Collector,
) {
    let at = |name: &str| format!("faults.script[{i}].{name}");
    c.check(
        f.at.is_some() != f.when.is_some(),
        at("at"),
        "give exactly one of `at` and `when`",
    );
    if let Some(t) = f.at {
        c.check(
            t.0 <= end,
            at("at"),
            format!("{t} is after the workload ends ({})", s.workload.duration),
        );
    }
    c.check(
        f.occurrence.is_none() || f.when.is_some(),
        at("occurrence"),
        "only with `when`",
    );
    c.check(f.occurrence != Some(0), at("occurrence"), "counts from 1");
    let shape = shape(f.fault);
    let kind = format!("{:?}", f.fault);
    need(
        c,
        shape.target,
        f.target.is_some(),
        at("target"),
        &kind,
        "a target",
    );
    if let Some(t) = &f.target {
        validate_target(t, s, tables, &at("target"), c);
    }
    need(c, shape.peer, f.peer.is_some(), at("peer"), &kind, "a peer");
    match &f.peer {
        Some(Target::Rest) | None => {}
        Some(t) => validate_target(t, s, tables, &at("peer"), c),
    }
    need(
        c,
        shape.lasting,
        f.lasting.is_some(),
        at("for"),
        &kind,
        "`for`",
    );
    need(
        c,
        shape.offset,
        f.offset.is_some(),
        at("offset"),
        &kind,
        "an offset",
    );
    let has_p = f.probability.is_some();
    need(
        c,
        shape.probability,
        has_p,
        at("probability"),
        &kind,
        "a probability",
    );
    if let Some(p) = f.probability {
        c.check(
            probability(p),
            at("probability"),
            format!("{p} is not in 0..=1"),
        );
    }
    use FaultKind::{DisableTable, DropTable, EnableTable, Split};
    let admin = matches!(f.fault, Split | DisableTable | EnableTable | DropTable);
    let table = if admin { Need::Must } else { Need::No };
    need(c, table, f.table.is_some(), at("table"), &kind, "a table");
    if let Some(t) = &f.table {
        c.check(
            tables.contains(t.as_str()),
            at("table"),
            format!("no table {t:?}"),
        );
    }
    let row = if f.fault == Split {
        Need::Must
    } else {
        Need::No
    };
    need(c, row, f.row.is_some(), at("row"), &kind, "a row");
}
