//! Applying environment faults: node crash, restart and stop; partitions and heal; clogs;
//! clock offsets; pauses; and swapping the network or job model at runtime.
//!
//! Every fault goes through [`Sim::apply_fault`], whether a test calls it now or the queue
//! delivers a scheduled one, so each is traced the same way. Must not call actors except
//! through `boot` (restart) and must not decide *when* faults happen: tests and scenarios do.

use crate::node::NodeStatus;
use crate::queue::EventKind;
use crate::trace::TraceKind;
use crate::{Fault, JobConfig, NetConfig, Sim, SimError};
use shale_actors::{Actor, NodeId};
use std::time::Duration;

impl<A: Actor> Sim<A> {
    /// Applies `fault` now. Errors name a caller mistake (unknown node, restarting a running
    /// one, a bad config); the run itself is unchanged by a failed call.
    pub fn apply_fault(&mut self, fault: Fault) -> Result<(), SimError> {
        fault.validate()?;
        self.check_fault(&fault)?;
        self.stats.faults_applied += 1;
        self.trace.record(TraceKind::Fault, self.now, 0, 0);
        self.trace.payload(&fault);
        self.trace
            .line(TraceKind::Fault, self.now, || format!("{fault:?}"));
        tracing::debug!(?fault, at = self.now, "fault");
        match fault {
            Fault::Crash(id) => self.crash_node(id),
            Fault::Restart(id) => self.boot(id, TraceKind::Restart),
            Fault::Reboot(id) => {
                self.crash_node(id);
                self.boot(id, TraceKind::Restart);
            }
            Fault::Stop(id) => {
                if self.node_status(id) == NodeStatus::Up {
                    self.crash_node(id);
                }
                self.stats.stops += 1;
                self.nodes.get_mut(&id).expect("checked").status = NodeStatus::Stopped;
                self.trace.record(TraceKind::Stop, self.now, id.0, 0);
                self.trace
                    .line(TraceKind::Stop, self.now, || id.to_string());
            }
            Fault::Partition { a, b } => {
                self.net.block(&a, &b);
                self.net.block(&b, &a);
            }
            Fault::PartitionOneWay { from, to } => self.net.block(&from, &to),
            Fault::Heal => self.net.heal(),
            Fault::Clog(id) => self.net.clog_node(id),
            Fault::Unclog(id) => {
                self.net.unclog_node(id);
                self.release_held();
            }
            Fault::ClogLink { from, to } => self.net.clog_link(from, to),
            Fault::UnclogLink { from, to } => {
                self.net.unclog_link(from, to);
                self.release_held();
            }
            Fault::UnclogAll => {
                self.net.unclog_all();
                self.release_held();
            }
            Fault::SetClockOffset { node, offset_ns } => {
                self.nodes.get_mut(&node).expect("checked").clock_offset_ns = offset_ns;
            }
            Fault::Pause { node, duration } => {
                let until = crate::Time(self.now).plus(duration).as_nanos();
                let n = self.nodes.get_mut(&node).expect("checked");
                n.paused_until = n.paused_until.max(until);
            }
            Fault::SetNet(net) => self.net.cfg = net,
            Fault::SetJobs(jobs) => self.jobs = jobs,
            Fault::SlowJobs { node, factor } => {
                self.nodes.get_mut(&node).expect("checked").job_slowdown = factor;
            }
        }
        Ok(())
    }

    /// Refuses a fault that cannot apply, before anything changes.
    fn check_fault(&self, fault: &Fault) -> Result<(), SimError> {
        let known = |id: NodeId| -> Result<NodeStatus, SimError> {
            self.nodes
                .get(&id)
                .map(|n| n.status)
                .ok_or(SimError::UnknownNode(id))
        };
        match fault {
            Fault::Crash(id) | Fault::Reboot(id) | Fault::Pause { node: id, .. } => {
                match known(*id)? {
                    NodeStatus::Up => Ok(()),
                    NodeStatus::Down => Err(SimError::NodeNotUp(*id)),
                    NodeStatus::Stopped => Err(SimError::NodeStopped(*id)),
                }
            }
            Fault::Restart(id) => match known(*id)? {
                NodeStatus::Down => Ok(()),
                NodeStatus::Up => Err(SimError::NodeUp(*id)),
                NodeStatus::Stopped => Err(SimError::NodeStopped(*id)),
            },
            Fault::Stop(id) => match known(*id)? {
                NodeStatus::Stopped => Err(SimError::NodeStopped(*id)),
                _ => Ok(()),
            },
            Fault::SetClockOffset { node, .. } | Fault::SlowJobs { node, .. } => {
                known(*node).map(|_| ())
            }
            // Partitions and clogs may name ids that are not nodes (e.g. an external client).
            _ => Ok(()),
        }
    }

    fn node_status(&self, id: NodeId) -> NodeStatus {
        self.nodes.get(&id).expect("checked before use").status
    }

