//! The run loop: taking events off the queue in (time, seq) order, handing them to actors, and
//! carrying out the effects actors push.
//!
//! Owns event handling and the send path through the network model. Must not read a clock,
//! spawn a thread or use any RNG but the executor's and the nodes' seeded ones; and must not
//! format strings unless trace lines are on (it is the hot path of every simulation).

use crate::buggify::NodeHooks;
use crate::node::NodeStatus;
use crate::queue::{Event, EventKind};
use crate::trace::TraceKind;
use crate::Sim;
use rand::Rng;
use shale_actors::kernel::JobFn;
use shale_actors::{Actor, Ctx, Effect, JobError, JobId, JobSpec, NodeId, Time, TimerId};
use std::time::Duration;

impl<A: Actor> Sim<A> {
    /// Handles the next event, if any. Returns false when the queue is empty.
    pub fn step(&mut self) -> bool {
        let Some(Event { at, kind, .. }) = self.queue.pop() else {
            return false;
        };
        assert!(at >= self.now, "event at {at} is before now {}", self.now);
        self.now = at;
        self.stats.events += 1;
        self.handle(kind);
        true
    }

    /// Handles every event due at or before `until`, then moves the clock to `until`.
    pub fn run_until(&mut self, until: Time) {
        let until = until.as_nanos();
        while self.queue.peek_time().is_some_and(|at| at <= until) {
            self.step();
        }
        self.now = self.now.max(until);
    }

    /// Runs for `d` of true time from now.
    pub fn run_for(&mut self, d: Duration) {
        self.run_until(Time(self.now).plus(d));
    }

    /// Runs until nothing is left to do or `deadline` passes. Returns true if the queue
    /// drained (messages held by clogs do not count as pending). Actors with periodic timers
    /// never go quiet; give them a deadline.
    pub fn run_until_quiet(&mut self, deadline: Time) -> bool {
        self.run_until(deadline);
        self.queue.is_empty()
    }

    /// Handles events while `pred` holds, up to `deadline`. Returns true if `pred` became
    /// false, false if the deadline passed or the queue drained first.
    pub fn run_while(&mut self, deadline: Time, mut pred: impl FnMut(&Sim<A>) -> bool) -> bool {
        let deadline = deadline.as_nanos();
        loop {
            if !pred(self) {
                return true;
            }
            match self.queue.peek_time() {
                Some(at) if at <= deadline => {
                    self.step();
                }
                _ => {
                    self.now = self.now.max(deadline);
                    return !pred(self);
                }
            }
        }
    }

    fn handle(&mut self, kind: EventKind<A>) {
        // A paused node's events wait for the pause to end, in their original order.
        if let Some(target) = kind.target() {
            let paused_until = self.nodes.get(&target).map_or(0, |n| {
                if n.status == NodeStatus::Up {
                    n.paused_until
                } else {
                    0
                }
            });
            if paused_until > self.now {
                self.stats.events_deferred_pause += 1;
                self.trace
                    .record(TraceKind::Deferred, self.now, target.0, paused_until);
                self.trace.line(TraceKind::Deferred, self.now, || {
                    format!("{target} until {paused_until}")
                });
                self.queue.push(paused_until, kind);
                return;
            }
        }
        match kind {
            EventKind::Deliver { from, to, msg } => self.on_deliver(from, to, msg),
            EventKind::Timer {
                node,
                incarnation,
                id,
                timer,
            } => self.on_timer_event(node, incarnation, id, timer),
            EventKind::JobDone {
                node,
                incarnation,
                id,
                label,
                work,
                fail,
            } => self.on_job_event(node, incarnation, id, label, work, fail),
            EventKind::Fault(fault) => {
                if let Err(e) = self.apply_fault(fault) {
                    self.stats.faults_noop += 1;
                    self.trace.record(TraceKind::FaultNoop, self.now, 0, 0);
                    self.trace
                        .line(TraceKind::FaultNoop, self.now, || e.to_string());
                    tracing::debug!(error = %e, "scheduled fault did not apply");
                }
            }
            EventKind::Call(f) => {
                self.trace.record(TraceKind::Call, self.now, 0, 0);
                self.trace.line(TraceKind::Call, self.now, String::new);
                f(self);
            }
        }
    }

    fn on_deliver(&mut self, from: NodeId, to: NodeId, msg: A::Msg) {
        let up = self
            .nodes
            .get(&to)
            .is_some_and(|n| n.status == NodeStatus::Up);
        if !up {
            self.stats.messages_dropped_node_down += 1;
            self.record_msg(TraceKind::DropNodeDown, from, to, &msg);
            return;
        }
        // Checked again on arrival: a partition that began while the message was in flight
        // cuts it too.
        if self.net.is_blocked(from, to) {
            self.stats.messages_dropped_partition += 1;
            self.record_msg(TraceKind::DropPartition, from, to, &msg);
            return;
        }
        if self.net.is_clogged(from, to) {
            self.hold(from, to, msg);
            return;
        }
        self.stats.messages_delivered += 1;
        self.record_msg(TraceKind::Deliver, from, to, &msg);
        self.dispatch(to, |actor, ctx| actor.on_msg(from, msg, ctx));
    }

