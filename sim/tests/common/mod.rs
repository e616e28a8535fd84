//! Shared test actor for the executor's integration tests: a `Probe` that records every input
//! it sees with its local time, and is driven through `Sim::invoke` to send, set timers and
//! start jobs. It owns no protocol, so each test states exactly what it does.
#![allow(dead_code)]

use serde::{Deserialize, Serialize};
use shale_actors::{Actor, Ctx, JobError, JobId, NodeId, Time, TimerId};
use shale_sim::{NetConfig, Sim, SimConfig};
use std::cell::Cell;
use std::rc::Rc;
use std::time::Duration;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Msg(pub u64);

/// Everything a probe saw, in order.
#[derive(Default)]
pub struct Probe {
    /// `(from, payload, local time)` per delivered message.
    pub got: Vec<(NodeId, u64, Time)>,
    /// `(timer id, tag, local time)` per fired timer.
    pub fired: Vec<(TimerId, u32, Time)>,
    /// `(job id, result, local time)` per finished job.
    pub jobs: Vec<(JobId, Result<u64, JobError>, Time)>,
    /// Local time of `on_start`.
    pub started_at: Option<Time>,
    /// What the factory handed this incarnation (e.g. a boot count).
    pub boot: u64,
    /// If set, answer every message `Msg(n)` with `Msg(n + 1)`, up to this payload.
    pub echo_below: Option<u64>,
}

impl Actor for Probe {
    type Msg = Msg;
    type Timer = u32;
    type JobOutput = u64;

    fn on_start(&mut self, ctx: &mut Ctx<'_, Self>) {
        self.started_at = Some(ctx.now());
    }
    fn on_msg(&mut self, from: NodeId, msg: Msg, ctx: &mut Ctx<'_, Self>) {
        self.got.push((from, msg.0, ctx.now()));
        if self.echo_below.is_some_and(|limit| msg.0 < limit) {
            ctx.send(from, Msg(msg.0 + 1));
        }
    }
    fn on_timer(&mut self, id: TimerId, tag: u32, ctx: &mut Ctx<'_, Self>) {
        self.fired.push((id, tag, ctx.now()));
    }
    fn on_job_done(&mut self, id: JobId, result: Result<u64, JobError>, ctx: &mut Ctx<'_, Self>) {
        self.jobs.push((id, result, ctx.now()));
    }
}

impl Probe {
    pub fn payloads(&self) -> Vec<u64> {
        self.got.iter().map(|(_, n, _)| *n).collect()
    }
}

pub fn ms(n: u64) -> Time {
    Time::from_millis(n)
}

/// A simulation with probes on nodes `1..=n`; each factory call bumps a shared boot counter
/// that the new incarnation records in `Probe::boot`.
pub fn probes(cfg: SimConfig, n: u64) -> (Sim<Probe>, Rc<Cell<u64>>) {
    let mut sim = Sim::new(cfg).expect("valid config");
    let boots = Rc::new(Cell::new(0));
    for i in 1..=n {
        let boots = boots.clone();
        sim.add_node(NodeId(i), move |_| {
            boots.set(boots.get() + 1);
            Probe {
                boot: boots.get(),
                ..Probe::default()
            }
        })
        .expect("fresh node id");
    }
    (sim, boots)
}

/// Probes on a lossless FIFO network with a fixed 1 ms latency.
pub fn fixed_probes(n: u64) -> Sim<Probe> {
    probes(
        SimConfig::new(1).with_net(NetConfig::fixed(Duration::from_millis(1))),
        n,
    )
    .0
}

pub fn send(sim: &mut Sim<Probe>, from: u64, to: u64, payload: u64) {
    sim.invoke(NodeId(from), |_, ctx| ctx.send(NodeId(to), Msg(payload)))
        .expect("sender is up");
}

pub fn got(sim: &Sim<Probe>, node: u64) -> Vec<u64> {
    sim.actor(NodeId(node))
        .map(Probe::payloads)
        .unwrap_or_default()
}
