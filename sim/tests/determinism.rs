//! Determinism: a busy run (random actor choices, random latency, loss, duplication, jobs that
//! fail, partitions, clogs, crashes, restarts, skew, pauses) gives the same trace hash and the
//! same trace lines for the same seed, different ones for different seeds, and keeping lines
//! does not change the hash.

use rand::Rng;
use serde::{Deserialize, Serialize};
use shale_actors::{Actor, Ctx, JobError, JobId, JobSpec, NodeId, Time, TimerId};
use shale_sim::{Fault, JobConfig, NetConfig, Sim, SimConfig};
use std::time::Duration;

const NODES: u64 = 4;

/// Every so often, sends a random number to a random peer or starts a job; answers odd
/// numbers. Everything random comes from `ctx.rng()`.
#[derive(Default)]
struct Chatter {
    sum: u64,
    jobs_ok: u64,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
struct Note(u64);

impl Actor for Chatter {
    type Msg = Note;
    type Timer = ();
    type JobOutput = u64;

    fn on_start(&mut self, ctx: &mut Ctx<'_, Self>) {
        let first = Duration::from_micros(ctx.rng().gen_range(0..5_000));
        ctx.set_timer(first, ());
    }
    fn on_msg(&mut self, from: NodeId, msg: Note, ctx: &mut Ctx<'_, Self>) {
        self.sum = self.sum.wrapping_add(msg.0);
        if msg.0 % 2 == 1 {
            ctx.send(from, Note(msg.0 / 2));
        }
    }
    fn on_timer(&mut self, _: TimerId, _: (), ctx: &mut Ctx<'_, Self>) {
        let me = ctx.me();
        if ctx.rng().gen_bool(0.2) {
            let v = ctx.now().as_nanos();
            ctx.start_job(JobSpec::new("work", Duration::from_millis(3)), move || {
                v % 1000
            });
        } else {
            let to = NodeId(ctx.rng().gen_range(1..=NODES));
            if to != me {
                let v = ctx.rng().gen_range(0..1_000_000);
                ctx.send(to, Note(v));
            }
        }
        let next = Duration::from_micros(ctx.rng().gen_range(500..3_000));
        ctx.set_timer(next, ());
    }
    fn on_job_done(&mut self, _: JobId, r: Result<u64, JobError>, _: &mut Ctx<'_, Self>) {
        if let Ok(v) = r {
            self.jobs_ok += 1;
            self.sum = self.sum.wrapping_add(v);
        }
    }
}

struct Outcome {
    hash: u64,
    lines: Option<Vec<String>>,
    events: u64,
    records: u64,
    sums: Vec<u64>,
}

fn run(seed: u64, keep_lines: bool) -> Outcome {
    let net = NetConfig {
        latency_min: Duration::from_micros(200),
        latency_max: Duration::from_millis(4),
        loss_probability: 0.05,
        duplicate_probability: 0.05,
        reorder: true,
    };
    let mut cfg = SimConfig::new(seed).with_net(net);
    cfg.jobs = JobConfig {
        duration_jitter: 0.5,
        fail_probability: 0.1,
    };
    cfg.trace.keep_lines = keep_lines;
    let mut sim: Sim<Chatter> = Sim::new(cfg).expect("valid config");
    for i in 1..=NODES {
        sim.add_node(NodeId(i), |_| Chatter::default())
            .expect("new node");
    }
    let at = Time::from_millis;
    let faults = [
        (
            50,
            Fault::Partition {
                a: vec![NodeId(1)],
                b: vec![NodeId(2), NodeId(3)],
            },
        ),
        (80, Fault::Clog(NodeId(4))),
        (100, Fault::Crash(NodeId(2))),
        (
            120,
            Fault::SetClockOffset {
                node: NodeId(3),
                offset_ns: -7_000_000,
            },
        ),
        (150, Fault::Heal),
        (160, Fault::Unclog(NodeId(4))),
        (170, Fault::Restart(NodeId(2))),
        (
            180,
            Fault::Pause {
                node: NodeId(1),
                duration: Duration::from_millis(20),
            },
        ),
        (
            200,
            Fault::PartitionOneWay {
                from: vec![NodeId(4)],
                to: vec![NodeId(1)],
            },
        ),
        (250, Fault::Heal),
    ];
    for (t, fault) in faults {
        sim.schedule(at(t), fault).expect("valid fault");
    }
    sim.run_until(at(300));
    Outcome {
        hash: sim.trace_hash(),
        lines: sim.trace_lines().map(<[String]>::to_vec),
        events: sim.stats().events,
        records: sim.trace_records(),
        sums: (1..=NODES)
            .map(|i| sim.actor(NodeId(i)).map_or(0, |c| c.sum))
            .collect(),
    }
}

#[test]
fn same_seed_gives_an_identical_trace() {
    let a = run(7, true);
    let b = run(7, true);
    assert!(
        a.events > 1_000,
        "the run should be busy, got {} events",
        a.events
    );
    assert_eq!(a.hash, b.hash);
    assert_eq!(a.lines, b.lines);
    assert_eq!(a.sums, b.sums);
}

#[test]
fn different_seeds_give_different_traces() {
    let hashes: Vec<u64> = (1..=5).map(|seed| run(seed, false).hash).collect();
    for (i, a) in hashes.iter().enumerate() {
        for b in &hashes[i + 1..] {
            assert_ne!(a, b, "hashes {hashes:x?}");
        }
    }
    assert_ne!(run(1, true).lines, run(2, true).lines);
}

#[test]
fn keeping_lines_does_not_change_the_hash() {
    let with = run(11, true);
    let without = run(11, false);
    assert_eq!(with.hash, without.hash);
    assert!(without.lines.is_none());
}

#[test]
fn the_trace_records_every_kind_of_event_that_happened() {
    let outcome = run(7, true);
    let lines = outcome.lines.expect("lines kept");
    // One line per record: the lines and the hash cover the same events.
    assert_eq!(lines.len() as u64, outcome.records);
    for kind in [
        "send",
        "deliver",
        "drop-loss",
        "drop-partition",
        "duplicate",
        "hold",
        "release",
        "timer",
        "job-done",
        "job-failed",
        "crash",
        "restart",
        "fault",
        "deferred",
        "start",
    ] {
        let needle = format!(" {kind} ");
        assert!(
            lines.iter().any(|l| l.contains(&needle)),
            "no `{kind}` line in the trace"
        );
    }
}
