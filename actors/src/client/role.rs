//! The simulated client role: a [`Client`] whose completions are kept as a history (operation,
//! call time, return time, result) for the linearizability and lost-write checkers.
//!
//! Must not: decide what to run (the test or workload does, through [`ClientRole::start`]).

use super::core::{Client, ClientTimer};
use super::ops::{ClientError, Completion, OpId, OpInput};
use super::ClientConfig;
use crate::kernel::{Actor, Ctx, JobError, JobId, NodeId, TimerId};
use crate::proto::ClusterMsg;

pub struct ClientRole {
    client: Client,
    history: Vec<Completion>,
    /// Completions kept; past it the oldest half is dropped (and counted).
    history_len_max: usize,
    history_dropped: u64,
}

impl ClientRole {
    pub fn new(config: ClientConfig, history_len_max: usize) -> Self {
        Self {
            client: Client::new(config),
            history: Vec::new(),
            history_len_max: history_len_max.max(1),
            history_dropped: 0,
        }
    }

    pub fn client(&self) -> &Client {
        &self.client
    }
    pub fn history(&self) -> &[Completion] {
        &self.history
    }
    pub fn history_dropped(&self) -> u64 {
        self.history_dropped
    }
    /// Operations started and not yet finished.
    pub fn in_flight(&self) -> usize {
        self.client.ops_in_flight()
    }

    /// Start an operation through a context lent by the embedding actor.
    pub fn start(
        &mut self,
        input: OpInput,
        ctx: &mut Ctx<'_, Client>,
    ) -> Result<OpId, ClientError> {
        let r = self.client.start(input, ctx);
        self.collect();
        r
    }

    fn collect(&mut self) {
        let done = self.client.take_completions();
        if done.is_empty() {
            return;
        }
        if self.history.len() + done.len() > self.history_len_max {
            let drop = (self.history.len() / 2).max(done.len());
            let drop = drop.min(self.history.len());
            self.history.drain(..drop);
            self.history_dropped += drop as u64;
        }
        self.history.extend(done);
    }
}

/// The role runs its client's handlers through a nested context, so it is an actor of the
/// same shape as the client.
impl Actor for ClientRole {
    type Msg = ClusterMsg;
    type Timer = ClientTimer;
    type JobOutput = ();

    fn on_start(&mut self, ctx: &mut Ctx<'_, Self>) {
        ctx.nest(|m| m, |t| t, |o| o, |c| self.client.on_start(c));
    }
    fn on_msg(&mut self, from: NodeId, msg: ClusterMsg, ctx: &mut Ctx<'_, Self>) {
        ctx.nest(|m| m, |t| t, |o| o, |c| self.client.on_msg(from, msg, c));
        self.collect();
    }
    fn on_timer(&mut self, id: TimerId, timer: ClientTimer, ctx: &mut Ctx<'_, Self>) {
        ctx.nest(|m| m, |t| t, |o| o, |c| self.client.on_timer(id, timer, c));
        self.collect();
    }
    fn on_job_done(&mut self, _id: JobId, _r: Result<(), JobError>, _ctx: &mut Ctx<'_, Self>) {}
}
