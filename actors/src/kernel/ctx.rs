//! The context an actor acts through: `now`, a seeded RNG, and the outbox of effects.

mod nest;

use super::{Actor, JobId, JobSpec, NodeId, SimHooks, Time, TimerId};
use rand_chacha::ChaCha8Rng;
use std::fmt;
use std::time::Duration;

/// The work of a job: run by the host off the actor's turn.
pub type JobFn<O> = Box<dyn FnOnce() -> O + Send + 'static>;

/// One thing an actor asked its host to do.
pub enum Effect<A: Actor> {
    Send {
        to: NodeId,
        msg: A::Msg,
    },
    SetTimer {
        id: TimerId,
        after: Duration,
        timer: A::Timer,
    },
    CancelTimer {
        id: TimerId,
    },
    StartJob {
        id: JobId,
        spec: JobSpec,
        work: JobFn<A::JobOutput>,
    },
}

impl<A: Actor> fmt::Debug for Effect<A> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Effect::Send { to, msg } => write!(f, "Send({to}, {msg:?})"),
            Effect::SetTimer { id, after, timer } => {
                write!(f, "SetTimer({}, {after:?}, {timer:?})", id.0)
            }
            Effect::CancelTimer { id } => write!(f, "CancelTimer({})", id.0),
            Effect::StartJob { id, spec, .. } => write!(f, "StartJob({}, {})", id.0, spec.label),
        }
    }
}

/// Allocates timer and job ids for one incarnation of one actor. The host keeps it between
/// calls and replaces it on restart.
#[derive(Debug, Default, Clone)]
pub struct IdGen {
    next_timer: u64,
    next_job: u64,
}

impl IdGen {
    pub fn new() -> Self {
        Self::default()
    }
}

/// What an actor sees of the world during one event, and where it puts its effects.
pub struct Ctx<'a, A: Actor> {
    me: NodeId,
    now: Time,
    rng: &'a mut ChaCha8Rng,
    ids: &'a mut IdGen,
    out: &'a mut Vec<Effect<A>>,
    /// Buggify and coverage marks, if the host offers them (the simulator does).
    hooks: Option<&'a mut dyn SimHooks>,
}

impl<'a, A: Actor> Ctx<'a, A> {
    /// Host-side constructor. Effects are appended to `out`; the host drains it after the call.
    pub fn new(
        me: NodeId,
        now: Time,
        rng: &'a mut ChaCha8Rng,
        ids: &'a mut IdGen,
        out: &'a mut Vec<Effect<A>>,
    ) -> Self {
        Self {
            me,
            now,
            rng,
            ids,
            out,
            hooks: None,
        }
    }

    /// Host-side: give the actor buggify points and coverage marks for this event. Hosts that
    /// never call this get points that never fire and marks that count nothing.
    pub fn with_sim_hooks(mut self, hooks: &'a mut dyn SimHooks) -> Self {
        self.hooks = Some(hooks);
        self
    }

    /// A code-level fault point: true when the host decided that `name` misbehaves this time.
    /// Use it to take a legal but rare path (a short timeout, a spurious retry, a delayed
    /// reply) that the environment alone seldom produces. Always false in builds without the
    /// `buggify` feature and on hosts without hooks.
    #[inline]
    pub fn buggify(&mut self, name: &'static str) -> bool {
        #[cfg(feature = "buggify")]
        if let Some(hooks) = self.hooks.as_deref_mut() {
            return hooks.buggify(name);
        }
        let _ = name;
        false
    }

    /// A coverage mark: records that this run went down the race path `name`. A sweep checks
    /// that every listed mark was hit at least once. No-op without the `buggify` feature or
    /// without hooks.
    #[inline]
    pub fn mark(&mut self, name: &'static str) {
        #[cfg(feature = "buggify")]
        if let Some(hooks) = self.hooks.as_deref_mut() {
            hooks.mark(name);
        }
        let _ = name;
    }

    /// This actor's node id.
    pub fn me(&self) -> NodeId {
        self.me
    }
    /// This node's clock (possibly skewed in simulation).
    pub fn now(&self) -> Time {
        self.now
    }
    /// A generator seeded by the host: deterministic in simulation.
    pub fn rng(&mut self) -> &mut ChaCha8Rng {
        self.rng
    }

    pub fn send(&mut self, to: NodeId, msg: A::Msg) {
        self.out.push(Effect::Send { to, msg });
    }

    /// Ask to be called back with `timer` after `after` of this node's time.
    pub fn set_timer(&mut self, after: Duration, timer: A::Timer) -> TimerId {
        let id = TimerId(self.ids.next_timer);
        self.ids.next_timer += 1;
        self.out.push(Effect::SetTimer { id, after, timer });
        id
    }

    /// Cancel a timer. Cancelling one that already fired or was never set is harmless.
    pub fn cancel_timer(&mut self, id: TimerId) {
        self.out.push(Effect::CancelTimer { id });
    }

    /// Start slow work (flush, compaction, WAL sync, tablet load). Its result arrives later
    /// through [`Actor::on_job_done`], or as an error if the host failed it.
    pub fn start_job(
        &mut self,
        spec: JobSpec,
        work: impl FnOnce() -> A::JobOutput + Send + 'static,
    ) -> JobId {
        let id = JobId(self.ids.next_job);
        self.ids.next_job += 1;
        self.out.push(Effect::StartJob {
            id,
            spec,
            work: Box::new(work),
        });
        id
    }

    /// Effects pushed so far during this event (for tests and assertions).
    pub fn pending(&self) -> &[Effect<A>] {
        self.out
    }
}
