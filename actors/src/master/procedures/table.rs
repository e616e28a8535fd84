//! Table procedures. Each is created by its DDL transaction (seed 000: the meta write is what
//! the caller waits for), then watches the table's tablets until the DDL's effect is complete.
//!
//! Create / Enable (`waiting`): done once every tablet of the table is Ready; the assign pass
//! does the loads. While a Create procedure exists its tablets load with `LoadMode::Create`.
//! Disable (`waiting`, `fixing`): unloads every assigned tablet (Unload procedures ending in
//! Disabled) and marks unassigned ones Disabled; done when all are Disabled.
//! Drop (`trashing` -> `committing` -> `trashed`): a job moves the table's folder to the
//! trash; one txn (per chunk of tablets) deletes the records; after `trash_grace_ms` a job
//! deletes the trash; then the procedure ends. Every step is idempotent, so recovery simply
//! repeats the current phase.
//! Must not: load tablets itself (placement is the assign pass's) or delete files of a table
//! that still has records in meta.

use super::load::{UnloadPhase, UnloadProc};
use super::{Event, Flow, ProcBody, Procedure};
use crate::kernel::JobSpec;
use crate::kernel::{Ctx, Time};
use crate::master::gc::JobWhat;
use crate::master::{Master, MasterJobOutput, MasterTimer};
use crate::meta::{Op, TableStatus, TabletStatus};
use serde::{Deserialize, Serialize};
use std::time::Duration;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum TablePhase {
    Waiting,
    Fixing,
    Finishing,
}

