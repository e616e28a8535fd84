//! The actor kernel: the [`Actor`] trait, the [`Ctx`] it acts through, and the typed ids.
//!
//! An actor is a deterministic state machine. It reacts to four kinds of input
//! (`on_start`, `on_msg`, `on_timer`, `on_job_done`) and pushes [`Effect`]s into the context's
//! outbox; a host (the simulator or the async host) carries the effects out. Slow disk work is a
//! *job*: a closure the host runs off the actor's turn, whose result comes back as an event. The
//! simulator may delay, reorder or fail jobs, so actors must handle `Err(JobError)`.
//!
//! Must not: read clocks, spawn threads, open sockets or use the global RNG.

mod ctx;
mod hooks;
mod ids;

pub use ctx::{Ctx, Effect, IdGen, JobFn};
pub use hooks::{SimHooks, HOOKS_COMPILED};
pub use ids::{Addr, Epoch, JobId, NodeId, Time, TimerId};

use serde::{de::DeserializeOwned, Serialize};
use std::fmt::Debug;
use std::time::Duration;

/// A state machine run by a host. All its inputs are events; all its outputs are effects.
pub trait Actor: Sized + 'static {
    /// Messages exchanged between actors of this system. They cross the network in
    /// production, so they must serialize.
    type Msg: Clone + Debug + Serialize + DeserializeOwned + Send + 'static;
    /// What an actor asks a timer to remind it of.
    type Timer: Clone + Debug + Send + 'static;
    /// What a finished job hands back.
    type JobOutput: Debug + Send + 'static;

    /// Called once per incarnation, on first boot and after every restart. An actor rebuilt
    /// after a crash knows only what its durable storage holds.
    fn on_start(&mut self, ctx: &mut Ctx<'_, Self>);
    /// A message from `from` arrived.
    fn on_msg(&mut self, from: NodeId, msg: Self::Msg, ctx: &mut Ctx<'_, Self>);
    /// A timer set with [`Ctx::set_timer`] fired (and was not cancelled).
    fn on_timer(&mut self, id: TimerId, timer: Self::Timer, ctx: &mut Ctx<'_, Self>);
    /// A job started with [`Ctx::start_job`] finished or failed.
    fn on_job_done(
        &mut self,
        id: JobId,
        result: Result<Self::JobOutput, JobError>,
        ctx: &mut Ctx<'_, Self>,
    );
}

/// What the host is told about a job before it runs it: a label for traces, a duration
/// estimate the simulator uses as the mean of its simulated duration, and whether the job is
/// cheap enough that a host may run it on its own turn instead of handing it to another thread.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct JobSpec {
    pub label: &'static str,
    pub estimate: Duration,
    /// The job usually takes microseconds (a point read served from memory, at worst one
    /// block read): a real host may run it inline, saving two thread hops, at the price of
    /// stalling its loop for that long. A hint only: the result still arrives as a separate
    /// `on_job_done` turn, so the actor cannot tell how the job ran, and the simulator
    /// ignores it.
    pub cheap: bool,
}

impl JobSpec {
    pub const fn new(label: &'static str, estimate: Duration) -> Self {
        Self {
            label,
            estimate,
            cheap: false,
        }
    }

    /// The same job, marked cheap (see [`JobSpec::cheap`]).
    pub const fn cheap(self) -> Self {
        Self {
            cheap: true,
            ..self
        }
    }
}

/// Why a job produced no output. Failures the job itself detects (I/O errors) belong in
/// `JobOutput`; these are the host's.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum JobError {
    /// The simulator failed the job on purpose.
    #[error("job failed by fault injection")]
    Injected,
    /// The job's closure panicked, or the host could not run it.
    #[error("job aborted: {0}")]
    Aborted(String),
}

#[cfg(test)]
mod tests;
