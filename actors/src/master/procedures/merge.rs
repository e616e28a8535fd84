//! Merge (seed 001): two adjacent Ready tablets become one, without copying data.
//!
//! Phases: `unloading` (both Merging; merged id, path and destination persisted; both unloads
//! sent) -> verify both unloaded -> one txn, retried until it lands: delete both, add the
//! merged tablet (union range, parents = both, new path, size = sum, version = max + 1,
//! Offline) and move the procedure to `load_merged` -> `loading` (merged Loading on the node
//! of the larger tablet, `LoadMode::MergeOf` so the node writes the union manifest) -> Ready.
//! Rollback (an unload was not clean): the tablets that were unloaded go Offline (hinted back
//! to their node, so the assign pass reloads them); one its node lost without closing it (a
//! restart, death) goes Offline too, since its unflushed log must be replayed by a reload
//! before `Tablet::merge` accepts it; one whose node refused stays Ready; the merge gives up.
//! Recovery: `unloading` resends both unloads (idempotent); `load_merged`/`loading` place and
//! load the merged tablet (a failed load waits and tries again, possibly on another node: only
//! this procedure knows the parents' paths the first load needs).
//! Must not: write the merged record before both unloads are confirmed.

use super::load::LoadOutcome;
use super::{Event, Flow, ProcBody, Procedure};
use crate::kernel::{Ctx, NodeId, Time};
use crate::master::error::CtlFail;
use crate::master::Master;
use crate::meta::{Assignment, Op, TabletId, TabletRecord, TabletStatus};
use crate::proto::control::{ControlReply, LoadMode};
use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum MergePhase {
    Marking,
    Unloading,
    Committing,
    /// The merged tablet exists in meta and waits to be placed.
    Waiting,
    Assigning,
    Loading,
    Finishing,
    RollingBack,
}

impl MergePhase {
    pub fn name(self) -> &'static str {
        match self {
            MergePhase::Marking | MergePhase::Unloading => "unloading",
            MergePhase::Committing | MergePhase::Waiting => "load_merged",
            MergePhase::Assigning | MergePhase::Loading => "loading",
            MergePhase::Finishing => "finishing",
            MergePhase::RollingBack => "rolling_back",
        }
    }
    pub fn committed(self) -> Self {
        match self {
            MergePhase::Marking => MergePhase::Unloading,
            MergePhase::Committing => MergePhase::Waiting,
            MergePhase::Assigning => MergePhase::Loading,
            other => other,
        }
    }
}

/// How a parent's unload ended. Only a clean unload (the node closed the tablet, so its log
/// is flushed into the tablet's files) leaves files `Tablet::merge` accepts; a parent whose
/// node lost it (restarted, died) still has its last writes in a log only a reload replays.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ParentUnload {
    /// The node said it unloaded the tablet.
    Clean,
    /// The node serves it no more, but did not close it (a new epoch, or dead): it must be
    /// reloaded (replaying its log) before it can be merged.
    Lost,
    /// The node refused and may still serve it.
    Refused,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MergeProc {
    /// The lower range.
    pub left: TabletId,
    pub right: TabletId,
    pub left_at: Assignment,
    pub right_at: Assignment,
    pub left_path: String,
    pub right_path: String,
    pub merged: TabletId,
    pub merged_path: String,
    /// The node of the larger tablet.
    pub dest: NodeId,
    pub left_unloaded: Option<ParentUnload>,
    pub right_unloaded: Option<ParentUnload>,
    pub load_at: Option<Assignment>,
    pub phase: MergePhase,
}

