//! The client actor a TCP host runs: the I/O-free client core (`shale_actors::client::Client`:
//! location cache, retries with backoff, batches and scans across tablets) plus the table of
//! callers waiting for each operation, and the peer book that turns the meta store's answers
//! into dialable addresses.
//!
//! Must not: retry or reinterpret results (the core owns that), or block: callers wait on
//! their own oneshot channel, outside the host loop.

use crate::peers::PeerBook;
use shale_actors::client::{Client, ClientConfig, ClientTimer, OpId, OpInput, OpResult};
use shale_actors::proto::ClusterMsg;
use shale_actors::{Actor, Ctx, JobError, JobId, NodeId, TimerId};
use shale_net::HostHandle;
use std::collections::HashMap;
use tokio::sync::oneshot;

pub(crate) type Waiter = oneshot::Sender<OpResult>;

pub struct ClientActor {
    core: Client,
    book: PeerBook,
    /// One entry per operation in flight; bounded by the core's `ops_in_flight_max`.
    waiters: HashMap<OpId, Waiter>,
}

impl ClientActor {
    pub(crate) fn new(config: ClientConfig, handle: HostHandle<ClusterMsg>) -> Self {
        Self {
            core: Client::new(config),
            book: PeerBook::new(handle),
            waiters: HashMap::new(),
        }
    }

    /// Start `input` and answer `done` when it finishes (at once if it is refused).
    pub(crate) fn start(&mut self, input: OpInput, done: Waiter, ctx: &mut Ctx<'_, Self>) {
        let core = &mut self.core;
        match ctx.nest(|m| m, |t| t, |o| o, |c| core.start(input, c)) {
            Ok(id) => {
                self.waiters.insert(id, done);
            }
            Err(e) => {
                // The caller may have stopped waiting; nothing else to do.
                let _ = done.send(OpResult::Failed(e));
            }
        }
        self.deliver();
    }

    pub fn ops_in_flight(&self) -> usize {
        self.core.ops_in_flight()
    }

    fn deliver(&mut self) {
        for c in self.core.take_completions() {
            if let Some(tx) = self.waiters.remove(&c.op) {
                let _ = tx.send(c.result);
            }
        }
    }
}

impl Actor for ClientActor {
    type Msg = ClusterMsg;
    type Timer = ClientTimer;
    type JobOutput = ();

    fn on_start(&mut self, ctx: &mut Ctx<'_, Self>) {
        let core = &mut self.core;
        ctx.nest(|m| m, |t| t, |o| o, |c| core.on_start(c));
    }
    fn on_msg(&mut self, from: NodeId, msg: ClusterMsg, ctx: &mut Ctx<'_, Self>) {
        self.book.learn(&msg);
        let core = &mut self.core;
        ctx.nest(|m| m, |t| t, |o| o, |c| core.on_msg(from, msg, c));
        self.deliver();
    }
    fn on_timer(&mut self, id: TimerId, timer: ClientTimer, ctx: &mut Ctx<'_, Self>) {
        let core = &mut self.core;
        ctx.nest(|m| m, |t| t, |o| o, |c| core.on_timer(id, timer, c));
        self.deliver();
    }
    fn on_job_done(&mut self, _id: JobId, _r: Result<(), JobError>, _ctx: &mut Ctx<'_, Self>) {}
}