    /// Kills a running node: drops its actor, its timers and jobs, the messages in flight or
    /// held for it; then runs the crash hook. Messages it already sent stay on the wire.
    fn crash_node(&mut self, id: NodeId) {
        let (mut msgs, mut timers, mut jobs) = (0u64, 0u64, 0u64);
        self.queue.retain(|ev| match &ev.kind {
            EventKind::Deliver { to, .. } if *to == id => {
                msgs += 1;
                false
            }
            EventKind::Timer { node, .. } if *node == id => {
                timers += 1;
                false
            }
            EventKind::JobDone { node, .. } if *node == id => {
                jobs += 1;
                false
            }
            _ => true,
        });
        let held_before = self.net.held.len();
        self.net.held.retain(|h| h.to != id);
        msgs += (held_before - self.net.held.len()) as u64;
        self.stats.crashes += 1;
        self.stats.messages_dropped_node_down += msgs;
        self.stats.timers_dropped_crash += timers;
        self.stats.jobs_dropped_crash += jobs;

        let node = self.nodes.get_mut(&id).expect("checked before crash");
        assert_eq!(node.status, NodeStatus::Up, "only a running node crashes");
        node.status = NodeStatus::Down;
        node.actor = None;
        node.live_timers.clear();
        node.paused_until = 0;
        node.incarnation += 1;
        // The hook sees the crash before anything can restart the node, so a simulated disk
        // has already forgotten its unsynced data when the factory next reads it.
        if let Some(hook) = node.crash_hook.as_mut() {
            hook(id, &mut self.env_rng);
        }
        self.trace.record(TraceKind::Crash, self.now, id.0, msgs);
        self.trace.extra(timers);
        self.trace.extra(jobs);
        self.trace.line(TraceKind::Crash, self.now, || {
            format!("{id} dropped {msgs} messages, {timers} timers, {jobs} jobs")
        });
    }

    pub fn crash(&mut self, id: NodeId) -> Result<(), SimError> {
        self.apply_fault(Fault::Crash(id))
    }

    pub fn restart(&mut self, id: NodeId) -> Result<(), SimError> {
        self.apply_fault(Fault::Restart(id))
    }

    /// Crash and restart at once.
    pub fn reboot(&mut self, id: NodeId) -> Result<(), SimError> {
        self.apply_fault(Fault::Reboot(id))
    }

    /// Crash (if running) and refuse any later restart.
    pub fn stop(&mut self, id: NodeId) -> Result<(), SimError> {
        self.apply_fault(Fault::Stop(id))
    }

    /// Cut every link between `a` and `b`, both ways.
    pub fn partition(&mut self, a: &[NodeId], b: &[NodeId]) {
        let fault = Fault::Partition {
            a: a.to_vec(),
            b: b.to_vec(),
        };
        self.apply_fault(fault).expect("partitions always apply");
    }

    /// Cut every link from `from` to `to`; the reverse direction still flows.
    pub fn partition_one_way(&mut self, from: &[NodeId], to: &[NodeId]) {
        let fault = Fault::PartitionOneWay {
            from: from.to_vec(),
            to: to.to_vec(),
        };
        self.apply_fault(fault).expect("partitions always apply");
    }

    /// Remove every partition.
    pub fn heal(&mut self) {
        self.apply_fault(Fault::Heal).expect("heal always applies");
    }

    /// Remove every partition and every clog (held messages are sent on): the start of a
    /// liveness phase.
    pub fn heal_all(&mut self) {
        self.heal();
        self.unclog_all();
    }

    /// Hold every message to or from `id` until it is unclogged.
    pub fn clog(&mut self, id: NodeId) {
        self.apply_fault(Fault::Clog(id))
            .expect("clogs always apply");
    }

    pub fn unclog(&mut self, id: NodeId) {
        self.apply_fault(Fault::Unclog(id))
            .expect("unclogs always apply");
    }

    /// Hold messages on the directed link `from -> to`.
    pub fn clog_link(&mut self, from: NodeId, to: NodeId) {
        self.apply_fault(Fault::ClogLink { from, to })
            .expect("clogs always apply");
    }

    pub fn unclog_link(&mut self, from: NodeId, to: NodeId) {
        self.apply_fault(Fault::UnclogLink { from, to })
            .expect("unclogs always apply");
    }

    pub fn unclog_all(&mut self) {
        self.apply_fault(Fault::UnclogAll)
            .expect("unclogs always apply");
    }

    /// `id`'s clock reads true time plus `offset_ns` from now on (negative is behind).
    pub fn set_clock_offset(&mut self, id: NodeId, offset_ns: i64) -> Result<(), SimError> {
        self.apply_fault(Fault::SetClockOffset {
            node: id,
            offset_ns,
        })
    }

    /// `id` handles nothing for `duration`; what arrives meanwhile waits, in order.
    pub fn pause(&mut self, id: NodeId, duration: Duration) -> Result<(), SimError> {
        self.apply_fault(Fault::Pause { node: id, duration })
    }

    pub fn set_net(&mut self, net: NetConfig) -> Result<(), SimError> {
        self.apply_fault(Fault::SetNet(net))
    }

    pub fn set_jobs(&mut self, jobs: JobConfig) -> Result<(), SimError> {
        self.apply_fault(Fault::SetJobs(jobs))
    }
}
