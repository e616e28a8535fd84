//! The event queue: a min-heap keyed by (true time, sequence number).
//!
//! The sequence number is assigned at push and is unique, so two events at the same instant
//! always come out in the order they were scheduled, whatever the heap's internal layout: that
//! total order is what makes a run reproducible. Must not know what events mean.

use crate::Fault;
use shale_actors::kernel::JobFn;
use shale_actors::{Actor, JobId, NodeId, TimerId};
use std::cmp::Ordering;
use std::collections::BinaryHeap;

/// A test's callback, run by the executor at a scheduled time.
pub(crate) type Call<A> = Box<dyn FnOnce(&mut crate::Sim<A>)>;

pub(crate) enum EventKind<A: Actor> {
    Deliver {
        from: NodeId,
        to: NodeId,
        msg: A::Msg,
    },
    Timer {
        node: NodeId,
        incarnation: u64,
        id: TimerId,
        timer: A::Timer,
    },
    JobDone {
        node: NodeId,
        incarnation: u64,
        id: JobId,
        label: &'static str,
        /// Runs at completion (unless `fail`), right before `on_job_done`.
        work: JobFn<A::JobOutput>,
        fail: bool,
    },
    Fault(Fault),
    Call(Call<A>),
}

impl<A: Actor> EventKind<A> {
    /// The node this event is addressed to, if any (faults and calls belong to no node).
    pub(crate) fn target(&self) -> Option<NodeId> {
        match self {
            EventKind::Deliver { to, .. } => Some(*to),
            EventKind::Timer { node, .. } | EventKind::JobDone { node, .. } => Some(*node),
            EventKind::Fault(_) | EventKind::Call(_) => None,
        }
    }
}

pub(crate) struct Event<A: Actor> {
    pub(crate) at: u64,
    pub(crate) seq: u64,
    pub(crate) kind: EventKind<A>,
}

impl<A: Actor> PartialEq for Event<A> {
    fn eq(&self, other: &Self) -> bool {
        (self.at, self.seq) == (other.at, other.seq)
    }
}
impl<A: Actor> Eq for Event<A> {}
impl<A: Actor> PartialOrd for Event<A> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl<A: Actor> Ord for Event<A> {
    /// Reversed, so that `BinaryHeap` (a max-heap) pops the earliest event first.
    fn cmp(&self, other: &Self) -> Ordering {
        (other.at, other.seq).cmp(&(self.at, self.seq))
    }
}

pub(crate) struct EventQueue<A: Actor> {
    heap: BinaryHeap<Event<A>>,
    next_seq: u64,
    len_max: usize,
}

impl<A: Actor> EventQueue<A> {
    pub(crate) fn new(len_max: usize) -> Self {
        Self {
            heap: BinaryHeap::new(),
            next_seq: 0,
            len_max,
        }
    }

    #[inline]
    pub(crate) fn push(&mut self, at: u64, kind: EventKind<A>) {
        let seq = self.next_seq;
        self.next_seq += 1;
        assert!(
            self.heap.len() < self.len_max,
            "event queue reached pending_events_max = {}: a runaway actor?",
            self.len_max
        );
        self.heap.push(Event { at, seq, kind });
    }

    #[inline]
    pub(crate) fn pop(&mut self) -> Option<Event<A>> {
        self.heap.pop()
    }

    pub(crate) fn peek_time(&self) -> Option<u64> {
        self.heap.peek().map(|e| e.at)
    }

    pub(crate) fn len(&self) -> usize {
        self.heap.len()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.heap.is_empty()
    }

    /// Drops every event `keep` refuses (used when a node crashes). The order of what remains
    /// is still fixed by (time, seq), so this cannot disturb determinism.
    pub(crate) fn retain(&mut self, keep: impl FnMut(&Event<A>) -> bool) {
        self.heap.retain(keep);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use shale_actors::{Ctx, JobError};

    struct Nop;
    impl Actor for Nop {
        type Msg = u8;
        type Timer = ();
        type JobOutput = ();
        fn on_start(&mut self, _: &mut Ctx<'_, Self>) {}
        fn on_msg(&mut self, _: NodeId, _: u8, _: &mut Ctx<'_, Self>) {}
        fn on_timer(&mut self, _: TimerId, _: (), _: &mut Ctx<'_, Self>) {}
        fn on_job_done(&mut self, _: JobId, _: Result<(), JobError>, _: &mut Ctx<'_, Self>) {}
    }

    fn deliver(tag: u8) -> EventKind<Nop> {
        EventKind::Deliver {
            from: NodeId(0),
            to: NodeId(1),
            msg: tag,
        }
    }

    #[test]
    fn earliest_first_and_ties_in_push_order() {
        let mut q: EventQueue<Nop> = EventQueue::new(100);
        for (at, tag) in [(5, 1), (3, 2), (5, 3), (3, 4), (5, 5), (0, 6)] {
            q.push(at, deliver(tag));
        }
        let mut order = Vec::new();
        while let Some(ev) = q.pop() {
            let EventKind::Deliver { msg, .. } = ev.kind else {
                panic!("only deliveries")
            };
            order.push((ev.at, msg));
        }
        assert_eq!(order, vec![(0, 6), (3, 2), (3, 4), (5, 1), (5, 3), (5, 5)]);
    }

    #[test]
    #[should_panic(expected = "pending_events_max")]
    fn a_runaway_queue_is_stopped() {
        let mut q: EventQueue<Nop> = EventQueue::new(2);
        for i in 0..3 {
            q.push(i, deliver(0));
        }
    }
}
