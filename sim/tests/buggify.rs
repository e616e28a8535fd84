//! Buggify and marks through the executor: each node's actor reaches fault points and marks via
//! its `Ctx`; the run seed alone decides which points are enabled and when they fire.

use serde::{Deserialize, Serialize};
use shale_actors::{Actor, Ctx, JobError, JobId, NodeId, TimerId};
use shale_sim::{BuggifyConfig, MarkSweep, Sim, SimConfig, Time};
use std::time::Duration;

const POINTS: [&str; 8] = [
    "split.slow_meta_write",
    "split.drop_reply",
    "merge.early_timeout",
    "move.duplicate_load",
    "gc.short_grace",
    "lease.renew_late",
    "query.stale_cache",
    "load.spurious_retry",
];

/// Reaches every point on each tick and remembers what fired; draws from its own RNG so a test
/// can show buggify does not disturb the actor's stream.
#[derive(Default)]
struct Poker {
    fired: Vec<(u32, &'static str)>,
    own_draws: Vec<u64>,
    ticks: u32,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
struct Nothing;

impl Actor for Poker {
    type Msg = Nothing;
    type Timer = ();
    type JobOutput = ();
    fn on_start(&mut self, ctx: &mut Ctx<'_, Self>) {
        ctx.set_timer(Duration::from_millis(1), ());
    }
    fn on_msg(&mut self, _: NodeId, _: Nothing, _: &mut Ctx<'_, Self>) {}
    fn on_timer(&mut self, _: TimerId, _: (), ctx: &mut Ctx<'_, Self>) {
        use rand::RngCore;
        self.ticks += 1;
        for p in POINTS {
            if ctx.buggify(p) {
                self.fired.push((self.ticks, p));
            }
        }
        ctx.mark("tick");
        if [10, 20, 30, 40].contains(&self.ticks) {
            ctx.mark("tenth tick");
        }
        self.own_draws.push(ctx.rng().next_u64());
        if self.ticks < 40 {
            ctx.set_timer(Duration::from_millis(1), ());
        }
    }
    fn on_job_done(&mut self, _: JobId, _: Result<(), JobError>, _: &mut Ctx<'_, Self>) {}
}

type Run = (
    Vec<&'static str>,
    Vec<Vec<(u32, &'static str)>>,
    Vec<u64>,
    u64,
);

/// Runs three pokers to the end; returns the enabled points, each node's firings, node 1's own
/// draws and the trace hash.
fn run(cfg: SimConfig) -> (Run, Sim<Poker>) {
    let mut sim: Sim<Poker> = Sim::new(cfg).expect("valid config");
    for n in 1..=3 {
        sim.add_node(NodeId(n), |_| Poker::default())
            .expect("fresh node");
    }
    sim.run_until(Time::from_millis(100));
    let fired = (1..=3)
        .map(|n| sim.actor(NodeId(n)).expect("up").fired.clone())
        .collect();
    let draws = sim.actor(NodeId(1)).expect("up").own_draws.clone();
    let run = (
        sim.buggify().enabled_points(),
        fired,
        draws,
        sim.trace_hash(),
    );
    (run, sim)
}

#[test]
fn the_same_seed_gives_the_same_enabled_set_and_firing_pattern() {
    let mut some_fired = false;
    for seed in 0..20 {
        let (a, sim) = run(SimConfig::new(seed).with_buggify());
        let (b, _) = run(SimConfig::new(seed).with_buggify());
        assert_eq!(a, b, "seed {seed}");
        // Firings happen only at enabled points, and the counts agree with what actors saw.
        let fired: usize = a.1.iter().map(Vec::len).sum();
        assert_eq!(sim.buggify().fired(), fired as u64);
        for (_, p) in a.1.iter().flatten() {
            assert!(a.0.contains(p), "seed {seed}: {p} fired but is not enabled");
        }
        some_fired |= fired > 0;
    }
    assert!(some_fired, "20 seeds never fired anything");
}

#[test]
fn different_seeds_enable_different_sets() {
    let sets: std::collections::BTreeSet<Vec<&'static str>> = (0..20)
        .map(|seed| run(SimConfig::new(seed).with_buggify()).0 .0)
        .collect();
    assert!(sets.len() > 5, "only {} distinct enabled sets", sets.len());
}

#[test]
fn each_point_is_enabled_in_about_a_quarter_of_seeds_and_fires_a_quarter_of_the_time() {
    let seeds = 400u64;
    let mut enabled = [0u64; POINTS.len()];
    let (mut reached, mut fired) = (0u64, 0u64);
    for seed in 0..seeds {
        let sim: Sim<Poker> = Sim::new(SimConfig::new(seed).with_buggify()).expect("valid");
        for (i, p) in POINTS.iter().enumerate() {
            enabled[i] += u64::from(sim.buggify().is_enabled(p));
        }
    }
    for (i, count) in enabled.iter().enumerate() {
        // 25% of 400 = 100; four standard deviations is about 35.
        assert!(
            (65..=135).contains(count),
            "{} enabled in {count} of {seeds} seeds",
            POINTS[i]
        );
    }
    for seed in 0..40 {
        let (_, sim) = run(SimConfig::new(seed).with_buggify());
        for stats in sim.buggify().points().values().filter(|s| s.enabled) {
            reached += stats.reached;
            fired += stats.fired;
        }
    }
    let permille = fired * 1000 / reached.max(1);
    assert!(
        (200..=300).contains(&permille),
        "enabled points fired {fired} of {reached} times"
    );
}

#[test]
fn buggify_off_never_fires_and_leaves_the_run_untouched() {
    for seed in 0..10 {
        let (off, sim) = run(SimConfig::new(seed));
        assert!(off.0.is_empty());
        assert!(off.1.iter().all(Vec::is_empty));
        assert_eq!(sim.buggify().fired(), 0);
        // Buggify draws from its own per-node stream, so the actor's own draws are the same
        // with it on; the schedule is too, because this actor's timers ignore what fired.
        let (on, _) = run(SimConfig::new(seed).with_buggify());
        assert_eq!(off.2, on.2, "seed {seed}: the actor's RNG stream changed");
        assert_eq!(off.3, on.3, "seed {seed}: the trace changed");
    }
}

#[test]
fn marks_are_counted_per_run_and_tallied_by_a_sweep() {
    let mut sweep = MarkSweep::new();
    for seed in 0..5 {
        let (_, sim) = run(SimConfig::new(seed));
        // Three nodes, forty ticks each, every tenth marked.
        assert_eq!(sim.marks().count("tick"), 120);
        assert_eq!(sim.marks().count("tenth tick"), 12);
        sweep.add_run(sim.marks());
    }
    assert!(sweep.require(&["tick", "tenth tick"]).is_ok());
    let err = sweep
        .require(&["tick", "never reached"])
        .expect_err("an unhit mark fails the sweep");
    assert_eq!(err.missing, vec!["never reached".to_string()]);
    assert!(sweep.table(&["never reached"]).contains("MISSING"));
}

#[test]
fn a_bad_probability_is_refused() {
    let mut cfg = SimConfig::new(1);
    cfg.buggify = BuggifyConfig {
        enabled: true,
        enable_probability: 1.5,
        fire_probability: 0.25,
    };
    assert!(Sim::<Poker>::new(cfg).is_err());
}
