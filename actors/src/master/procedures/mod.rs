//! Procedures: the master's phase machines, persisted in meta (seed 001's merge is the
//! model). Each phase that changes tablets writes, in the same transaction, the tablets' new
//! states and the procedure record with its next phase and payload, so a master that dies at
//! any point leaves meta saying exactly where the procedure stood; its successor decodes the
//! record and resumes or rolls back (each kind's `resume` says which).
//!
//! Owns: [`Procedure`], its encoding into [`ProcedureRecord`], per-tablet locks, and the
//! driver that routes events (transaction committed, node answered, retry timer, job done)
//! to the kind's step function. A phase's transaction that gives up without landing is sent
//! again, unchanged, after `proc_retry_ms` (a procedure never abandons a half-written phase,
//! and step functions never see a failed write); a write whose outcome is unknown makes the
//! master resync instead.
//! Must not: write a tablet change without the procedure record in the same transaction.

mod load;
mod merge;
mod mv;
mod split;
mod table;

pub use load::{LoadPhase, LoadProc, UnloadPhase, UnloadProc};
pub use merge::{MergePhase, MergeProc, ParentUnload};
pub use mv::{MovePhase, MoveProc};
pub use split::{SplitPhase, SplitProc};
pub use table::{DropPhase, DropProc, TablePhase, TableProc};

use super::error::{CtlFail, TxnFail};
use super::io::TxnOwner;
use super::{Master, MasterTimer};
use crate::kernel::{Ctx, Time};
use crate::meta::{Op, ProcedureId, ProcedureKind, ProcedureRecord, TabletId};
use crate::proto::control::ControlReply;
use serde::{Deserialize, Serialize};
use std::time::Duration;
use tracing::{debug, error, warn};

/// A procedure's kind-specific state. Encoded whole (bincode) as the record's payload.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ProcBody {
    Load(LoadProc),
    Unload(UnloadProc),
    Move(MoveProc),
    Split(SplitProc),
    Merge(MergeProc),
    Create(TableProc),
    Disable(TableProc),
    Enable(TableProc),
    Drop(DropProc),
}

impl ProcBody {
    pub fn kind(&self) -> ProcedureKind {
        match self {
            ProcBody::Load(_) => ProcedureKind::Load,
            ProcBody::Unload(_) => ProcedureKind::Unload,
            ProcBody::Move(_) => ProcedureKind::Move,
            ProcBody::Split(_) => ProcedureKind::Split,
            ProcBody::Merge(_) => ProcedureKind::Merge,
            ProcBody::Create(_) => ProcedureKind::CreateTable,
            ProcBody::Disable(_) => ProcedureKind::DisableTable,
            ProcBody::Enable(_) => ProcedureKind::EnableTable,
            ProcBody::Drop(_) => ProcedureKind::DropTable,
        }
    }

    /// The phase name operators see (and tests assert on).
    pub fn phase_name(&self) -> &'static str {
        match self {
            ProcBody::Load(p) => p.phase.name(),
            ProcBody::Unload(p) => p.phase.name(),
            ProcBody::Move(p) => p.phase.name(),
            ProcBody::Split(p) => p.phase.name(),
            ProcBody::Merge(p) => p.phase.name(),
            ProcBody::Create(p) | ProcBody::Disable(p) | ProcBody::Enable(p) => p.phase.name(),
            ProcBody::Drop(p) => p.phase.name(),
        }
    }

    /// Every tablet id the procedure refers to (including ids it allocated but meta does not
    /// hold yet: split children, a merged tablet), so no one reuses or collects them.
    pub fn tablets(&self) -> Vec<TabletId> {
        match self {
            ProcBody::Load(p) => vec![p.tablet],
            ProcBody::Unload(p) => vec![p.tablet],
            ProcBody::Move(p) => vec![p.tablet],
            ProcBody::Split(p) => vec![p.tablet, p.left, p.right],
            ProcBody::Merge(p) => vec![p.left, p.right, p.merged],
            ProcBody::Create(_) | ProcBody::Disable(_) | ProcBody::Enable(_) => Vec::new(),
            ProcBody::Drop(_) => Vec::new(),
        }
    }

    /// The tablets it holds the lock on.
    pub fn locked_tablets(&self) -> Vec<TabletId> {
        self.tablets()
    }

    /// The state a successor finds once the write of the current phase committed (a body is
    /// persisted while its phase names the write in flight).
    pub fn committed(mut self) -> Self {
        match &mut self {
            ProcBody::Load(p) => {
                if p.phase == LoadPhase::Assigning {
                    p.phase = LoadPhase::Loading;
                }
            }
            ProcBody::Unload(p) => {
                if p.phase == UnloadPhase::Marking {
                    p.phase = UnloadPhase::Unloading;
                }
            }
            ProcBody::Move(p) => p.phase = p.phase.committed(),
            ProcBody::Split(p) => p.phase = p.phase.committed(),
            ProcBody::Merge(p) => p.phase = p.phase.committed(),
            ProcBody::Create(p) | ProcBody::Disable(p) | ProcBody::Enable(p) => {
                p.phase = p.phase.committed()
            }
            ProcBody::Drop(p) => p.phase = p.phase.committed(),
        }
        self
    }

    pub fn table(&self) -> Option<&str> {
        match self {
            ProcBody::Create(p) | ProcBody::Disable(p) | ProcBody::Enable(p) => Some(&p.table),
            ProcBody::Drop(p) => Some(&p.table),
            _ => None,
        }
    }
}

