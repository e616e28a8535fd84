//! Requests from the master to the meta store and to tablet nodes: ids, timeouts, bounded
//! retries, and routing each answer to whoever waits for it.
//!
//! Owns: [`Io`] (what is in flight) and the send/answer/timeout paths. A committed transaction
//! is applied to memory here, before its owner hears of it, so every owner sees memory that
//! matches meta. Retries reuse the request id, so the meta store's retry table answers a
//! retried transaction with its first outcome instead of running it twice.
//! Must not: decide what a procedure does with an answer.

use super::error::{CtlFail, TxnFail};
use super::procedures::Event;
use super::{Master, MasterTimer};
use crate::kernel::{Ctx, Epoch, NodeId, Time, TimerId};
use crate::meta::{
    MetaCall, MetaError, MetaMsg, MetaReply, MetaRequest, MetaResponse, Op, ProcedureId, RequestId,
    TabletId,
};
use crate::proto::admin::{AdminError, AdminMsg, AdminReply, AdminResponse};
use crate::proto::control::{
    ControlCmd, ControlError, ControlMsg, ControlReply, ControlRequest, ControlResponse,
};
use crate::proto::ClusterMsg;
use rand::Rng;
use std::collections::BTreeMap;
use std::time::Duration;
use tracing::{debug, warn};

/// Who waits for a meta answer.
#[derive(Clone, Debug)]
pub(crate) enum MetaPurpose {
    Acquire,
    Renew,
    Snapshot,
    ScanNodes,
    Txn(TxnOwner),
}

/// Who waits for a transaction.
#[derive(Clone, Debug)]
pub(crate) enum TxnOwner {
    /// An admin caller; `reply` is sent once the write commits.
    Admin {
        client: NodeId,
        req: RequestId,
        reply: AdminReply,
        /// The procedure the DDL write creates (its record is in the same transaction).
        start: Option<Box<super::procedures::Procedure>>,
    },
    Proc(ProcedureId),
    Stats,
    /// A fix-up of tablets outside any procedure (dead node, missing tablet).
    Repair,
}

#[derive(Clone, Debug)]
pub(crate) struct MetaWait {
    pub call: MetaCall,
    pub purpose: MetaPurpose,
    pub attempts: u32,
    pub maybe_applied: bool,
    pub timer: Option<TimerId>,
    pub sent_at: Time,
}

/// Who waits for a node's answer.
#[derive(Clone, Copy, Debug)]
pub(crate) enum CtlOwner {
    Proc(ProcedureId),
    Query(u64),
    /// An unload of a duplicate or stale copy found by a report; nobody waits.
    Reconcile,
}

#[derive(Clone, Debug)]
pub(crate) struct CtlWait {
    pub node: NodeId,
    pub req: ControlRequest,
    pub owner: CtlOwner,
    pub attempts: u32,
    pub timer: Option<TimerId>,
}

#[derive(Default)]
pub(crate) struct Io {
    base: u64,
    next: u64,
    pub meta: BTreeMap<RequestId, MetaWait>,
    pub ctl: BTreeMap<RequestId, CtlWait>,
}

impl Io {
    /// A restarted master must not reuse request ids (the meta store's retry table would
    /// answer a new request with an old outcome), so each incarnation draws random high bits.
    pub fn start_incarnation(&mut self, ctx: &mut Ctx<'_, Master>) {
        self.base = u64::from(ctx.rng().gen::<u32>()) << 32;
        self.next = 1;
    }
    fn alloc(&mut self) -> RequestId {
        let id = RequestId(self.base | (self.next & 0xffff_ffff));
        self.next += 1;
        id
    }
}

impl Master {
    pub(crate) fn meta_send(
        &mut self,
        purpose: MetaPurpose,
        call: MetaCall,
        ctx: &mut Ctx<'_, Self>,
    ) -> RequestId {
        let id = self.io.alloc();
        let wait = MetaWait {
            call,
            purpose,
            attempts: 0,
            maybe_applied: false,
            timer: None,
            sent_at: ctx.now(),
        };
        self.io.meta.insert(id, wait);
        self.resend_meta(id, ctx);
        id
    }