impl TablePhase {
    pub fn name(self) -> &'static str {
        match self {
            TablePhase::Waiting => "waiting",
            TablePhase::Fixing => "fixing",
            TablePhase::Finishing => "finishing",
        }
    }
    pub fn committed(self) -> Self {
        match self {
            TablePhase::Fixing => TablePhase::Waiting,
            other => other,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TableProc {
    pub table: String,
    pub phase: TablePhase,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum DropPhase {
    Trashing,
    Committing,
    Waiting,
    Deleting,
    Finishing,
}

impl DropPhase {
    pub fn name(self) -> &'static str {
        match self {
            DropPhase::Trashing => "trashing",
            DropPhase::Committing => "committing",
            DropPhase::Waiting | DropPhase::Deleting => "trashed",
            DropPhase::Finishing => "finishing",
        }
    }
    pub fn committed(self) -> Self {
        match self {
            DropPhase::Deleting => DropPhase::Waiting,
            other => other,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DropProc {
    pub table: String,
    /// The trash folder the table's files move to.
    pub trash: String,
    /// When the trash may be deleted (master clock), set once the records are gone.
    pub delete_after: Option<Time>,
    pub phase: DropPhase,
}

/// Tablet records deleted per drop transaction (a transaction's ops are bounded).
const DROP_TABLETS_PER_TXN_MAX: usize = 200;
/// Tablet status fixes (enable, disable) per transaction.
const FIX_TABLETS_PER_TXN_MAX: usize = 200;

pub(super) fn step(
    m: &mut Master,
    p: &mut Procedure,
    ev: Event,
    ctx: &mut Ctx<'_, Master>,
) -> Flow {
    let (mut t, disable) = match p.body.clone() {
        ProcBody::Create(t) | ProcBody::Enable(t) => (t, false),
        ProcBody::Disable(t) => (t, true),
        _ => unreachable!("table::step only runs create, enable and disable"),
    };
    let wrap = |p: &mut Procedure, t: TableProc| {
        p.body = match &p.body {
            ProcBody::Create(_) => ProcBody::Create(t),
            ProcBody::Enable(_) => ProcBody::Enable(t),
            _ => ProcBody::Disable(t),
        }
    };
    match (t.phase, ev) {
        (TablePhase::Finishing, Event::Txn(Ok(()))) => return Flow::Done,
        (TablePhase::Finishing, _) => {}
        (TablePhase::Fixing, Event::Txn(Ok(()))) => {
            t.phase = TablePhase::Waiting;
            wrap(p, t.clone());
            watch(m, p, t, disable, ctx, wrap);
        }
        (TablePhase::Fixing, _) => {}
        (TablePhase::Waiting, _) => watch(m, p, t, disable, ctx, wrap),
    }
    Flow::Continue
}

fn watch(
    m: &mut Master,
    p: &mut Procedure,
    mut t: TableProc,
    disable: bool,
    ctx: &mut Ctx<'_, Master>,
    wrap: impl Fn(&mut Procedure, TableProc),
) {
    let want = if disable {
        TableStatus::Disabled
    } else {
        TableStatus::Enabled
    };
    let tablets: Vec<_> = m.st.tablets_of(&t.table).cloned().collect();
    let finished = m.st.table_status(&t.table) != Some(want)
        || tablets.iter().all(|x| {
            x.rec.status
                == if disable {
                    TabletStatus::Disabled
                } else {
                    TabletStatus::Ready
                }
        });
    if finished {
        ctx.mark(if disable {
            "master.disable.done"
        } else {
            "master.table_load.done"
        });
        t.phase = TablePhase::Finishing;
        wrap(p, t);
        m.proc_write(p, Vec::new(), true, "master.table.before_finish", ctx);
        return;
    }
    let mut ops = Vec::new();
    if !disable {
        // Enable: Disabled tablets become Offline; the assign pass loads them.
        for x in tablets.iter().filter(|x| x.lock.is_none()) {
            if x.rec.status == TabletStatus::Disabled && ops.len() < FIX_TABLETS_PER_TXN_MAX {
                ops.extend(
                    m.with_status(x.rec.id, TabletStatus::Offline, None)
                        .map(Op::PutTablet),
                );
            }
        }
        if !ops.is_empty() {
            t.phase = TablePhase::Fixing;
            wrap(p, t);
            m.proc_write(p, ops, false, "master.enable.before_fix", ctx);
        }
        return;
    }
    for x in tablets.iter().filter(|x| x.lock.is_none()) {
        match (x.rec.status, x.rec.assigned) {
            (TabletStatus::Offline | TabletStatus::LoadFail, None)
                if ops.len() < FIX_TABLETS_PER_TXN_MAX =>
            {
                ops.extend(
                    m.with_status(x.rec.id, TabletStatus::Disabled, None)
                        .map(Op::PutTablet),
                )
            }
            (TabletStatus::Ready | TabletStatus::LoadFail | TabletStatus::UnloadFail, Some(at)) => {
                let body = ProcBody::Unload(UnloadProc {
                    tablet: x.rec.id,
                    at,
                    then: TabletStatus::Disabled,
                    phase: UnloadPhase::Marking,
                });
                m.start_procedure(body, ctx);
            }
            _ => {}
        }
    }
    if !ops.is_empty() {
        t.phase = TablePhase::Fixing;
        wrap(p, t);
        m.proc_write(p, ops, false, "master.disable.before_fix", ctx);
    }
}

pub(super) fn step_drop(
    m: &mut Master,
    p: &mut Procedure,
    ev: Event,
    ctx: &mut Ctx<'_, Master>,
) -> Flow {
    let ProcBody::Drop(mut d) = p.body.clone() else {
        unreachable!("step_drop only runs drops");
    };
    let now = ctx.now();
    match (d.phase, ev) {
        (DropPhase::Trashing, Event::Start | Event::Resume | Event::Retry) => {
            let fs = m.fs.clone();
            let from = format!("{}/{}", m.cfg.tables_root, d.table);
            let to = d.trash.clone();
            let proc_id = p.id;
            let job = ctx.start_job(
                JobSpec::new("master.drop.trash", Duration::from_millis(20)),
                move || MasterJobOutput::TrashMoved {
                    proc_id,
                    result: crate::master::gc::move_tree(fs.as_ref(), &from, &to),
                },
            );
            m.gc.jobs.insert(job, JobWhat::Proc(proc_id));
        }
        (DropPhase::Trashing, Event::Job(Ok(_))) | (DropPhase::Committing, Event::Resume) => {
            ctx.mark("master.drop.trashed");
            commit_chunk(m, p, d, now, ctx);
        }
        (DropPhase::Committing, Event::Txn(Ok(()))) => commit_chunk(m, p, d, now, ctx),
        (DropPhase::Waiting, Event::Txn(Ok(())))
        | (DropPhase::Waiting, Event::Resume | Event::Retry) => {
            let due = d.delete_after.unwrap_or(now);
            if now >= due {
                d.phase = DropPhase::Deleting;
                p.body = ProcBody::Drop(d.clone());
                let fs = m.fs.clone();
                let proc_id = p.id;
                let job = ctx.start_job(
                    JobSpec::new("master.drop.delete_trash", Duration::from_millis(20)),
                    move || MasterJobOutput::TrashDeleted {
                        proc_id,
                        result: crate::master::gc::delete_tree(fs.as_ref(), &d.trash),
                    },
                );
                m.gc.jobs.insert(job, JobWhat::Proc(proc_id));
            } else {
                ctx.set_timer(due.since(now), MasterTimer::ProcRetry(p.id));
            }
        }
        (DropPhase::Deleting, Event::Job(Ok(_))) => {
            ctx.mark("master.drop.trash_deleted");
            d.phase = DropPhase::Finishing;
            p.body = ProcBody::Drop(d);
            m.proc_write(p, Vec::new(), true, "master.drop.before_finish", ctx);
        }
        (DropPhase::Deleting, Event::Job(Err(_))) => {
            d.phase = DropPhase::Waiting;
            p.body = ProcBody::Drop(d);
            m.proc_retry_later(p, ctx);
        }
        (DropPhase::Trashing, Event::Job(Err(_))) => m.proc_retry_later(p, ctx),
        (DropPhase::Finishing, Event::Txn(Ok(()))) => return Flow::Done,
        _ => {}
    }
    Flow::Continue
}

/// Delete the next chunk of tablet records; the last chunk also deletes the table and starts
/// the grace period.
fn commit_chunk(
    m: &mut Master,
    p: &mut Procedure,
    mut d: super::DropProc,
    now: Time,
    ctx: &mut Ctx<'_, Master>,
) {
    let ids: Vec<_> = m.st.tablets_of(&d.table).map(|t| t.rec.id).collect();
    let mut ops: Vec<Op> = ids
        .iter()
        .take(DROP_TABLETS_PER_TXN_MAX)
        .map(|id| Op::DeleteTablet(*id))
        .collect();
    if ids.len() <= DROP_TABLETS_PER_TXN_MAX {
        if m.st.tables.contains_key(&d.table) {
            ops.push(Op::DeleteTable(d.table.clone()));
        }
        d.phase = DropPhase::Waiting;
        d.delete_after = Some(now.plus(Duration::from_millis(m.cfg.trash_grace_ms)));
    } else {
        d.phase = DropPhase::Committing;
    }
    p.body = ProcBody::Drop(d);
    m.proc_write(p, ops, false, "master.drop.before_meta", ctx);
}