pub(super) fn step(
    m: &mut Master,
    p: &mut Procedure,
    ev: Event,
    ctx: &mut Ctx<'_, Master>,
) -> Flow {
    let ProcBody::Merge(mut g) = p.body.clone() else {
        unreachable!("merge::step only runs merges");
    };
    let now = ctx.now();
    let set = |p: &mut Procedure, g: &MergeProc| p.body = ProcBody::Merge(g.clone());
    match (g.phase, ev) {
        (MergePhase::Marking, Event::Start) => {
            let l = m.with_status(g.left, TabletStatus::Merging, Some(g.left_at));
            let r = m.with_status(g.right, TabletStatus::Merging, Some(g.right_at));
            let (Some(l), Some(r)) = (l, r) else {
                return Flow::Done;
            };
            let ops = vec![Op::PutTablet(l), Op::PutTablet(r)];
            m.proc_write(p, ops, false, "master.merge.before_mark", ctx);
        }
        (MergePhase::Marking, Event::Txn(Ok(()))) | (MergePhase::Unloading, Event::Resume) => {
            g.phase = MergePhase::Unloading;
            g.left_unloaded = None;
            g.right_unloaded = None;
            set(p, &g);
            m.send_unload(p, g.left, g.left_at, ctx);
            m.send_unload(p, g.right, g.right_at, ctx);
        }
        (MergePhase::Unloading, Event::Ctl { tablet, result, .. }) => {
            if tablet == Some(g.left) {
                g.left_unloaded = Some(parent_unload(m, g.left_at, &result, now));
            } else if tablet == Some(g.right) {
                g.right_unloaded = Some(parent_unload(m, g.right_at, &result, now));
            }
            set(p, &g);
            match (g.left_unloaded, g.right_unloaded) {
                (Some(ParentUnload::Clean), Some(ParentUnload::Clean)) => commit(m, p, g, ctx),
                (Some(_), Some(_)) => rollback(m, p, g, ctx),
                _ => {}
            }
        }
        (MergePhase::Committing, Event::Txn(Ok(()))) => {
            ctx.mark("master.merge.committed");
            assign(m, p, g, ctx);
        }
        // A failed load was recorded: wait before placing it again.
        (MergePhase::Waiting, Event::Txn(Ok(()))) => m.proc_retry_later(p, ctx),
        (MergePhase::Waiting, Event::Resume | Event::Retry) => assign(m, p, g, ctx),
        (MergePhase::Assigning, Event::Txn(Ok(()))) => {
            g.phase = MergePhase::Loading;
            set(p, &g);
            send_load(m, p, &g, ctx);
        }
        (MergePhase::Loading, Event::Resume | Event::Retry) => match g.load_at {
            Some(a) if !m.node_dead(a, now) => send_load(m, p, &g, ctx),
            _ => assign(m, p, g, ctx),
        },
        (MergePhase::Loading, Event::Ctl { result, .. }) => {
            let (Some(rec), Some(at)) = (
                m.st.tablets.get(&g.merged).map(|t| t.rec.clone()),
                g.load_at,
            ) else {
                return Flow::Done;
            };
            match m.load_outcome(&rec, at, &merge_mode(&g), result, now) {
                LoadOutcome::AskAgain | LoadOutcome::RetryOpen => m.proc_retry_later(p, ctx),
                LoadOutcome::Ready(r) => {
                    ctx.mark("master.merge.done");
                    g.phase = MergePhase::Finishing;
                    set(p, &g);
                    m.proc_write(
                        p,
                        vec![Op::PutTablet(r)],
                        true,
                        "master.merge.before_finish",
                        ctx,
                    );
                }
                LoadOutcome::Failed(r) => {
                    ctx.mark("master.merge.load_failed");
                    g.phase = MergePhase::Waiting;
                    g.load_at = None;
                    set(p, &g);
                    m.proc_write(
                        p,
                        vec![Op::PutTablet(r)],
                        false,
                        "master.merge.before_wait",
                        ctx,
                    );
                }
            }
        }
        (MergePhase::Finishing | MergePhase::RollingBack, Event::Txn(Ok(()))) => return Flow::Done,
        _ => {}
    }
    Flow::Continue
}

/// What a parent's unload answer means for the merge. No answer from a live node counts as
/// a refusal (the node may still serve it): the merge gives up rather than wait.
fn parent_unload(
    m: &Master,
    at: Assignment,
    result: &Result<ControlReply, CtlFail>,
    now: Time,
) -> ParentUnload {
    match result {
        Ok(ControlReply::Unloaded { .. }) => ParentUnload::Clean,
        _ if m.unload_outcome(at, result, now) == Some(true) => ParentUnload::Lost,
        _ => ParentUnload::Refused,
    }
}

