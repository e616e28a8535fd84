//! Move: take a tablet off one node and load it on another, with a new tablet version so the
//! old node can never be mistaken for the current server.
//!
//! Phases: `unloading` (tablet Unloading on the source; unload sent) -> `loading` (tablet
//! Loading on the destination at version + 1; load sent) -> Ready.
//! Rollback: if the source refuses to unload (and is alive), the tablet stays Ready there.
//! If the destination refuses the load, the tablet becomes LoadFail, unassigned, and the
//! assign pass places it. Recovery: `unloading` resends the unload (a dead source counts as
//! unloaded); `loading` resends the load, or, if the destination died, the tablet goes Offline.
//! Must not: load on the destination before the source said it stopped (or died).

use super::load::LoadOutcome;
use super::{Event, Flow, ProcBody, Procedure};
use crate::kernel::Ctx;
use crate::master::Master;
use crate::meta::{Assignment, Op, TabletId, TabletStatus};
use crate::proto::control::LoadMode;
use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum MovePhase {
    Marking,
    Unloading,
    Assigning,
    Loading,
    Finishing,
}

impl MovePhase {
    pub fn name(self) -> &'static str {
        match self {
            MovePhase::Marking | MovePhase::Unloading => "unloading",
            MovePhase::Assigning | MovePhase::Loading => "loading",
            MovePhase::Finishing => "finishing",
        }
    }
    /// The phase a successor finds once this phase's write committed.
    pub fn committed(self) -> Self {
        match self {
            MovePhase::Marking => MovePhase::Unloading,
            MovePhase::Assigning => MovePhase::Loading,
            other => other,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MoveProc {
    pub tablet: TabletId,
    pub from: Assignment,
    pub to: Assignment,
    pub phase: MovePhase,
}

pub(super) fn step(
    m: &mut Master,
    p: &mut Procedure,
    ev: Event,
    ctx: &mut Ctx<'_, Master>,
) -> Flow {
    let ProcBody::Move(mut mv) = p.body.clone() else {
        unreachable!("mv::step only runs moves");
    };
    let now = ctx.now();
    let set = |p: &mut Procedure, mv: &MoveProc| p.body = ProcBody::Move(mv.clone());
    match (mv.phase, ev) {
        (MovePhase::Marking, Event::Start) => {
            let Some(rec) = m.with_status(mv.tablet, TabletStatus::Unloading, Some(mv.from)) else {
                return Flow::Done;
            };
            m.proc_write(
                p,
                vec![Op::PutTablet(rec)],
                false,
                "master.move.before_unload",
                ctx,
            );
        }
        (MovePhase::Marking, Event::Txn(Ok(()))) => {
            mv.phase = MovePhase::Unloading;
            set(p, &mv);
            m.send_unload(p, mv.tablet, mv.from, ctx);
        }
        (MovePhase::Unloading, Event::Resume | Event::Retry) => {
            if m.node_dead(mv.from, now) {
                assign(m, p, mv, ctx);
            } else {
                m.send_unload(p, mv.tablet, mv.from, ctx);
            }
        }
        (MovePhase::Unloading, Event::Ctl { result, .. }) => {
            match m.unload_outcome(mv.from, &result, now) {
                Some(true) => assign(m, p, mv, ctx),
                Some(false) => {
                    ctx.mark("master.move.rollback");
                    let Some(rec) = m.with_status(mv.tablet, TabletStatus::Ready, Some(mv.from))
                    else {
                        return Flow::Done;
                    };
                    mv.phase = MovePhase::Finishing;
                    set(p, &mv);
                    m.proc_write(
                        p,
                        vec![Op::PutTablet(rec)],
                        true,
                        "master.move.before_rollback",
                        ctx,
                    );
                }
                None => m.proc_retry_later(p, ctx),
            }
        }
        (MovePhase::Assigning, Event::Txn(Ok(()))) => {
            mv.phase = MovePhase::Loading;
            set(p, &mv);
            m.send_load(p, mv.tablet, mv.to, LoadMode::Open, ctx);
        }
        (MovePhase::Loading, Event::Resume | Event::Retry) => {
            if m.node_dead(mv.to, now) {
                ctx.mark("master.move.dest_dead");
                let Some(rec) = m.with_status(mv.tablet, TabletStatus::Offline, None) else {
                    return Flow::Done;
                };
                mv.phase = MovePhase::Finishing;
                set(p, &mv);
                m.proc_write(
                    p,
                    vec![Op::PutTablet(rec)],
                    true,
                    "master.move.before_finish",
                    ctx,
                );
            } else {
                m.send_load(p, mv.tablet, mv.to, LoadMode::Open, ctx);
            }
        }
        (MovePhase::Loading, Event::Ctl { result, .. }) => {
            let Some(rec) = m.st.tablets.get(&mv.tablet).map(|t| t.rec.clone()) else {
                return Flow::Done;
            };
            match m.load_outcome(&rec, mv.to, &LoadMode::Open, result, now) {
                LoadOutcome::AskAgain | LoadOutcome::RetryOpen => m.proc_retry_later(p, ctx),
                LoadOutcome::Ready(r) | LoadOutcome::Failed(r) => {
                    ctx.mark(if r.status == TabletStatus::Ready {
                        "master.move.done"
                    } else {
                        "master.move.load_failed"
                    });
                    mv.phase = MovePhase::Finishing;
                    set(p, &mv);
                    m.proc_write(
                        p,
                        vec![Op::PutTablet(r)],
                        true,
                        "master.move.before_finish",
                        ctx,
                    );
                }
            }
        }
        (MovePhase::Finishing, Event::Txn(Ok(()))) => return Flow::Done,
        _ => {}
    }
    Flow::Continue
}

/// The source is done with it: assign to the destination at a new version.
fn assign(m: &mut Master, p: &mut Procedure, mut mv: MoveProc, ctx: &mut Ctx<'_, Master>) {
    let Some(mut rec) = m.with_status(mv.tablet, TabletStatus::Loading, Some(mv.to)) else {
        return;
    };
    rec.version += 1;
    mv.phase = MovePhase::Assigning;
    p.body = ProcBody::Move(mv);
    m.proc_write(
        p,
        vec![Op::PutTablet(rec)],
        false,
        "master.move.before_assign",
        ctx,
    );
}
