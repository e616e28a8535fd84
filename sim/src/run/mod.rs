//! The scenario runner: one parsed [`Scenario`] and one seed onto a [`SimCluster`]: build the
//! cluster and tables, feed the workload, apply the fault schedule (timed faults at their
//! times, triggered faults when their phase is reached), heal at `liveness.heal_at`, run the
//! liveness phase and the checks, and report PASS or FAIL with the violations, the marks hit
//! and the command that replays the run.
//!
//! Map: `plan.rs` the schedule (random faults drawn into scripted ones); `apply.rs` targets,
//! fault application and undo; `triggers.rs` phase triggers; `events.rs` the runner's events
//! and the structured trace; `shrink.rs` minimising a failing run.
//!
//! Must not: read a wall clock or use threads (a run is a pure function of scenario, seed
//! and options), or print (callers decide what to show).

mod apply;
mod events;
mod plan;
mod shrink;
mod triggers;

pub use events::{merge, parse_line, EventLog, RunEvent, TraceEvent};
pub use plan::{schedule, scripted};
pub use shrink::{shrink, ShrinkResult};
pub use triggers::known_phases;

use crate::cluster::{ClusterConfig, ClusterError, RunReport, Shape, SimCluster, Violation};
use crate::scenario::{Check, Scenario, WorkloadGen};
use crate::{Marks, NetConfig, Time};
use apply::{Action, Agenda, Applier};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use std::time::Duration;
use triggers::Watcher;

/// Workload client processes at most (logical clients share them).
const CLIENT_PROCESSES_MAX: u32 = 4;

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("cluster: {0}")]
    Cluster(#[from] ClusterError),
    #[error("scenario {scenario}: trigger {trigger}: unknown phase; {procedure} has: {known}")]
    UnknownPhase {
        scenario: String,
        trigger: String,
        procedure: String,
        known: String,
    },
}

/// How to run (beyond scenario and seed).
#[derive(Clone, Debug, Default)]
pub struct RunOptions {
    /// Keep every executor event (for `--trace` and `--html`); slower.
    pub trace: bool,
    /// Stop issuing workload operations after this many (the shrinker's knob).
    pub ops_max: Option<usize>,
}

/// The outcome of one seed.
pub struct ScenarioReport {
    pub scenario: String,
    pub seed: u64,
    /// Violations of the scenario's checks (others are counted in `ignored`).
    pub violations: Vec<Violation>,
    /// Violations of checks the scenario did not list.
    pub ignored: usize,
    pub run: RunReport,
    /// Marks hit in this run and how often.
    pub marks: Marks,
    pub trace_hash: u64,
    pub events: Vec<RunEvent>,
    /// Executor trace lines (with `RunOptions::trace`).
    pub trace_lines: Vec<String>,
    /// Simulated time at the end.
    pub ended_at: Time,
}

impl ScenarioReport {
    pub fn passed(&self) -> bool {
        self.violations.is_empty()
    }

    /// The command that reruns exactly this seed.
    pub fn replay_command(&self, path: &str) -> String {
        format!("shale sim --scenario {path} --seed {}", self.seed)
    }

    /// Every event, structured, in time order.
    pub fn trace_events(&self) -> Vec<TraceEvent> {
        merge(&self.trace_lines, &self.events)
    }
}

/// Which check a violation belongs to (`None`: always reported, a runner failure).
pub fn check_of(v: &Violation) -> Option<Check> {
    Some(match v {
        Violation::IllegalTransition { .. } | Violation::BadBirth { .. } => Check::Transitions,
        Violation::DoubleServe { .. }
        | Violation::ServedNotInMeta { .. }
        | Violation::ServedOutsideRange { .. }
        | Violation::StaleVersionServed { .. } => Check::SingleOwner,
        Violation::FileDeletedWhileLive { .. } => Check::GcSafety,
        Violation::Coverage { .. } | Violation::OrphanStatRow { .. } => Check::MetaCoverage,
        Violation::Liveness { .. } => Check::Liveness,
        Violation::MemoryDisagrees(_) => Check::MetaAgreesWithMaster,
        Violation::NotLinearizable(_) | Violation::Undecided(_) => Check::Linearizability,
        Violation::LostWrite(_) | Violation::Unread(_) => Check::NoLostWrites,
        Violation::Recorder(_) => return None,
    })
}

/// The cluster settings a scenario asks for.
pub fn cluster_config(s: &Scenario, seed: u64) -> ClusterConfig {
    let clients = s.workload.clients.clamp(1, CLIENT_PROCESSES_MAX) as usize;
    let shape = Shape::new(
        s.cluster.masters as usize,
        s.cluster.nodes as usize,
        clients,
    );
    let mut cfg = ClusterConfig::new(seed, shape);
    cfg.net = s.network.to_net_config();
    cfg.buggify = s.buggify;
    // Logical clients are spread over the processes; each keeps one operation open.
    cfg.workers_per_client = (s.workload.clients as usize).div_ceil(clients);
    if let Some(b) = &s.balancer {
        cfg = cfg.with_balancer(b.split_bytes, b.merge_bytes);
        cfg.master.moves_per_round_max = b.moves_per_round as usize;
    }
    cfg
}

/// Refuse triggers naming a phase no procedure reports.
fn check_triggers(s: &Scenario) -> Result<(), RunError> {
    for f in &s.faults.script {
        if let Some(t) = &f.when {
            let known = known_phases(&t.procedure);
            if !known.contains(&t.phase.as_str()) {
                return Err(RunError::UnknownPhase {
                    scenario: s.name.clone(),
                    trigger: String::from(t.clone()),
                    procedure: t.procedure.clone(),
                    known: known.join(", "),
                });
            }
        }
    }
    Ok(())
}