    fn hold(&mut self, from: NodeId, to: NodeId, msg: A::Msg) {
        if self.net.held.len() >= self.held_messages_max {
            self.stats.messages_dropped_held_overflow += 1;
            self.record_msg(TraceKind::DropHeldOverflow, from, to, &msg);
            return;
        }
        self.stats.messages_held += 1;
        self.record_msg(TraceKind::Hold, from, to, &msg);
        self.net.held.push_back(crate::net::Held { from, to, msg });
    }

    fn on_timer_event(&mut self, id: NodeId, incarnation: u64, timer_id: TimerId, timer: A::Timer) {
        let node = self
            .nodes
            .get_mut(&id)
            .expect("timers are only set by known nodes");
        // A crash purges its node's timers from the queue, so a stale one is an executor bug.
        assert_eq!(
            node.incarnation, incarnation,
            "timer outlived its incarnation"
        );
        assert_eq!(
            node.status,
            NodeStatus::Up,
            "timer of a node that is not up"
        );
        if !node.live_timers.remove(&timer_id) {
            // Cancelled: it must not fire.
            self.trace
                .record(TraceKind::TimerSkipped, self.now, id.0, timer_id.0);
            self.trace.line(TraceKind::TimerSkipped, self.now, || {
                format!("{id} t{}", timer_id.0)
            });
            return;
        }
        self.stats.timers_fired += 1;
        self.trace
            .record(TraceKind::TimerFired, self.now, id.0, timer_id.0);
        self.trace.line(TraceKind::TimerFired, self.now, || {
            format!("{id} t{} {timer:?}", timer_id.0)
        });
        self.dispatch(id, |actor, ctx| actor.on_timer(timer_id, timer, ctx));
    }

    fn on_job_event(
        &mut self,
        id: NodeId,
        incarnation: u64,
        job: JobId,
        label: &'static str,
        work: JobFn<A::JobOutput>,
        fail: bool,
    ) {
        let node = self
            .nodes
            .get(&id)
            .expect("jobs are only started by known nodes");
        assert_eq!(
            node.incarnation, incarnation,
            "job outlived its incarnation"
        );
        assert_eq!(node.status, NodeStatus::Up, "job of a node that is not up");
        let result = if fail {
            // The closure never runs: an injected failure did no work.
            drop(work);
            self.stats.jobs_failed += 1;
            self.trace
                .record(TraceKind::JobFailed, self.now, id.0, job.0);
            self.trace.line(TraceKind::JobFailed, self.now, || {
                format!("{id} j{} {label}", job.0)
            });
            Err(JobError::Injected)
        } else {
            // The closure runs now, at completion time: whatever it does to simulated storage
            // happens exactly when the actor hears about it, and a crash before this point
            // means it never happened. A panic inside it is a bug and propagates.
            let output = work();
            self.stats.jobs_completed += 1;
            self.trace.record(TraceKind::JobDone, self.now, id.0, job.0);
            self.trace.line(TraceKind::JobDone, self.now, || {
                format!("{id} j{} {label} -> {output:?}", job.0)
            });
            Ok(output)
        };
        self.dispatch(id, |actor, ctx| actor.on_job_done(job, result, ctx));
    }