/// A running procedure.
#[derive(Clone, Debug)]
pub struct Procedure {
    pub id: ProcedureId,
    pub body: ProcBody,
    pub started_at: Time,
    /// A phase transaction waiting for `ProcRetry` to be sent (again). Not persisted: a
    /// successor recomputes it from the persisted phase.
    pub(crate) pending: Option<Vec<Op>>,
    /// The phase transaction in flight, kept until it is answered: if it gives up without
    /// landing, the same write is sent again (the step functions never see the failure, and
    /// so need no arm for it in any phase).
    pub(crate) in_flight: Option<Vec<Op>>,
}

#[derive(Debug, thiserror::Error)]
#[error("cannot decode procedure payload: {0}")]
pub struct DecodeError(String);

impl Procedure {
    pub fn new(id: ProcedureId, body: ProcBody, started_at: Time) -> Self {
        Procedure {
            id,
            body,
            started_at,
            pending: None,
            in_flight: None,
        }
    }

    pub fn record(&self) -> ProcedureRecord {
        ProcedureRecord {
            id: self.id,
            kind: self.body.kind(),
            phase: self.body.phase_name().to_string(),
            tablets: self.body.locked_tablets(),
            table: self.body.table().map(str::to_string),
            // Encoding plain enums and vectors cannot fail; an empty payload would fail to
            // decode later and leave the procedure for an operator, never a wrong guess.
            payload: bincode::serialize(&self.body).unwrap_or_default(),
            started_at: self.started_at,
        }
    }

    pub fn decode(rec: &ProcedureRecord) -> Result<Self, DecodeError> {
        let body: ProcBody =
            bincode::deserialize(&rec.payload).map_err(|e| DecodeError(e.to_string()))?;
        if body.kind() != rec.kind {
            return Err(DecodeError(format!(
                "kind {:?} does not match payload {:?}",
                rec.kind,
                body.kind()
            )));
        }
        Ok(Procedure::new(rec.id, body.committed(), rec.started_at))
    }
}

/// What happened to a procedure.
#[derive(Debug)]
pub enum Event {
    /// Just created by this master.
    Start,
    /// Decoded from meta by a master that just won the lease.
    Resume,
    /// Its phase transaction committed (failures never reach the step functions).
    Txn(Result<(), TxnFail>),
    /// A node answered a command about `tablet` (or never did).
    Ctl {
        tablet: Option<TabletId>,
        result: Result<ControlReply, CtlFail>,
    },
    /// Its retry timer fired.
    Retry,
    /// A periodic look at the cluster (table procedures watch their tablets).
    Pass,
    /// Its file-store job finished.
    Job(Result<u64, String>),
}

/// What a step function tells the driver.
#[derive(Debug, PartialEq, Eq)]
pub enum Flow {
    Continue,
    /// The procedure's record is gone from meta; drop it and release its locks.
    Done,
}

