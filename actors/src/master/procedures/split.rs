//! Split (seed 000): the node picks the key that halves the data (or uses the one given),
//! writes both children's manifests over the parent's files and stops serving the parent; the
//! master then replaces the parent by the two children in one meta transaction and loads them
//! on the same node.
//!
//! Phases: `splitting` (parent Splitting; child ids and paths allocated and persisted; Split
//! sent) -> one txn: delete parent, add children (Offline, version = parent + 1, parents =
//! [parent]) and delete the procedure. The children are then ordinary Offline tablets the
//! assign pass loads, hinted to the parent's node.
//! Rollback: the node refused (parent unchanged) -> parent Ready again; the node does not
//! serve the parent any more (NotServing, new epoch, dead) -> parent Offline, reloaded by the
//! assign pass. Recovery of `splitting`: resend the Split (the node answers with the split it
//! already made), or roll back if the node is dead.
//! Must not: add a child before the node confirmed the split (its manifest must exist).

use super::{Event, Flow, ProcBody, Procedure};
use crate::kernel::Ctx;
use crate::master::error::CtlFail;
use crate::master::io::CtlOwner;
use crate::master::Master;
use crate::meta::{Assignment, Op, TabletId, TabletRecord, TabletStatus};
use crate::proto::control::{ControlCmd, ControlError, ControlReply};
use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum SplitPhase {
    Marking,
    Splitting,
    Committing,
    RollingBack,
}

impl SplitPhase {
    pub fn name(self) -> &'static str {
        match self {
            SplitPhase::Marking | SplitPhase::Splitting => "splitting",
            SplitPhase::Committing => "committing",
            SplitPhase::RollingBack => "rolling_back",
        }
    }
    pub fn committed(self) -> Self {
        match self {
            SplitPhase::Marking => SplitPhase::Splitting,
            other => other,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SplitProc {
    pub tablet: TabletId,
    pub at: Assignment,
    pub key: Option<Vec<u8>>,
    pub left: TabletId,
    pub right: TabletId,
    pub phase: SplitPhase,
}

pub(super) fn step(
    m: &mut Master,
    p: &mut Procedure,
    ev: Event,
    ctx: &mut Ctx<'_, Master>,
) -> Flow {
    let ProcBody::Split(mut s) = p.body.clone() else {
        unreachable!("split::step only runs splits");
    };
    let now = ctx.now();
    match (s.phase, ev) {
        (SplitPhase::Marking, Event::Start) => {
            let Some(rec) = m.with_status(s.tablet, TabletStatus::Splitting, Some(s.at)) else {
                return Flow::Done;
            };
            m.proc_write(
                p,
                vec![Op::PutTablet(rec)],
                false,
                "master.split.before_mark",
                ctx,
            );
        }
        (SplitPhase::Marking, Event::Txn(Ok(()))) => {
            s.phase = SplitPhase::Splitting;
            p.body = ProcBody::Split(s.clone());
            send_split(m, p, &s, ctx);
        }
        (SplitPhase::Splitting, Event::Resume | Event::Retry) => {
            if m.node_dead(s.at, now) {
                ctx.mark("master.split.resume_node_dead");
                rollback(m, p, s, TabletStatus::Offline, ctx);
            } else {
                send_split(m, p, &s, ctx);
            }
        }
        (SplitPhase::Splitting, Event::Ctl { result, .. }) => match result {
            Ok(ControlReply::Split {
                key,
                left_size_bytes,
                right_size_bytes,
                ..
            }) => match children(m, &s, &key, left_size_bytes, right_size_bytes) {
                Some((l, r)) => {
                    s.phase = SplitPhase::Committing;
                    p.body = ProcBody::Split(s.clone());
                    let ops = vec![
                        Op::DeleteTablet(s.tablet),
                        Op::PutTablet(l),
                        Op::PutTablet(r),
                    ];
                    m.proc_write(p, ops, true, "master.split.before_meta", ctx);
                }
                None => {
                    ctx.mark("master.split.bad_key");
                    rollback(m, p, s, TabletStatus::Offline, ctx);
                }
            },
            Err(CtlFail::Error(
                ControlError::NotServing { .. } | ControlError::StaleEpoch { .. },
            )) => rollback(m, p, s, TabletStatus::Offline, ctx),
            Err(CtlFail::NoAnswer) if m.node_dead(s.at, now) => {
                rollback(m, p, s, TabletStatus::Offline, ctx)
            }
            Err(CtlFail::NoAnswer) => {
                ctx.mark("master.split.no_answer");
                m.proc_retry_later(p, ctx);
            }
            Ok(_) | Err(CtlFail::Error(_)) => rollback(m, p, s, TabletStatus::Ready, ctx),
        },
        (SplitPhase::Committing, Event::Txn(Ok(()))) => {
            ctx.mark("master.split.done");
            m.hints.insert(s.left, s.at.node);
            m.hints.insert(s.right, s.at.node);
            return Flow::Done;
        }
        (SplitPhase::RollingBack, Event::Txn(Ok(()))) => return Flow::Done,
        _ => {}
    }
    Flow::Continue
}

fn send_split(m: &mut Master, p: &Procedure, s: &SplitProc, ctx: &mut Ctx<'_, Master>) {
    let version = m.st.tablets.get(&s.tablet).map_or(0, |t| t.rec.version);
    let Some(table) = m.st.tablets.get(&s.tablet).map(|t| t.rec.table.clone()) else {
        return;
    };
    let cmd = ControlCmd::Split {
        tablet: s.tablet,
        version,
        key: s.key.clone(),
        left: (s.left, m.cfg.tablet_path(&table, s.left)),
        right: (s.right, m.cfg.tablet_path(&table, s.right)),
    };
    m.ctl_send(s.at.node, s.at.epoch, cmd, CtlOwner::Proc(p.id), ctx);
}

/// The two children, if `key` is strictly inside the parent's range.
fn children(
    m: &Master,
    s: &SplitProc,
    key: &[u8],
    left_size: u64,
    right_size: u64,
) -> Option<(TabletRecord, TabletRecord)> {
    let parent = &m.st.tablets.get(&s.tablet)?.rec;
    let inside =
        key > parent.start.as_slice() && (parent.end.is_empty() || key < parent.end.as_slice());
    if !inside {
        return None;
    }
    let child = |id: TabletId, start: Vec<u8>, end: Vec<u8>, size: u64| TabletRecord {
        id,
        table: parent.table.clone(),
        start,
        end,
        path: m.cfg.tablet_path(&parent.table, id),
        assigned: None,
        status: TabletStatus::Offline,
        size_bytes: size,
        version: parent.version + 1,
        parents: vec![s.tablet],
    };
    Some((
        child(s.left, parent.start.clone(), key.to_vec(), left_size),
        child(s.right, key.to_vec(), parent.end.clone(), right_size),
    ))
}

fn rollback(
    m: &mut Master,
    p: &mut Procedure,
    mut s: SplitProc,
    status: TabletStatus,
    ctx: &mut Ctx<'_, Master>,
) {
    ctx.mark("master.split.rollback");
    let assigned = (status == TabletStatus::Ready).then_some(s.at);
    let rec = m.with_status(s.tablet, status, assigned);
    s.phase = SplitPhase::RollingBack;
    p.body = ProcBody::Split(s);
    let ops = rec.map(Op::PutTablet).into_iter().collect();
    m.proc_write(p, ops, true, "master.split.before_rollback", ctx);
}
