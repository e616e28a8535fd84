//! The [`Sim`] executor's state and its outward API: building a run, adding nodes, feeding in
//! messages and scheduled faults, and inspecting actors, counters and the trace.
//!
//! The run loop and event handling live in `exec.rs`; fault application (crash, restart,
//! partitions, clogs, clocks) in `inject.rs`. This file must not process events itself.

use crate::net::Network;
use crate::node::{env_rng, CrashHook, Node, NodeStatus};
use crate::queue::{EventKind, EventQueue};
use crate::trace::{Trace, TraceKind};
use crate::{Buggify, Fault, JobConfig, Marks, NetConfig, SimConfig, SimError, Stats};
use rand_chacha::ChaCha8Rng;
use shale_actors::{Actor, Ctx, Effect, NodeId, Time};
use std::collections::BTreeMap;

/// A single-threaded, seeded discrete-event executor over actors of one type `A` (a cluster of
/// different roles uses an enum actor).
///
/// True time starts at `SimConfig::start_time` and only moves when an event is taken off the
/// queue. Every random choice comes from ChaCha8 generators derived from `SimConfig::seed`, and
/// every collection is ordered, so one seed always yields the same run, event for event.
pub struct Sim<A: Actor> {
    pub(crate) seed: u64,
    pub(crate) now: u64,
    pub(crate) queue: EventQueue<A>,
    pub(crate) nodes: BTreeMap<NodeId, Node<A>>,
    pub(crate) net: Network<A::Msg>,
    pub(crate) jobs: JobConfig,
    /// The executor's own randomness: latency, loss, duplication, job durations and failures,
    /// crash hooks. Actors draw from their node's RNG instead.
    pub(crate) env_rng: ChaCha8Rng,
    pub(crate) trace: Trace,
    pub(crate) stats: Stats,
    pub(crate) buggify: Buggify,
    pub(crate) marks: Marks,
    pub(crate) held_messages_max: usize,
    /// Reused outbox for every actor call, so handling an event does not allocate.
    pub(crate) out: Vec<Effect<A>>,
}

impl<A: Actor> Sim<A> {
    pub fn new(cfg: SimConfig) -> Result<Self, SimError> {
        cfg.validate()?;
        Ok(Self {
            seed: cfg.seed,
            now: cfg.start_time.as_nanos(),
            queue: EventQueue::new(cfg.pending_events_max),
            nodes: BTreeMap::new(),
            net: Network::new(cfg.net),
            jobs: cfg.jobs,
            env_rng: env_rng(cfg.seed),
            trace: Trace::new(&cfg.trace),
            stats: Stats::default(),
            buggify: Buggify::new(cfg.seed, cfg.buggify.clone()),
            marks: Marks::new(),
            held_messages_max: cfg.held_messages_max,
            out: Vec::with_capacity(16),
        })
    }

    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// True (unskewed) simulated time.
    pub fn now(&self) -> Time {
        Time(self.now)
    }

    /// What `ctx.now()` would read on `id` right now (true time plus its clock offset).
    pub fn local_now(&self, id: NodeId) -> Option<Time> {
        self.nodes.get(&id).map(|n| n.local_now(self.now))
    }

    /// Adds a node, builds its first incarnation with `factory` and calls `on_start` at once.
    /// The factory is kept and called again on every restart.
    pub fn add_node(
        &mut self,
        id: NodeId,
        factory: impl FnMut(NodeId) -> A + 'static,
    ) -> Result<(), SimError> {
        if self.nodes.contains_key(&id) {
            return Err(SimError::DuplicateNode(id));
        }
        self.nodes
            .insert(id, Node::new(self.seed, id, Box::new(factory)));
        self.boot(id, TraceKind::Start);
        Ok(())
    }

    /// Sets the hook called when `id` crashes or stops (e.g. a simulated disk dropping its
    /// unsynced writes). Replaces any earlier hook.
    pub fn set_crash_hook(
        &mut self,
        id: NodeId,
        hook: impl FnMut(NodeId, &mut ChaCha8Rng) + 'static,
    ) -> Result<(), SimError> {
        let node = self.nodes.get_mut(&id).ok_or(SimError::UnknownNode(id))?;
        node.crash_hook = Some(Box::new(hook) as CrashHook);
        Ok(())
    }

