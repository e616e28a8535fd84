//! Executor throughput: simulated events per second of wall time for a trivial ping-pong actor.
//!
//! Run with `cargo bench -p shale-sim`. Wall-clock time is read here only to measure; the
//! simulation itself never sees it. Prints one line per configuration.
#![allow(clippy::disallowed_types, clippy::disallowed_methods)]

use serde::{Deserialize, Serialize};
use shale_actors::{Actor, Ctx, JobError, JobId, NodeId, TimerId};
use shale_sim::{NetConfig, Sim, SimConfig};
use std::time::{Duration, Instant};

/// Node 1 keeps `window` pings in flight to node 2; every pong triggers the next ping. With
/// `tick`, it also sends a fresh ping on a periodic timer, so a lossy network cannot starve it.
struct Ping {
    peer: NodeId,
    window: u32,
    tick: Option<Duration>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
enum Msg {
    Ping(u64),
    Pong(u64),
}

impl Actor for Ping {
    type Msg = Msg;
    type Timer = ();
    type JobOutput = ();

    fn on_start(&mut self, ctx: &mut Ctx<'_, Self>) {
        for i in 0..self.window {
            ctx.send(self.peer, Msg::Ping(u64::from(i)));
        }
        if let Some(tick) = self.tick {
            ctx.set_timer(tick, ());
        }
    }
    fn on_msg(&mut self, from: NodeId, msg: Msg, ctx: &mut Ctx<'_, Self>) {
        match msg {
            Msg::Ping(n) => ctx.send(from, Msg::Pong(n)),
            Msg::Pong(n) => ctx.send(from, Msg::Ping(n + 1)),
        }
    }
    fn on_timer(&mut self, _: TimerId, _: (), ctx: &mut Ctx<'_, Self>) {
        ctx.send(self.peer, Msg::Ping(0));
        if let Some(tick) = self.tick {
            ctx.set_timer(tick, ());
        }
    }
    fn on_job_done(&mut self, _: JobId, _: Result<(), JobError>, _: &mut Ctx<'_, Self>) {}
}

fn run(label: &str, cfg: SimConfig, window: u32, tick: Option<Duration>, events: u64) {
    let mut sim: Sim<Ping> = Sim::new(cfg).expect("valid config");
    let peer = NodeId(1);
    sim.add_node(NodeId(2), move |_| Ping {
        peer,
        window: 0,
        tick: None,
    })
    .expect("new node");
    let peer = NodeId(2);
    sim.add_node(NodeId(1), move |_| Ping { peer, window, tick })
        .expect("new node");
    let start = Instant::now();
    while sim.stats().events < events {
        if !sim.step() {
            break;
        }
    }
    let wall = start.elapsed();
    let done = sim.stats().events;
    let rate = done as f64 / wall.as_secs_f64();
    println!(
        "{label:<50} {done:>10} events in {:>7.3}s = {:>12.0} events/s (sim time {}, hash {:016x})",
        wall.as_secs_f64(),
        rate,
        sim.now(),
        sim.trace_hash()
    );
}

fn main() {
    // `cargo test --benches` passes `--bench`-less args; keep that run short.
    let quick = !std::env::args().any(|a| a == "--bench");
    let events = if quick { 20_000 } else { 5_000_000 };
    let random = NetConfig {
        latency_min: Duration::from_micros(100),
        latency_max: Duration::from_millis(2),
        ..NetConfig::default()
    };
    let fixed = NetConfig::fixed(Duration::from_millis(1));
    run(
        "ping, fixed latency, window 1",
        SimConfig::new(1).with_net(fixed),
        1,
        None,
        events,
    );
    let cfg = SimConfig::new(1).with_net(random.clone());
    run("ping, random latency, window 100", cfg, 100, None, events);
    let mut unhashed = SimConfig::new(1).with_net(random.clone());
    unhashed.trace.hash_payloads = false;
    run(
        "ping, random latency, no payload hash, window 100",
        unhashed,
        100,
        None,
        events,
    );
    // Timers keep traffic going while 1% of messages are lost and 1% duplicated.
    let faulty = NetConfig {
        loss_probability: 0.01,
        duplicate_probability: 0.01,
        ..random
    };
    let tick = Some(Duration::from_micros(20));
    run(
        "ping + 20us timer, 1% loss and dup, window 100",
        SimConfig::new(1).with_net(faulty),
        100,
        tick,
        events,
    );
}
