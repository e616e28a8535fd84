//! Load and Unload procedures, and the outcome rules every procedure that loads or unloads
//! shares.
//!
//! Load: `loading` (tablet Loading, assigned to node@epoch; command sent) -> tablet Ready, or
//! LoadFail. Recovery: resend the (idempotent) load; if the node is dead, the tablet goes back
//! to Offline unassigned.
//! Unload: `unloading` (tablet Unloading; command sent) -> tablet Offline or Disabled,
//! unassigned; or UnloadFail (still assigned: the node may still serve it). Recovery: resend;
//! a dead node counts as unloaded.
//!
//! A tablet is only ever taken off a node's books when the node said it does not serve it, or
//! the node is dead (lease expired plus the clock-skew margin): never on a mere timeout, so a
//! slow node can never end up serving a tablet that was loaded elsewhere.
//! Must not: pick nodes (the assign pass does).

use super::{Event, Flow, ProcBody, Procedure};
use crate::kernel::Ctx;
use crate::master::error::CtlFail;
use crate::master::io::CtlOwner;
use crate::master::Master;
use crate::meta::{Assignment, Op, TabletId, TabletRecord, TabletStatus};
use crate::proto::control::{ControlCmd, ControlError, ControlReply, LoadMode};
use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum LoadPhase {
    Assigning,
    Loading,
    Finishing,
}