    pub fn node_ids(&self) -> impl Iterator<Item = NodeId> + '_ {
        self.nodes.keys().copied()
    }

    pub fn status(&self, id: NodeId) -> Option<NodeStatus> {
        self.nodes.get(&id).map(|n| n.status)
    }

    /// The running actor on `id`; `None` if the node is unknown, crashed or stopped.
    pub fn actor(&self, id: NodeId) -> Option<&A> {
        self.nodes.get(&id).and_then(|n| n.actor.as_ref())
    }

    /// Runs `f` on a running actor as if it were handling an event now: it gets a real
    /// [`Ctx`] and its effects are carried out. This is how a test drives a client actor
    /// ("start the workload") without a message type for it.
    pub fn invoke<R>(
        &mut self,
        id: NodeId,
        f: impl FnOnce(&mut A, &mut Ctx<'_, A>) -> R,
    ) -> Result<R, SimError> {
        match self.status(id) {
            None => Err(SimError::UnknownNode(id)),
            Some(NodeStatus::Up) => Ok(self
                .dispatch(id, f)
                .expect("an Up node always has an actor")),
            Some(NodeStatus::Down) => Err(SimError::NodeNotUp(id)),
            Some(NodeStatus::Stopped) => Err(SimError::NodeStopped(id)),
        }
    }

    /// Sends `msg` from `from` (which need not be a node: a test may play a client) to `to`
    /// through the simulated network, with all its faults.
    pub fn send_external(&mut self, from: NodeId, to: NodeId, msg: A::Msg) {
        self.send_msg(from, to, msg);
    }

    /// Applies `fault` at true time `at` (now, if `at` is in the past). Faults scheduled for
    /// the same instant apply in the order they were scheduled.
    pub fn schedule(&mut self, at: Time, fault: Fault) -> Result<(), SimError> {
        fault.validate()?;
        let at = at.as_nanos().max(self.now);
        self.queue.push(at, EventKind::Fault(fault));
        Ok(())
    }

    /// Runs `f` on the executor at true time `at` (now, if in the past): for scenario steps
    /// that are not environment faults, such as starting a workload or checking an invariant.
    pub fn schedule_call(&mut self, at: Time, f: impl FnOnce(&mut Sim<A>) + 'static) {
        let at = at.as_nanos().max(self.now);
        self.queue.push(at, EventKind::Call(Box::new(f)));
    }

    pub fn net_config(&self) -> &NetConfig {
        &self.net.cfg
    }

    pub fn job_config(&self) -> &JobConfig {
        &self.jobs
    }

    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// Buggify points reached so far: which were enabled and how often each fired.
    pub fn buggify(&self) -> &Buggify {
        &self.buggify
    }

    /// No buggify point fires from now on (see [`Buggify::quiesce`]).
    pub fn quiesce_buggify(&mut self) {
        self.buggify.quiesce();
    }

    /// Coverage marks hit so far by any node's actor.
    pub fn marks(&self) -> &Marks {
        &self.marks
    }

    /// Running FNV-1a hash of every event so far. Same seed and same inputs give the same hash.
    pub fn trace_hash(&self) -> u64 {
        self.trace.hash()
    }

    /// Number of events folded into the trace hash.
    pub fn trace_records(&self) -> u64 {
        self.trace.records()
    }

    /// One line per event, if `TraceConfig::keep_lines` was set.
    pub fn trace_lines(&self) -> Option<&[String]> {
        self.trace.lines()
    }

    /// True if `TraceConfig::lines_max` cut the lines short (the hash still covers everything).
    pub fn trace_truncated(&self) -> bool {
        self.trace.truncated()
    }

    /// Events waiting in the queue (messages in flight, timers, jobs, scheduled faults).
    pub fn pending_events(&self) -> usize {
        self.queue.len()
    }

    /// Messages parked by clogs.
    pub fn held_messages(&self) -> usize {
        self.net.held.len()
    }

    /// Directed links currently cut by partitions.
    pub fn partitioned_links(&self) -> usize {
        self.net.partitioned_links()
    }

    /// Builds a fresh incarnation of `id` through its factory and calls `on_start`.
    pub(crate) fn boot(&mut self, id: NodeId, kind: TraceKind) {
        let node = self
            .nodes
            .get_mut(&id)
            .expect("boot is only called for known nodes");
        assert_eq!(node.status, NodeStatus::Down, "only a down node boots");
        assert!(node.actor.is_none(), "a down node holds no actor");
        assert!(node.live_timers.is_empty(), "a crash clears the timers");
        let actor = (node.factory)(id);
        node.actor = Some(actor);
        node.ids = shale_actors::kernel::IdGen::new();
        node.status = NodeStatus::Up;
        let incarnation = node.incarnation;
        if kind == TraceKind::Restart {
            self.stats.restarts += 1;
        }
        self.trace.record(kind, self.now, id.0, incarnation);
        self.trace
            .line(kind, self.now, || format!("{id} incarnation {incarnation}"));
        tracing::debug!(node = %id, incarnation, "node {}", kind.name());
        self.dispatch(id, |actor, ctx| actor.on_start(ctx));
    }
}