/// Run `s` once with `seed`.
pub fn run(s: &Scenario, seed: u64, opts: &RunOptions) -> Result<ScenarioReport, RunError> {
    run_configured(s, seed, opts, |_| {})
}

/// [`run`], with `configure` adjusting the cluster settings the scenario asks for before the
/// cluster is built (tests use it to switch the actors' planted bugs per run).
pub fn run_configured(
    s: &Scenario,
    seed: u64,
    opts: &RunOptions,
    configure: impl FnOnce(&mut ClusterConfig),
) -> Result<ScenarioReport, RunError> {
    check_triggers(s)?;
    let mut cfg = cluster_config(s, seed);
    configure(&mut cfg);
    let net = cfg.net.clone();
    // Setup (election, tables) runs on a clean network; the scenario's network starts with
    // the workload.
    cfg.net = NetConfig::default();
    cfg.trace_lines = opts.trace;
    let mut c = SimCluster::new(cfg)?;
    for t in &s.tables {
        let splits: Vec<&[u8]> = t.splits.iter().map(|k| k.as_bytes()).collect();
        c.create_table(&t.name, &splits)?;
    }
    c.sim.set_net(net.clone()).map_err(ClusterError::Sim)?;
    let t0 = c.now();
    let ops = WorkloadGen::new(s, seed).take(opts.ops_max.unwrap_or(usize::MAX));
    c.add_workload(ops);

    let faults = schedule(s, seed);
    let mut applier = Applier {
        rng: ChaCha8Rng::seed_from_u64(seed ^ 0x0054_4152_4745_5453),
        net,
        jobs: c.sim.job_config().clone(),
        agenda: Agenda::default(),
    };
    let mut triggered = Vec::new();
    for (i, f) in faults.iter().enumerate() {
        match (f.at, &f.when) {
            (Some(at), _) => applier.agenda.push(t0.plus(at.0), Action::Apply(i)),
            (None, Some(w)) => triggered.push((i, w.clone(), f.occurrence.unwrap_or(1))),
            (None, None) => {}
        }
    }
    let refs: Vec<_> = triggered.iter().map(|(_, w, _)| w).collect();
    let mut watcher = Watcher::new(&refs);
    let mut log = EventLog {
        keep_phases: opts.trace,
        ..EventLog::default()
    };
    let heal_at = t0.plus(s.liveness.heal_at.map_or(s.workload.duration.0, |d| d.0));
    loop {
        // Apply everything due, then triggers, then run to the next agenda item or a trigger.
        while let Some(a) = applier.agenda.pop_due(c.now()) {
            match a {
                Action::Apply(i) => applier.apply(&mut c, &faults[i], &mut log),
                other => applier.undo(&mut c, &other, &mut log),
            }
        }
        fire_triggers(
            &mut c,
            &mut watcher,
            &mut triggered,
            &faults,
            &mut applier,
            &mut log,
        );
        if c.now() >= heal_at {
            break;
        }
        let next = applier
            .agenda
            .next_time()
            .map_or(heal_at, |t| t.min(heal_at));
        let no_triggers = triggered.is_empty();
        let keep = log.keep_phases;
        let mut seen = Vec::new();
        c.run_until_cond(next, |c| {
            if no_triggers && !keep {
                return false;
            }
            let new = watcher.poll(c);
            let fire = !new.is_empty() && triggered.iter().any(|(_, w, n)| watcher.count(w) >= *n);
            let t = c.now();
            seen.extend(new.into_iter().map(|p| (t, p)));
            fire
        });
        if keep {
            for (t, p) in seen {
                log.push(RunEvent {
                    at: t,
                    kind: "phase",
                    nodes: Vec::new(),
                    text: format!("{}.{} {}", p.procedure, p.phase, p.subject),
                });
            }
        }
    }
    applier.heal_all(&mut c);
    let run = c.finish(s.liveness.deadline.0);
    let mut violations = Vec::new();
    let mut ignored = 0;
    for v in &run.violations {
        match check_of(v) {
            Some(k) if !s.checks.contains(&k) => ignored += 1,
            _ => violations.push(v.clone()),
        }
    }
    for v in &violations {
        log.push(RunEvent {
            at: c.now(),
            kind: "violation",
            nodes: Vec::new(),
            text: v.to_string(),
        });
    }
    let marks = c.sim.marks().clone();
    Ok(ScenarioReport {
        scenario: s.name.clone(),
        seed,
        violations,
        ignored,
        marks,
        trace_hash: c.sim.trace_hash(),
        trace_lines: c
            .sim
            .trace_lines()
            .map(<[String]>::to_vec)
            .unwrap_or_default(),
        events: log.events,
        ended_at: c.now(),
        run,
    })
}

fn fire_triggers(
    c: &mut SimCluster,
    watcher: &mut Watcher,
    triggered: &mut Vec<(usize, crate::scenario::Trigger, u32)>,
    faults: &[crate::scenario::ScriptedFault],
    applier: &mut Applier,
    log: &mut EventLog,
) {
    if triggered.is_empty() {
        return;
    }
    let _ = watcher.poll(c);
    let due: Vec<usize> = triggered
        .iter()
        .filter(|(_, w, n)| watcher.count(w) >= *n)
        .map(|(i, _, _)| *i)
        .collect();
    triggered.retain(|(i, _, _)| !due.contains(i));
    for i in due {
        applier.apply(c, &faults[i], log);
    }
}

/// How long a run of `s` lasts in simulated time at most (heal plus the deadline).
pub fn simulated_span(s: &Scenario) -> Duration {
    s.liveness.heal_at.map_or(s.workload.duration.0, |d| d.0) + s.liveness.deadline.0
}