    /// A guarded transaction (lease check plus the versions memory holds).
    pub(crate) fn txn(&mut self, owner: TxnOwner, ops: Vec<Op>, ctx: &mut Ctx<'_, Self>) {
        let txn = self.st.guarded(ctx.me(), self.term(), ops);
        self.meta_send(MetaPurpose::Txn(owner), MetaCall::Txn(txn), ctx);
    }

    pub(crate) fn resend_meta(&mut self, id: RequestId, ctx: &mut Ctx<'_, Self>) {
        let timeout = Duration::from_millis(self.cfg.meta_timeout_ms);
        let meta = self.cfg.meta;
        let Some(w) = self.io.meta.get_mut(&id) else {
            return;
        };
        w.attempts += 1;
        w.sent_at = ctx.now();
        let call = w.call.clone();
        w.timer = Some(ctx.set_timer(timeout, MasterTimer::MetaTimeout(id)));
        ctx.send(
            meta,
            ClusterMsg::Meta(MetaMsg::Request(MetaRequest { id, call })),
        );
    }

    pub(crate) fn on_meta_timeout(&mut self, id: RequestId, ctx: &mut Ctx<'_, Self>) {
        let Some(w) = self.io.meta.get_mut(&id) else {
            return;
        };
        w.timer = None;
        if w.call.may_write() {
            w.maybe_applied = true;
        }
        ctx.mark("master.meta.timeout");
        self.retry_or_give_up(id, ctx);
    }

    fn retry_or_give_up(&mut self, id: RequestId, ctx: &mut Ctx<'_, Self>) {
        let Some(w) = self.io.meta.get(&id) else {
            return;
        };
        // Lease calls are not retried here: a lost renewal just lets the lease run down, and
        // acquisition has its own timer.
        let retryable = !matches!(w.purpose, MetaPurpose::Acquire | MetaPurpose::Renew);
        if retryable && w.attempts < self.cfg.meta_write_retries_max {
            let backoff = Duration::from_millis(self.cfg.meta_retry_backoff_ms);
            ctx.set_timer(backoff, MasterTimer::MetaRetry(id));
            return;
        }
        let Some(w) = self.io.meta.remove(&id) else {
            return;
        };
        ctx.mark("master.meta.retries_exhausted");
        let fail = TxnFail::Exhausted {
            attempts: w.attempts,
            maybe_applied: w.maybe_applied,
        };
        self.meta_failed(w, fail, ctx);
    }

    pub(crate) fn on_meta_response(&mut self, resp: MetaResponse, ctx: &mut Ctx<'_, Self>) {
        let Some(w) = self.io.meta.get_mut(&resp.id) else {
            debug!(id = ?resp.id, "late meta response ignored");
            return;
        };
        if let Some(t) = w.timer.take() {
            ctx.cancel_timer(t);
        }
        match resp.result {
            Err(e @ (MetaError::Busy | MetaError::Unavailable | MetaError::OutcomeUnknown))
                if !matches!(w.purpose, MetaPurpose::Acquire | MetaPurpose::Renew) =>
            {
                // Busy and Unavailable say this attempt was not applied (an earlier attempt
                // that timed out already set the flag); only OutcomeUnknown leaves it open. A
                // write that surely did not land is re-sent by its owner instead of making the
                // whole master resync (a meta store reboot answers Unavailable for a while).
                if w.call.may_write() && e == MetaError::OutcomeUnknown {
                    w.maybe_applied = true;
                }
                self.retry_or_give_up(resp.id, ctx);
            }
            result => {
                let Some(w) = self.io.meta.remove(&resp.id) else {
                    return;
                };
                self.meta_answered(w, result, ctx);
            }
        }
    }