impl LoadPhase {
    pub fn name(self) -> &'static str {
        match self {
            LoadPhase::Assigning | LoadPhase::Loading => "loading",
            LoadPhase::Finishing => "finishing",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoadProc {
    pub tablet: TabletId,
    pub at: Assignment,
    pub mode: LoadMode,
    pub phase: LoadPhase,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum UnloadPhase {
    Marking,
    Unloading,
    Finishing,
}

impl UnloadPhase {
    pub fn name(self) -> &'static str {
        match self {
            UnloadPhase::Marking | UnloadPhase::Unloading => "unloading",
            UnloadPhase::Finishing => "finishing",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UnloadProc {
    pub tablet: TabletId,
    pub at: Assignment,
    /// Offline (to load elsewhere) or Disabled.
    pub then: TabletStatus,
    pub phase: UnloadPhase,
}

/// What a load answer means for the tablet record.
pub(crate) enum LoadOutcome {
    Ready(TabletRecord),
    Failed(TabletRecord),
    /// `Create` found files: the tablet was created by an earlier attempt; open it.
    RetryOpen,
    /// No answer yet from a node that is still alive: ask again later.
    AskAgain,
}

impl Master {
    pub(crate) fn load_outcome(
        &self,
        rec: &TabletRecord,
        at: Assignment,
        mode: &LoadMode,
        result: Result<ControlReply, CtlFail>,
        now: crate::kernel::Time,
    ) -> LoadOutcome {
        let mut r = rec.clone();
        match result {
            Ok(ControlReply::Loaded { size_bytes, .. }) => {
                r.status = TabletStatus::Ready;
                r.size_bytes = size_bytes;
                LoadOutcome::Ready(r)
            }
            Err(CtlFail::Error(ControlError::Refused(_))) if *mode == LoadMode::Create => {
                LoadOutcome::RetryOpen
            }
            Err(CtlFail::NoAnswer) if !self.node_dead(at, now) => LoadOutcome::AskAgain,
            Err(CtlFail::NoAnswer) => {
                // The node died: whatever it did, it serves nothing now.
                r.status = TabletStatus::Offline;
                r.assigned = None;
                LoadOutcome::Failed(r)
            }
            Ok(_) | Err(CtlFail::Error(_)) => {
                // The node refused: it does not serve the tablet.
                r.status = TabletStatus::LoadFail;
                r.assigned = None;
                LoadOutcome::Failed(r)
            }
        }
    }

    /// Did the node stop serving the tablet (or die)? None: ask again later.
    pub(crate) fn unload_outcome(
        &self,
        at: Assignment,
        result: &Result<ControlReply, CtlFail>,
        now: crate::kernel::Time,
    ) -> Option<bool> {
        match result {
            Ok(ControlReply::Unloaded { .. })
            | Err(CtlFail::Error(ControlError::NotServing { .. }))
            | Err(CtlFail::Error(ControlError::StaleEpoch { .. })) => Some(true),
            _ if self.node_dead(at, now) => Some(true),
            Err(CtlFail::NoAnswer) => None,
            _ => Some(false),
        }
    }

    pub(crate) fn send_load(
        &mut self,
        p: &Procedure,
        tablet: TabletId,
        at: Assignment,
        mode: LoadMode,
        ctx: &mut Ctx<'_, Self>,
    ) {
        let Some(spec) = self.tablet_spec(tablet) else {
            return;
        };
        let cmd = ControlCmd::Load { tablet: spec, mode };
        self.ctl_send(at.node, at.epoch, cmd, CtlOwner::Proc(p.id), ctx);
    }

    pub(crate) fn send_unload(
        &mut self,
        p: &Procedure,
        tablet: TabletId,
        at: Assignment,
        ctx: &mut Ctx<'_, Self>,
    ) {
        let version = self.st.tablets.get(&tablet).map_or(0, |t| t.rec.version);
        let cmd = ControlCmd::Unload { tablet, version };
        self.ctl_send(at.node, at.epoch, cmd, CtlOwner::Proc(p.id), ctx);
    }

    pub(crate) fn with_status(
        &self,
        tablet: TabletId,
        status: TabletStatus,
        assigned: Option<Assignment>,
    ) -> Option<TabletRecord> {
        self.st.tablets.get(&tablet).map(|t| {
            let mut r = t.rec.clone();
            r.status = status;
            r.assigned = assigned;
            r
        })
    }
}

pub(super) fn step(
    m: &mut Master,
    p: &mut Procedure,
    ev: Event,
    ctx: &mut Ctx<'_, Master>,
) -> Flow {
    match p.body.clone() {
        ProcBody::Load(l) => step_load(m, p, l, ev, ctx),
        ProcBody::Unload(u) => step_unload(m, p, u, ev, ctx),
        _ => unreachable!("load::step only runs loads and unloads"),
    }
}

fn set_load(p: &mut Procedure, l: LoadProc) {
    p.body = ProcBody::Load(l);
}

fn step_load(
    m: &mut Master,
    p: &mut Procedure,
    mut l: LoadProc,
    ev: Event,
    ctx: &mut Ctx<'_, Master>,
) -> Flow {
    let now = ctx.now();
    match (l.phase, ev) {
        (LoadPhase::Assigning, Event::Start) => {
            let Some(rec) = m.with_status(l.tablet, TabletStatus::Loading, Some(l.at)) else {
                return Flow::Done;
            };
            m.proc_write(
                p,
                vec![Op::PutTablet(rec)],
                false,
                "master.load.before_assign",
                ctx,
            );
            Flow::Continue
        }
        (LoadPhase::Assigning, Event::Txn(Ok(()))) => {
            l.phase = LoadPhase::Loading;
            set_load(p, l.clone());
            m.send_load(p, l.tablet, l.at, l.mode, ctx);
            Flow::Continue
        }
        (LoadPhase::Loading, Event::Resume) | (LoadPhase::Loading, Event::Retry) => {
            if m.node_dead(l.at, now) || m.st.node_epoch(l.at.node) != Some(l.at.epoch) {
                ctx.mark("master.load.resume_node_dead");
                let Some(rec) = m.with_status(l.tablet, TabletStatus::Offline, None) else {
                    return Flow::Done;
                };
                l.phase = LoadPhase::Finishing;
                set_load(p, l);
                m.proc_write(
                    p,
                    vec![Op::PutTablet(rec)],
                    true,
                    "master.load.before_finish",
                    ctx,
                );
            } else {
                m.send_load(p, l.tablet, l.at, l.mode, ctx);
            }
            Flow::Continue
        }
        (LoadPhase::Loading, Event::Ctl { result, .. }) => {
            let Some(rec) = m.st.tablets.get(&l.tablet).map(|t| t.rec.clone()) else {
                return Flow::Done;
            };
            match m.load_outcome(&rec, l.at, &l.mode, result, now) {
                LoadOutcome::RetryOpen => {
                    ctx.mark("master.load.create_found_files");
                    l.mode = LoadMode::Open;
                    set_load(p, l.clone());
                    m.send_load(p, l.tablet, l.at, l.mode, ctx);
                }
                LoadOutcome::AskAgain => {
                    ctx.mark("master.load.no_answer");
                    m.proc_retry_later(p, ctx);
                }
                LoadOutcome::Ready(r) | LoadOutcome::Failed(r) => {
                    if r.status != TabletStatus::Ready {
                        ctx.mark("master.load.failed");
                    }
                    l.phase = LoadPhase::Finishing;
                    set_load(p, l);
                    m.proc_write(
                        p,
                        vec![Op::PutTablet(r)],
                        true,
                        "master.load.before_finish",
                        ctx,
                    );
                }
            }
            Flow::Continue
        }
        (LoadPhase::Finishing, Event::Txn(Ok(()))) => Flow::Done,
        (LoadPhase::Finishing, Event::Resume) => Flow::Done,
        (_, _) => Flow::Continue,
    }
}

fn step_unload(
    m: &mut Master,
    p: &mut Procedure,
    mut u: UnloadProc,
    ev: Event,
    ctx: &mut Ctx<'_, Master>,
) -> Flow {
    let now = ctx.now();
    match (u.phase, ev) {
        (UnloadPhase::Marking, Event::Start) => {
            let Some(rec) = m.with_status(u.tablet, TabletStatus::Unloading, Some(u.at)) else {
                return Flow::Done;
            };
            m.proc_write(
                p,
                vec![Op::PutTablet(rec)],
                false,
                "master.unload.before_mark",
                ctx,
            );
            Flow::Continue
        }
        (UnloadPhase::Marking, Event::Txn(Ok(()))) => {
            u.phase = UnloadPhase::Unloading;
            p.body = ProcBody::Unload(u.clone());
            m.send_unload(p, u.tablet, u.at, ctx);
            Flow::Continue
        }
        (UnloadPhase::Unloading, Event::Resume) | (UnloadPhase::Unloading, Event::Retry) => {
            if m.node_dead(u.at, now) {
                finish_unload(m, p, u, true, ctx);
            } else {
                m.send_unload(p, u.tablet, u.at, ctx);
            }
            Flow::Continue
        }
        (UnloadPhase::Unloading, Event::Ctl { result, .. }) => {
            match m.unload_outcome(u.at, &result, now) {
                Some(unloaded) => finish_unload(m, p, u, unloaded, ctx),
                None => m.proc_retry_later(p, ctx),
            }
            Flow::Continue
        }
        (UnloadPhase::Finishing, Event::Txn(Ok(()))) | (UnloadPhase::Finishing, Event::Resume) => {
            Flow::Done
        }
        (_, _) => Flow::Continue,
    }
}

fn finish_unload(
    m: &mut Master,
    p: &mut Procedure,
    mut u: UnloadProc,
    unloaded: bool,
    ctx: &mut Ctx<'_, Master>,
) {
    let rec = if unloaded {
        m.with_status(u.tablet, u.then, None)
    } else {
        ctx.mark("master.unload.failed");
        m.with_status(u.tablet, TabletStatus::UnloadFail, Some(u.at))
    };
    u.phase = UnloadPhase::Finishing;
    p.body = ProcBody::Unload(u);
    let ops = rec.map(Op::PutTablet).into_iter().collect();
    m.proc_write(p, ops, true, "master.unload.before_finish", ctx);
}
