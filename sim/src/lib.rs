//! Shale's deterministic simulator: a single-threaded, seeded discrete-event executor that runs
//! any [`shale_actors::Actor`]s over a simulated network, with crashes, restarts, clock skew,
//! pauses and failing jobs, and records a reproducible trace.
//!
//! Code map:
//! - `sim.rs`: [`Sim`], its state and outward API (nodes, external input, inspection).
//! - `exec.rs`: the run loop, event handling, effects and the send path.
//! - `inject.rs`: applying [`Fault`]s (crash/restart/stop, partitions, clogs, clocks, pauses).
//! - `net.rs`, `node.rs`, `queue.rs`: network model state, per-node state, the event queue.
//! - `trace.rs`: the FNV-1a trace hash and optional lines. `stats.rs`: counters.
//! - `config.rs`, `fault.rs`, `error.rs`: plain data and errors.
//! - `buggify.rs`, `marks.rs`: code-level fault points and coverage marks that actors reach
//!   through `ctx.buggify` / `ctx.mark`; per run, never global.
//! - `check/`: checkers over recorded histories and states (linearizability, lost writes, key
//!   coverage, state transitions). `scenario/`: the scenario file format and workload generator.
//! - `cluster/`: the cluster runner: the real meta store, masters, tablet nodes and clients in
//!   the executor, driven by a workload and faults, judged by `check/`.
//! - `run/`: the scenario runner: a scenario file and a seed onto `cluster/`, with its fault
//!   schedule, triggers, report, structured trace and shrinker (what `shale sim` calls).
//!
//! Semantics worth knowing:
//! - Events are ordered by (true time, sequence number); ties resolve in scheduling order.
//! - A job's closure runs at its completion time, just before `on_job_done`; an injected
//!   failure or a crash means it never runs. A panicking closure is a bug and propagates.
//! - A crash drops the node's timers, jobs and the messages in flight or held for it, then
//!   runs its crash hook. Messages the node already sent are still delivered.
//! - Self-sends are loopback: no latency, loss, duplication, partition or clog.
//!
//! ```
//! use serde::{Deserialize, Serialize};
//! use shale_actors::{Actor, Ctx, JobError, JobId, NodeId, TimerId};
//! use shale_sim::{Fault, NetConfig, Sim, SimConfig, Time};
//! use std::time::Duration;
//!
//! #[derive(Default)]
//! struct Counter { seen: u64 }
//! #[derive(Clone, Debug, Serialize, Deserialize)]
//! struct Hello;
//!
//! impl Actor for Counter {
//!     type Msg = Hello;
//!     type Timer = ();
//!     type JobOutput = ();
//!     fn on_start(&mut self, _: &mut Ctx<'_, Self>) {}
//!     fn on_msg(&mut self, _: NodeId, _: Hello, _: &mut Ctx<'_, Self>) { self.seen += 1 }
//!     fn on_timer(&mut self, _: TimerId, _: (), _: &mut Ctx<'_, Self>) {}
//!     fn on_job_done(&mut self, _: JobId, _: Result<(), JobError>, _: &mut Ctx<'_, Self>) {}
//! }
//!
//! let cfg = SimConfig::new(7).with_net(NetConfig::fixed(Duration::from_millis(1)));
//! let mut sim: Sim<Counter> = Sim::new(cfg)?;
//! sim.add_node(NodeId(1), |_| Counter::default())?;
//! sim.schedule(Time::from_millis(10), Fault::Crash(NodeId(1)))?;
//! sim.send_external(NodeId(99), NodeId(1), Hello);
//! sim.run_until(Time::from_millis(5));
//! assert_eq!(sim.actor(NodeId(1)).map(|c| c.seen), Some(1));
//! sim.run_until(Time::from_millis(20));
//! assert!(sim.actor(NodeId(1)).is_none());
//! sim.restart(NodeId(1))?;
//! assert_eq!(sim.stats().restarts, 1);
//! # Ok::<(), shale_sim::SimError>(())
//! ```
//!
//! Architecture invariant: no async, no threads, no wall clock, no global RNG, no hash-ordered
//! iteration. The same seed and the same calls give a byte-identical trace.
#![deny(clippy::unwrap_used)]

mod buggify;
pub mod check;
pub mod cluster;
mod config;
mod error;
mod exec;
mod fault;
mod inject;
mod marks;
mod net;
mod node;
mod queue;
pub mod run;
pub mod scenario;
mod sim;
mod stats;
mod trace;

pub use buggify::{Buggify, BuggifyConfig, PointStats};
pub use config::{JobConfig, NetConfig, SimConfig, TraceConfig};
pub use error::SimError;
pub use fault::Fault;
pub use marks::{MarkSweep, MarkTally, Marks, UnhitMarks};
pub use node::{CrashHook, Factory, NodeStatus};
pub use sim::Sim;
pub use stats::Stats;
pub use trace::{Fnv64, TraceKind};

pub use shale_actors::{NodeId, Time};