    fn meta_answered(
        &mut self,
        w: MetaWait,
        result: Result<MetaReply, MetaError>,
        ctx: &mut Ctx<'_, Self>,
    ) {
        match w.purpose {
            MetaPurpose::Acquire => self.on_acquired(result, w.sent_at, ctx),
            MetaPurpose::Renew => self.on_renewed(result, w.sent_at, ctx),
            MetaPurpose::Snapshot => self.on_snapshot(result, ctx),
            MetaPurpose::ScanNodes => self.on_nodes_scanned(result, ctx),
            MetaPurpose::Txn(owner) => {
                let MetaCall::Txn(txn) = &w.call else {
                    unreachable!("a txn purpose always carries a txn call");
                };
                match result {
                    Ok(MetaReply::Committed { revision }) => {
                        self.resyncs_in_a_row = 0;
                        self.st.apply(txn, revision, ctx.now());
                        self.txn_done(owner, Ok(()), ctx);
                    }
                    Ok(other) => {
                        warn!(?other, "meta answered a txn with something else");
                        self.meta_failed_owner(owner, TxnFail::Refused(MetaError::Unavailable), ctx)
                    }
                    Err(e) => self.meta_failed_owner(owner, TxnFail::Refused(e), ctx),
                }
            }
        }
    }

    fn meta_failed(&mut self, w: MetaWait, fail: TxnFail, ctx: &mut Ctx<'_, Self>) {
        match w.purpose {
            MetaPurpose::Txn(owner) => self.meta_failed_owner(owner, fail, ctx),
            MetaPurpose::Acquire => self.on_acquired(Err(MetaError::Unavailable), w.sent_at, ctx),
            MetaPurpose::Renew => {}
            // Without a snapshot or node list the master cannot act safely.
            MetaPurpose::Snapshot | MetaPurpose::ScanNodes => {
                warn!(%fail, "meta read failed; stepping down");
                self.step_down(ctx);
            }
        }
    }

    fn meta_failed_owner(&mut self, owner: TxnOwner, fail: TxnFail, ctx: &mut Ctx<'_, Self>) {
        if let TxnOwner::Admin { client, req, .. } = &owner {
            self.admin_reply(
                *client,
                *req,
                Err(AdminError::MetaUnavailable(fail.to_string())),
                ctx,
            );
        }
        let lease_lost = matches!(
            fail,
            TxnFail::Refused(MetaError::LeaseNotHeld { .. } | MetaError::LeaseTaken { .. })
        );
        if matches!(owner, TxnOwner::Stats) && !lease_lost {
            // Stat rows are upserts that memory does not mirror: a lost one costs nothing.
            debug!(%fail, "stat rows not written");
            return;
        }
        match &fail {
            TxnFail::Refused(MetaError::LeaseNotHeld { .. } | MetaError::LeaseTaken { .. }) => {
                ctx.mark("master.lease.lost_on_write");
                self.step_down(ctx);
            }
            // Memory may disagree with meta (a write may have landed, or another writer was
            // faster): throw memory away and rebuild it under the same lease.
            TxnFail::Exhausted {
                maybe_applied: true,
                ..
            }
            | TxnFail::Refused(_) => {
                ctx.mark("master.meta.resync");
                warn!(%fail, "meta write outcome unknown or refused; resyncing");
                self.resync(ctx);
            }
            TxnFail::Exhausted { .. } => self.txn_done(owner, Err(fail), ctx),
        }
    }

    fn txn_done(&mut self, owner: TxnOwner, result: Result<(), TxnFail>, ctx: &mut Ctx<'_, Self>) {
        match owner {
            TxnOwner::Admin {
                client,
                req,
                reply,
                start,
            } => {
                if result.is_ok() {
                    self.admin_reply(client, req, Ok(reply), ctx);
                    self.after_ddl(start, ctx);
                }
            }
            TxnOwner::Proc(id) => self.proc_event(id, Event::Txn(result), ctx),
            TxnOwner::Stats => {}
            TxnOwner::Repair => {
                self.st.unlock_all(super::balance::REPAIR_LOCK);
                if result.is_ok() {
                    self.assign_pass(ctx);
                }
            }
        }
    }

    pub(crate) fn admin_reply(
        &mut self,
        client: NodeId,
        id: RequestId,
        result: Result<AdminReply, AdminError>,
        ctx: &mut Ctx<'_, Self>,
    ) {
        ctx.send(
            client,
            ClusterMsg::Admin(AdminMsg::Response(AdminResponse { id, result })),
        );
    }

    // ---- control path ----