impl Master {
    /// Create a procedure, lock its tablets and start it. Fails (returns None) when a tablet
    /// is already locked or the procedure limit is reached.
    pub(crate) fn start_procedure(
        &mut self,
        body: ProcBody,
        ctx: &mut Ctx<'_, Self>,
    ) -> Option<ProcedureId> {
        if self.procs.len() >= self.cfg.procedures_max {
            ctx.mark("master.proc.limit");
            return None;
        }
        let locks = body.locked_tablets();
        let busy = locks
            .iter()
            .any(|t| self.st.tablets.get(t).is_some_and(|m| m.lock.is_some()));
        if busy {
            return None;
        }
        let id = self.st.alloc_proc();
        for t in locks {
            self.st.lock(t, id);
        }
        let p = Procedure::new(id, body, ctx.now());
        debug!(%id, kind = ?p.body.kind(), "procedure started");
        self.procs.insert(id, p);
        self.proc_event(id, Event::Start, ctx);
        Some(id)
    }

    /// Route an event to its procedure's step function.
    pub(crate) fn proc_event(&mut self, id: ProcedureId, ev: Event, ctx: &mut Ctx<'_, Self>) {
        let Some(mut p) = self.procs.remove(&id) else {
            return;
        };
        let ev = match ev {
            Event::Txn(Err(fail)) => {
                // The phase's write gave up without landing (only a write surely not applied
                // gets here; a maybe-applied one resyncs): send the same write again later.
                let Some(ops) = p.in_flight.take() else {
                    // No write of this procedure was in flight: memory cannot say where it
                    // stands, so trust meta instead.
                    error!(%id, %fail, "a procedure write failed that it never sent; resyncing");
                    self.procs.insert(id, p);
                    self.resync(ctx);
                    return;
                };
                warn!(%id, %fail, "procedure write failed; sending it again later");
                ctx.mark("master.proc.txn_retry");
                p.pending = Some(ops);
                let after = Duration::from_millis(self.cfg.proc_retry_ms);
                ctx.set_timer(after, MasterTimer::ProcRetry(id));
                self.procs.insert(id, p);
                return;
            }
            Event::Txn(Ok(())) => {
                p.in_flight = None;
                Event::Txn(Ok(()))
            }
            Event::Retry if p.pending.is_some() => {
                let ops = p.pending.take().unwrap_or_default();
                if ops.is_empty() {
                    // A phase with nothing to write: it "committed" trivially.
                    Event::Txn(Ok(()))
                } else if self.creates_record(&p, &ops) {
                    self.restart_fresh(p, ctx);
                    return;
                } else {
                    p.in_flight = Some(ops.clone());
                    self.procs.insert(id, p);
                    self.txn(TxnOwner::Proc(id), ops, ctx);
                    return;
                }
            }
            ev => ev,
        };
        let flow = match &mut p.body {
            ProcBody::Load(_) | ProcBody::Unload(_) => load::step(self, &mut p, ev, ctx),
            ProcBody::Move(_) => mv::step(self, &mut p, ev, ctx),
            ProcBody::Split(_) => split::step(self, &mut p, ev, ctx),
            ProcBody::Merge(_) => merge::step(self, &mut p, ev, ctx),
            ProcBody::Create(_) | ProcBody::Disable(_) | ProcBody::Enable(_) => {
                table::step(self, &mut p, ev, ctx)
            }
            ProcBody::Drop(_) => table::step_drop(self, &mut p, ev, ctx),
        };
        match flow {
            Flow::Continue => {
                self.procs.insert(id, p);
            }
            Flow::Done => {
                debug!(%id, "procedure done");
                self.st.unlock_all(id);
                if self.phase == super::Phase::Leading {
                    self.assign_pass(ctx);
                }
            }
        }
    }

    /// Is `ops` the procedure's first write (the one creating its record)?
    fn creates_record(&self, p: &Procedure, ops: &[Op]) -> bool {
        !self.st.proc_cas.contains_key(&p.id)
            && ops
                .iter()
                .any(|o| matches!(o, Op::PutProcedure(r) if r.id == p.id))
    }

    /// Start a procedure whose record never reached meta again under a fresh id. The meta
    /// store refuses to create a record below the highest id it has seen (ids are never
    /// reused), so a first write sent late, after a younger procedure's landed, would be
    /// refused and make the master resync. Nothing of it was persisted and its first phase
    /// recomputes its write from memory, so starting over is exact.
    fn restart_fresh(&mut self, mut p: Procedure, ctx: &mut Ctx<'_, Self>) {
        self.st.unlock_all(p.id);
        let id = self.st.alloc_proc();
        for t in p.body.locked_tablets() {
            self.st.lock(t, id);
        }
        debug!(old = %p.id, new = %id, "procedure restarted under a fresh id");
        ctx.mark("master.proc.fresh_id");
        p.id = id;
        p.pending = None;
        p.in_flight = None;
        self.procs.insert(id, p);
        self.proc_event(id, Event::Start, ctx);
    }

