//! Nesting: run an inner actor's handler inside an outer actor's event.
//!
//! The cluster runs one enum actor per process wrapping the roles (meta store, master, tablet
//! node, client). Each role is an `Actor` of its own with its own timer and job types; the
//! wrapper calls the role's handler through [`Ctx::nest`], which lends the role the same node
//! id, clock, RNG, id generator and simulator hooks (so timer and job ids stay unique across roles) and lifts
//! the role's effects into the wrapper's types.

use super::{Ctx, Effect};
use crate::kernel::{Actor, IdGen};

impl<'a, A: Actor> Ctx<'a, A> {
    /// Run `f` with a context for the inner actor `B`, then lift its effects: messages through
    /// `msg`, timers through `timer`, job outputs through `job` (a plain function, applied
    /// inside the job when it runs).
    pub fn nest<B, R>(
        &mut self,
        msg: impl Fn(B::Msg) -> A::Msg,
        timer: impl Fn(B::Timer) -> A::Timer,
        job: fn(B::JobOutput) -> A::JobOutput,
        f: impl FnOnce(&mut Ctx<'_, B>) -> R,
    ) -> R
    where
        B: Actor,
    {
        let mut inner_out: Vec<Effect<B>> = Vec::new();
        let result = {
            let ids: &mut IdGen = self.ids;
            let mut inner = Ctx::new(self.me, self.now, self.rng, ids, &mut inner_out);
            // Buggify points and coverage marks in the inner role count as the node's own.
            inner.hooks = match self.hooks.as_deref_mut() {
                Some(h) => Some(h),
                None => None,
            };
            f(&mut inner)
        };
        for effect in inner_out {
            self.out.push(match effect {
                Effect::Send { to, msg: m } => Effect::Send { to, msg: msg(m) },
                Effect::SetTimer {
                    id,
                    after,
                    timer: t,
                } => Effect::SetTimer {
                    id,
                    after,
                    timer: timer(t),
                },
                Effect::CancelTimer { id } => Effect::CancelTimer { id },
                Effect::StartJob { id, spec, work } => Effect::StartJob {
                    id,
                    spec,
                    work: Box::new(move || job(work())),
                },
            });
        }
        result
    }
}

#[cfg(test)]
mod tests {
    use crate::kernel::{
        Actor, Ctx, Effect, IdGen, JobError, JobId, JobSpec, NodeId, Time, TimerId,
    };
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;
    use std::time::Duration;

    struct Inner;
    impl Actor for Inner {
        type Msg = u32;
        type Timer = u8;
        type JobOutput = u16;
        fn on_start(&mut self, ctx: &mut Ctx<'_, Self>) {
            ctx.send(NodeId(2), 5);
            ctx.set_timer(Duration::from_secs(1), 7);
            ctx.start_job(JobSpec::new("inner", Duration::ZERO), || 40);
        }
        fn on_msg(&mut self, _: NodeId, _: u32, _: &mut Ctx<'_, Self>) {}
        fn on_timer(&mut self, _: TimerId, _: u8, _: &mut Ctx<'_, Self>) {}
        fn on_job_done(&mut self, _: JobId, _: Result<u16, JobError>, _: &mut Ctx<'_, Self>) {}
    }

    struct Outer;
    impl Actor for Outer {
        type Msg = String;
        type Timer = String;
        type JobOutput = u64;
        fn on_start(&mut self, ctx: &mut Ctx<'_, Self>) {
            ctx.set_timer(Duration::ZERO, "outer".into());
            ctx.nest(
                |m: u32| format!("m{m}"),
                |t: u8| format!("t{t}"),
                |o: u16| u64::from(o) + 2,
                |c| Inner.on_start(c),
            );
        }
        fn on_msg(&mut self, _: NodeId, _: String, _: &mut Ctx<'_, Self>) {}
        fn on_timer(&mut self, _: TimerId, _: String, _: &mut Ctx<'_, Self>) {}
        fn on_job_done(&mut self, _: JobId, _: Result<u64, JobError>, _: &mut Ctx<'_, Self>) {}
    }

    #[test]
    fn nested_effects_are_lifted_and_ids_stay_unique() {
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let mut ids = IdGen::new();
        let mut out: Vec<Effect<Outer>> = Vec::new();
        Outer.on_start(&mut Ctx::new(
            NodeId(1),
            Time::ZERO,
            &mut rng,
            &mut ids,
            &mut out,
        ));
        assert_eq!(out.len(), 4);
        let mut timers = Vec::new();
        let mut job_value = None;
        for e in out {
            match e {
                Effect::Send { to, msg } => assert_eq!((to, msg.as_str()), (NodeId(2), "m5")),
                Effect::SetTimer { id, timer, .. } => timers.push((id, timer)),
                Effect::StartJob { work, .. } => job_value = Some(work()),
                Effect::CancelTimer { .. } => panic!("no cancel expected"),
            }
        }
        assert_eq!(
            timers,
            vec![
                (TimerId(0), "outer".to_string()),
                (TimerId(1), "t7".to_string())
            ]
        );
        assert_eq!(job_value, Some(42));
    }
}
