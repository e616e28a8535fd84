//! Simulation hooks an actor reaches through its [`super::Ctx`]: code-level fault points
//! (`ctx.buggify("name")`, FoundationDB's `BUGGIFY`) and coverage marks (`ctx.mark("name")`,
//! TigerBeetle's `marks`).
//!
//! Owns only the seam: the [`SimHooks`] trait a host implements and the `buggify` cargo feature
//! that decides whether the calls do anything at all. The decisions (which points are enabled
//! for a seed, how often they fire) and the mark registry live in the host (`shale-sim`), per
//! run, so two runs in parallel never share state. Must not hold global or static state.
//!
//! Without the `buggify` feature, [`super::Ctx::buggify`] is a constant `false` and
//! [`super::Ctx::mark`] does nothing, so production builds carry neither the fault paths'
//! triggers nor the counting. A host that does not supply hooks (the async host, unit tests
//! calling `Ctx::new`) gets the same: never fires, never counts.

/// What a host offers an actor for code-level faults and coverage. Implemented by the
/// simulator; names are `&'static str` literals so a point costs no allocation when reached.
pub trait SimHooks {
    /// Should the fault point `name` misbehave now? A host enables each point (or not) once
    /// per run and then fires an enabled point with some probability each time it is reached.
    fn buggify(&mut self, name: &'static str) -> bool;
    /// Count one hit of the coverage mark `name` (a race path that a sweep must show it ran).
    fn mark(&mut self, name: &'static str);
}

/// True when this build carries simulation hooks (the `buggify` feature of `shale-actors`).
pub const HOOKS_COMPILED: bool = cfg!(feature = "buggify");

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernel::{Actor, Ctx, IdGen, JobError, JobId, NodeId, Time, TimerId};
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    struct Nop;
    impl Actor for Nop {
        type Msg = ();
        type Timer = ();
        type JobOutput = ();
        fn on_start(&mut self, _: &mut Ctx<'_, Self>) {}
        fn on_msg(&mut self, _: NodeId, _: (), _: &mut Ctx<'_, Self>) {}
        fn on_timer(&mut self, _: TimerId, _: (), _: &mut Ctx<'_, Self>) {}
        fn on_job_done(&mut self, _: JobId, _: Result<(), JobError>, _: &mut Ctx<'_, Self>) {}
    }

    /// Fires every point and records every call, so a test sees exactly what reached it.
    #[derive(Default)]
    struct Recorder {
        calls: Vec<(&'static str, &'static str)>,
    }
    impl SimHooks for Recorder {
        fn buggify(&mut self, name: &'static str) -> bool {
            self.calls.push(("buggify", name));
            true
        }
        fn mark(&mut self, name: &'static str) {
            self.calls.push(("mark", name));
        }
    }

    #[test]
    fn a_ctx_without_hooks_never_fires_and_counts_nothing() {
        let (mut rng, mut ids, mut out) = (ChaCha8Rng::seed_from_u64(1), IdGen::new(), vec![]);
        let mut ctx: Ctx<'_, Nop> = Ctx::new(NodeId(1), Time::ZERO, &mut rng, &mut ids, &mut out);
        for _ in 0..100 {
            assert!(!ctx.buggify("point"));
            ctx.mark("mark");
        }
        assert!(ctx.pending().is_empty());
    }

    #[test]
    fn hooks_are_reached_exactly_when_the_feature_is_compiled_in() {
        let (mut rng, mut ids, mut out) = (ChaCha8Rng::seed_from_u64(1), IdGen::new(), vec![]);
        let mut rec = Recorder::default();
        {
            let mut ctx: Ctx<'_, Nop> =
                Ctx::new(NodeId(1), Time::ZERO, &mut rng, &mut ids, &mut out)
                    .with_sim_hooks(&mut rec);
            assert_eq!(ctx.buggify("p"), HOOKS_COMPILED);
            ctx.mark("m");
        }
        if HOOKS_COMPILED {
            assert_eq!(rec.calls, vec![("buggify", "p"), ("mark", "m")]);
        } else {
            assert!(rec.calls.is_empty());
        }
    }
}