    /// Write a phase: `ops` plus the procedure record (put with the body's current phase, or
    /// deleted when `done`). `point` is a buggify point: when it fires the write is delayed
    /// through the retry path (a legal, rarely taken path).
    pub(crate) fn proc_write(
        &mut self,
        p: &mut Procedure,
        mut ops: Vec<Op>,
        done: bool,
        point: &'static str,
        ctx: &mut Ctx<'_, Self>,
    ) {
        if done {
            if let Some(mark) = final_phase_mark(p.body.kind(), p.body.phase_name()) {
                ctx.mark(mark);
            }
            if self.st.proc_cas.contains_key(&p.id) {
                ops.push(Op::DeleteProcedure(p.id));
            }
        } else {
            ops.push(Op::PutProcedure(p.record()));
        }
        if ops.is_empty() {
            // Nothing was ever persisted and nothing changes: finish without a write.
            ctx.set_timer(Duration::ZERO, MasterTimer::ProcRetry(p.id));
            p.pending = Some(Vec::new());
            return;
        }
        if ctx.buggify(point) {
            p.pending = Some(ops);
            let after = Duration::from_millis(self.cfg.proc_retry_ms);
            ctx.set_timer(after, MasterTimer::ProcRetry(p.id));
            return;
        }
        p.in_flight = Some(ops.clone());
        self.txn(TxnOwner::Proc(p.id), ops, ctx);
    }

    /// Retry the current phase's node command later.
    pub(crate) fn proc_retry_later(&mut self, p: &Procedure, ctx: &mut Ctx<'_, Self>) {
        let after = Duration::from_millis(self.cfg.proc_retry_ms);
        ctx.set_timer(after, MasterTimer::ProcRetry(p.id));
    }

    /// Table procedures watch their tablets on every pass.
    pub(crate) fn table_procs_pass(&mut self, ctx: &mut Ctx<'_, Self>) {
        let ids: Vec<ProcedureId> = self
            .procs
            .iter()
            .filter(|(_, p)| {
                matches!(
                    p.body,
                    ProcBody::Create(_) | ProcBody::Disable(_) | ProcBody::Enable(_)
                )
            })
            .map(|(id, _)| *id)
            .collect();
        for id in ids {
            self.proc_event(id, Event::Pass, ctx);
        }
    }
}

/// The phases a procedure passes only in memory: the one write of each ends the procedure
/// and deletes its record, so no meta record ever names the phase. On entering one the master
/// hits the mark given here, which fault triggers (`sim/src/run/triggers.rs`) watch instead.
pub const IN_MEMORY_PHASES: [(ProcedureKind, &str, &str); 10] = [
    (
        ProcedureKind::Split,
        "committing",
        "master.split.committing",
    ),
    (
        ProcedureKind::Split,
        "rolling_back",
        "master.split.rolling_back",
    ),
    (ProcedureKind::Merge, "finishing", "master.merge.finishing"),
    (
        ProcedureKind::Merge,
        "rolling_back",
        "master.merge.rolling_back",
    ),
    (ProcedureKind::Load, "finishing", "master.load.finishing"),
    (
        ProcedureKind::Unload,
        "finishing",
        "master.unload.finishing",
    ),
    (ProcedureKind::Move, "finishing", "master.move.finishing"),
    (
        ProcedureKind::DisableTable,
        "finishing",
        "master.disable.finishing",
    ),
    (
        ProcedureKind::EnableTable,
        "finishing",
        "master.enable.finishing",
    ),
    (
        ProcedureKind::DropTable,
        "finishing",
        "master.drop.finishing",
    ),
];

/// The mark of an in-memory phase ([`IN_MEMORY_PHASES`]), if `phase` of `kind` is one.
fn final_phase_mark(kind: ProcedureKind, phase: &str) -> Option<&'static str> {
    IN_MEMORY_PHASES
        .iter()
        .find(|(k, p, _)| *k == kind && *p == phase)
        .map(|(_, _, mark)| *mark)
}