    pub(crate) fn ctl_send(
        &mut self,
        node: NodeId,
        epoch: Epoch,
        cmd: ControlCmd,
        owner: CtlOwner,
        ctx: &mut Ctx<'_, Self>,
    ) -> RequestId {
        let id = self.io.alloc();
        let req = ControlRequest {
            id,
            term: self.term(),
            node_epoch: epoch,
            cmd,
        };
        self.io.ctl.insert(
            id,
            CtlWait {
                node,
                req,
                owner,
                attempts: 0,
                timer: None,
            },
        );
        self.resend_ctl(id, ctx);
        id
    }

    pub(crate) fn resend_ctl(&mut self, id: RequestId, ctx: &mut Ctx<'_, Self>) {
        let timeout = match self.io.ctl.get(&id).map(|w| w.owner) {
            Some(CtlOwner::Query(_)) => self.cfg.query_deadline_ms,
            _ => self.cfg.control_timeout_ms,
        };
        let Some(w) = self.io.ctl.get_mut(&id) else {
            return;
        };
        w.attempts += 1;
        w.timer = Some(ctx.set_timer(Duration::from_millis(timeout), MasterTimer::CtlTimeout(id)));
        let msg = ClusterMsg::Control(ControlMsg::Request(w.req.clone()));
        ctx.send(w.node, msg);
    }

    pub(crate) fn on_ctl_timeout(&mut self, id: RequestId, ctx: &mut Ctx<'_, Self>) {
        let Some(w) = self.io.ctl.get_mut(&id) else {
            return;
        };
        w.timer = None;
        ctx.mark("master.control.timeout");
        if w.attempts < self.cfg.control_retries_max && !matches!(w.owner, CtlOwner::Query(_)) {
            let backoff = Duration::from_millis(self.cfg.control_retry_backoff_ms);
            ctx.set_timer(backoff, MasterTimer::CtlRetry(id));
            return;
        }
        if let Some(w) = self.io.ctl.remove(&id) {
            self.ctl_done(w, Err(CtlFail::NoAnswer), ctx);
        }
    }

    pub(crate) fn on_control_response(
        &mut self,
        from: NodeId,
        resp: ControlResponse,
        ctx: &mut Ctx<'_, Self>,
    ) {
        let Some(w) = self.io.ctl.get_mut(&resp.id) else {
            debug!(id = ?resp.id, "late control response ignored");
            return;
        };
        if w.node != from {
            warn!(%from, expected = %w.node, "control response from the wrong node ignored");
            return;
        }
        if let Some(t) = w.timer.take() {
            ctx.cancel_timer(t);
        }
        match resp.result {
            Err(ControlError::StaleTerm { asked, seen }) => {
                // A node has obeyed a newer master: this one is deposed.
                ctx.mark("master.fenced_by_node");
                warn!(asked, seen, "a node saw a newer master term; stepping down");
                self.step_down(ctx);
            }
            Err(ControlError::Busy { .. }) if w.attempts < self.cfg.control_retries_max => {
                let backoff = Duration::from_millis(self.cfg.control_retry_backoff_ms);
                ctx.set_timer(backoff, MasterTimer::CtlRetry(resp.id));
            }
            result => {
                if let Some(w) = self.io.ctl.remove(&resp.id) {
                    self.ctl_done(w, result.map_err(CtlFail::Error), ctx);
                }
            }
        }
    }

    fn ctl_done(
        &mut self,
        w: CtlWait,
        result: Result<ControlReply, CtlFail>,
        ctx: &mut Ctx<'_, Self>,
    ) {
        match w.owner {
            CtlOwner::Proc(id) => {
                let tablet = cmd_tablet(&w.req.cmd);
                self.proc_event(id, Event::Ctl { tablet, result }, ctx)
            }
            CtlOwner::Query(round) => self.on_report(round, w.node, result, ctx),
            CtlOwner::Reconcile => {
                if let Err(e) = result {
                    debug!(node = %w.node, %e, "reconcile unload failed; the next round retries");
                }
            }
        }
    }
}

/// The tablet a command is about.
pub(crate) fn cmd_tablet(cmd: &ControlCmd) -> Option<TabletId> {
    match cmd {
        ControlCmd::Load { tablet, .. } => Some(tablet.id),
        ControlCmd::Unload { tablet, .. } | ControlCmd::Split { tablet, .. } => Some(*tablet),
        ControlCmd::Query { .. } => None,
    }
}