fn merge_mode(g: &MergeProc) -> LoadMode {
    LoadMode::MergeOf {
        left_path: g.left_path.clone(),
        right_path: g.right_path.clone(),
    }
}

fn send_load(m: &mut Master, p: &Procedure, g: &MergeProc, ctx: &mut Ctx<'_, Master>) {
    if let Some(a) = g.load_at {
        m.send_load(p, g.merged, a, merge_mode(g), ctx);
    }
}

fn size_of(m: &Master, id: TabletId) -> u64 {
    m.st.tablets.get(&id).map_or(0, |t| {
        t.reported
            .as_ref()
            .map_or(t.rec.size_bytes, |r| r.size_bytes)
    })
}

fn commit(m: &mut Master, p: &mut Procedure, mut g: MergeProc, ctx: &mut Ctx<'_, Master>) {
    let (Some(l), Some(r)) = (
        m.st.tablets.get(&g.left).map(|t| t.rec.clone()),
        m.st.tablets.get(&g.right).map(|t| t.rec.clone()),
    ) else {
        return;
    };
    let merged = TabletRecord {
        id: g.merged,
        table: l.table.clone(),
        start: l.start.clone(),
        end: r.end.clone(),
        path: g.merged_path.clone(),
        assigned: None,
        status: TabletStatus::Offline,
        size_bytes: size_of(m, g.left) + size_of(m, g.right),
        version: l.version.max(r.version) + 1,
        parents: vec![g.left, g.right],
    };
    #[cfg(feature = "planted-bugs")]
    let merged = match m.cfg.planted.merge_wrong_range {
        true => TabletRecord {
            end: l.end.clone(),
            ..merged
        },
        false => merged,
    };
    g.phase = MergePhase::Committing;
    p.body = ProcBody::Merge(g.clone());
    let ops = vec![
        Op::DeleteTablet(g.left),
        Op::DeleteTablet(g.right),
        Op::PutTablet(merged),
    ];
    m.proc_write(p, ops, false, "master.merge.before_meta", ctx);
}

fn rollback(m: &mut Master, p: &mut Procedure, mut g: MergeProc, ctx: &mut Ctx<'_, Master>) {
    ctx.mark("master.merge.rollback");
    let mut ops = Vec::new();
    for (id, at, unloaded) in [
        (g.left, g.left_at, g.left_unloaded),
        (g.right, g.right_at, g.right_unloaded),
    ] {
        let rec = match unloaded {
            Some(ParentUnload::Clean) => {
                m.hints.insert(id, at.node);
                m.with_status(id, TabletStatus::Offline, None)
            }
            // The assign pass reloads it wherever it can (the old node is gone or renewed).
            Some(ParentUnload::Lost) => {
                ctx.mark("master.merge.parent_lost");
                m.with_status(id, TabletStatus::Offline, None)
            }
            Some(ParentUnload::Refused) | None => m.with_status(id, TabletStatus::Ready, Some(at)),
        };
        ops.extend(rec.map(Op::PutTablet));
    }
    g.phase = MergePhase::RollingBack;
    p.body = ProcBody::Merge(g);
    m.proc_write(p, ops, true, "master.merge.before_rollback", ctx);
}

/// Place the merged tablet: the larger parent's node if it is live, else the assign rule.
fn assign(m: &mut Master, p: &mut Procedure, mut g: MergeProc, ctx: &mut Ctx<'_, Master>) {
    let now = ctx.now();
    let at = m
        .node_live(g.dest, now)
        .or_else(|| m.choose_node(g.merged, now));
    let rec = at.and_then(|a| m.with_status(g.merged, TabletStatus::Loading, Some(a)));
    match (at, rec) {
        (Some(a), Some(rec)) => {
            g.phase = MergePhase::Assigning;
            g.load_at = Some(a);
            p.body = ProcBody::Merge(g);
            m.proc_write(
                p,
                vec![Op::PutTablet(rec)],
                false,
                "master.merge.before_assign",
                ctx,
            );
        }
        _ => {
            // No live node yet (or the merged record is missing: meta is the judge; wait).
            g.phase = MergePhase::Waiting;
            p.body = ProcBody::Merge(g);
            m.proc_retry_later(p, ctx);
        }
    }
}