    /// Calls `f` on `id`'s actor with a context at the node's local time, then carries out the
    /// effects it pushed. Returns `None` (and does nothing) if the node is not running.
    pub(crate) fn dispatch<R>(
        &mut self,
        id: NodeId,
        f: impl FnOnce(&mut A, &mut Ctx<'_, A>) -> R,
    ) -> Option<R> {
        let node = self.nodes.get_mut(&id)?;
        let now = node.local_now(self.now);
        let actor = node.actor.as_mut()?;
        let mut out = std::mem::take(&mut self.out);
        debug_assert!(out.is_empty(), "outbox is drained after every call");
        let result = {
            let mut hooks = NodeHooks {
                buggify: &mut self.buggify,
                marks: &mut self.marks,
                rng: &mut node.buggify_rng,
            };
            let mut ctx = Ctx::new(id, now, &mut node.rng, &mut node.ids, &mut out)
                .with_sim_hooks(&mut hooks);
            f(actor, &mut ctx)
        };
        for effect in out.drain(..) {
            self.apply_effect(id, effect);
        }
        // Hand the (empty, still allocated) outbox back for the next call.
        self.out = out;
        Some(result)
    }

    fn apply_effect(&mut self, me: NodeId, effect: Effect<A>) {
        match effect {
            Effect::Send { to, msg } => self.send_msg(me, to, msg),
            Effect::SetTimer { id, after, timer } => {
                let node = self
                    .nodes
                    .get_mut(&me)
                    .expect("effects come from known nodes");
                let fresh = node.live_timers.insert(id);
                assert!(fresh, "timer id {} reused within one incarnation", id.0);
                let incarnation = node.incarnation;
                self.stats.timers_set += 1;
                // A node's clock may be offset but runs at true rate, so `after` is the same
                // span of true time.
                let at = Time(self.now).plus(after).as_nanos();
                self.queue.push(
                    at,
                    EventKind::Timer {
                        node: me,
                        incarnation,
                        id,
                        timer,
                    },
                );
            }
            Effect::CancelTimer { id } => {
                let node = self
                    .nodes
                    .get_mut(&me)
                    .expect("effects come from known nodes");
                if node.live_timers.remove(&id) {
                    self.stats.timers_cancelled += 1;
                }
            }
            Effect::StartJob { id, spec, work } => self.start_job(me, id, spec, work),
        }
    }

    fn start_job(&mut self, me: NodeId, id: JobId, spec: JobSpec, work: JobFn<A::JobOutput>) {
        let node = self.nodes.get(&me).expect("effects come from known nodes");
        let (incarnation, slowdown) = (node.incarnation, node.job_slowdown);
        self.stats.jobs_started += 1;
        let estimate = Time::ZERO
            .plus(spec.estimate)
            .as_nanos()
            .saturating_mul(u64::from(slowdown));
        let jitter = self.jobs.duration_jitter;
        let duration = if jitter == 0.0 || estimate == 0 {
            estimate
        } else {
            // Float bounds are computed the same way on every run, so this stays deterministic.
            let lo = (estimate as f64 * (1.0 - jitter)) as u64;
            let hi = (estimate as f64 * (1.0 + jitter)) as u64;
            self.env_rng.gen_range(lo..=hi.max(lo))
        };
        let p = self.jobs.fail_probability;
        let fail = p > 0.0 && self.env_rng.gen_bool(p);
        let at = self.now.saturating_add(duration);
        let kind = EventKind::JobDone {
            node: me,
            incarnation,
            id,
            label: spec.label,
            work,
            fail,
        };
        self.queue.push(at, kind);
    }

    /// The send path: unknown node, partition and loss are decided now; arrival time (and a
    /// duplicate) are scheduled; partitions, crashes and clogs are checked again on arrival.
    pub(crate) fn send_msg(&mut self, from: NodeId, to: NodeId, msg: A::Msg) {
        self.stats.messages_sent += 1;
        if !self.nodes.contains_key(&to) {
            self.stats.messages_dropped_unknown_node += 1;
            self.record_msg(TraceKind::DropUnknownNode, from, to, &msg);
            return;
        }
        if self.net.is_blocked(from, to) {
            self.stats.messages_dropped_partition += 1;
            self.record_msg(TraceKind::DropPartition, from, to, &msg);
            return;
        }
        let loopback = from == to;
        let loss = self.net.cfg.loss_probability;
        if !loopback && loss > 0.0 && self.env_rng.gen_bool(loss) {
            self.stats.messages_dropped_loss += 1;
            self.record_msg(TraceKind::DropLoss, from, to, &msg);
            return;
        }
        let dup = self.net.cfg.duplicate_probability;
        if !loopback && dup > 0.0 && self.env_rng.gen_bool(dup) {
            self.stats.messages_duplicated += 1;
            let at = self.net.arrival(&mut self.env_rng, self.now, from, to);
            self.trace
                .record(TraceKind::Duplicate, self.now, from.0, to.0);
            self.trace.extra(at);
            self.trace.line(TraceKind::Duplicate, self.now, || {
                format!("{from}->{to} at {at}")
            });
            self.queue.push(
                at,
                EventKind::Deliver {
                    from,
                    to,
                    msg: msg.clone(),
                },
            );
        }
        let at = self.net.arrival(&mut self.env_rng, self.now, from, to);
        self.trace.record(TraceKind::Send, self.now, from.0, to.0);
        self.trace.extra(at);
        self.trace.line(TraceKind::Send, self.now, || {
            format!("{from}->{to} at {at}")
        });
        self.queue.push(at, EventKind::Deliver { from, to, msg });
    }

    /// Sends on every held message whose link is no longer clogged, in the order they were
    /// held, each with a fresh latency from now.
    pub(crate) fn release_held(&mut self) {
        let held = std::mem::take(&mut self.net.held);
        for h in held {
            if self.net.is_clogged(h.from, h.to) {
                self.net.held.push_back(h);
                continue;
            }
            self.stats.messages_released += 1;
            let at = self.net.arrival(&mut self.env_rng, self.now, h.from, h.to);
            self.trace
                .record(TraceKind::Release, self.now, h.from.0, h.to.0);
            self.trace.extra(at);
            self.trace.line(TraceKind::Release, self.now, || {
                format!("{}->{} at {at}", h.from, h.to)
            });
            self.queue.push(
                at,
                EventKind::Deliver {
                    from: h.from,
                    to: h.to,
                    msg: h.msg,
                },
            );
        }
    }

    #[inline]
    fn record_msg(&mut self, kind: TraceKind, from: NodeId, to: NodeId, msg: &A::Msg) {
        self.trace.record(kind, self.now, from.0, to.0);
        self.trace.payload(msg);
        if self.trace.lines_enabled() {
            self.trace
                .line(kind, self.now, || format!("{from}->{to} {msg:?}"));
        }
    }
}
