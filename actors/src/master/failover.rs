//! Mastership: acquiring and renewing the lease, stepping down the moment it may have lapsed,
//! and rebuilding memory after winning it (meta snapshot, persisted procedures, then a query
//! round whose reports reconcile what nodes actually serve).
//!
//! Owns: the lease view and the Follower -> Rebuilding -> Leading life cycle.
//! Must not: act (write meta, command nodes, answer DDL) without a lease it is sure of.

use super::io::MetaPurpose;
use super::procedures::{Event, Procedure};
use super::state::MasterState;
use super::{LeaseView, Master, MasterTimer, Phase};
use crate::kernel::{Ctx, Time};
use crate::meta::{MetaCall, MetaError, MetaReply};
use crate::proto::admin::AdminError;
use std::time::Duration;
use tracing::{info, warn};

/// Progress of a rebuild after winning the lease.
#[derive(Clone, Debug, Default)]
pub struct Rebuild {
    /// The query round whose reports finish the rebuild.
    pub round: Option<u64>,
}

impl Master {
    pub(crate) fn send_acquire(&mut self, ctx: &mut Ctx<'_, Self>) {
        if self.phase != Phase::Follower {
            return;
        }
        let in_flight = self
            .io
            .meta
            .values()
            .any(|w| matches!(w.purpose, MetaPurpose::Acquire));
        if in_flight {
            return;
        }
        let addr = self.cfg.addr.clone();
        self.meta_send(
            MetaPurpose::Acquire,
            MetaCall::AcquireMasterLease { addr },
            ctx,
        );
    }

    pub(crate) fn on_acquired(
        &mut self,
        result: Result<MetaReply, MetaError>,
        sent_at: Time,
        ctx: &mut Ctx<'_, Self>,
    ) {
        if self.phase != Phase::Follower {
            return;
        }
        match result {
            Ok(MetaReply::Lease { lease, duration_ms }) if lease.holder == ctx.me() => {
                let valid_until = sent_at.plus(Duration::from_millis(duration_ms));
                if ctx.now() >= valid_until {
                    // The answer came too late to act on.
                    self.retry_acquire(ctx);
                    return;
                }
                info!(me = %ctx.me(), term = lease.term, "won the master lease; rebuilding");
                ctx.mark("master.lease.won");
                self.lease = Some(LeaseView {
                    term: lease.term,
                    valid_until,
                });
                self.phase = Phase::Rebuilding;
                self.rebuild = Some(Rebuild::default());
                self.arm_lease_timers(ctx);
                self.arm_renew(ctx);
                self.meta_send(MetaPurpose::Snapshot, MetaCall::Snapshot, ctx);
            }
            other => {
                if let Err(MetaError::LeaseTaken { .. }) = other {
                    ctx.mark("master.lease.taken");
                }
                self.retry_acquire(ctx);
            }
        }
    }

    fn retry_acquire(&mut self, ctx: &mut Ctx<'_, Self>) {
        let after = Duration::from_millis(self.cfg.acquire_retry_ms);
        ctx.set_timer(after, MasterTimer::Acquire);
    }

    fn arm_lease_timers(&mut self, ctx: &mut Ctx<'_, Self>) {
        if let Some(l) = self.lease {
            ctx.set_timer(l.valid_until.since(ctx.now()), MasterTimer::LeaseCheck);
        }
    }

    pub(crate) fn send_renew(&mut self, ctx: &mut Ctx<'_, Self>) {
        let Some(l) = self.lease else {
            return;
        };
        if self.phase == Phase::Follower {
            return;
        }
        self.meta_send(
            MetaPurpose::Renew,
            MetaCall::RenewMasterLease { term: l.term },
            ctx,
        );
        self.arm_renew(ctx);
    }

    fn arm_renew(&mut self, ctx: &mut Ctx<'_, Self>) {
        let every = Duration::from_millis(self.cfg.lease_renew_interval_ms);
        ctx.set_timer(every, MasterTimer::Renew(self.gen));
    }

    pub(crate) fn on_renewed(
        &mut self,
        result: Result<MetaReply, MetaError>,
        sent_at: Time,
        ctx: &mut Ctx<'_, Self>,
    ) {
        let Some(mut l) = self.lease else {
            return;
        };
        match result {
            Ok(MetaReply::Lease { lease, duration_ms })
                if lease.term == l.term && lease.holder == ctx.me() =>
            {
                // Counted from the send: the meta store extended it no earlier than that.
                let until = sent_at.plus(Duration::from_millis(duration_ms));
                if until > l.valid_until {
                    l.valid_until = until;
                    self.lease = Some(l);
                    self.arm_lease_timers(ctx);
                }
            }
            Err(MetaError::LeaseNotHeld { .. } | MetaError::LeaseTaken { .. }) => {
                ctx.mark("master.lease.renew_refused");
                warn!(term = l.term, "lease renewal refused; stepping down");
                self.step_down(ctx);
            }
            other => warn!(
                ?other,
                "lease renewal failed; the lease runs down unless renewed"
            ),
        }
    }

    /// Stop acting at once: forget memory, procedures and waits (all durable state is in
    /// meta), tell waiting admin callers, and compete for the lease again later.
    pub(crate) fn step_down(&mut self, ctx: &mut Ctx<'_, Self>) {
        self.forget(ctx);
        self.retry_acquire(ctx);
    }

    /// Memory may disagree with meta: forget it and acquire again (if the lease is still
    /// ours, the meta store renews it in place and we rebuild under the same term). The
    /// first resync acquires at once; each further one in a row, with no write committed in
    /// between, waits twice as long as the last, from `resync_backoff_min_ms` up to
    /// `resync_backoff_max_ms`: a meta store that refuses the same write after every rebuild
    /// must not turn the master into a busy loop of snapshots.
    pub(crate) fn resync(&mut self, ctx: &mut Ctx<'_, Self>) {
        self.forget(ctx);
        let wait = resync_wait(
            self.resyncs_in_a_row,
            self.cfg.resync_backoff_min_ms,
            self.cfg.resync_backoff_max_ms,
        );
        if !wait.is_zero() {
            ctx.mark("master.meta.resync_backoff");
        }
        self.resyncs_in_a_row = self.resyncs_in_a_row.saturating_add(1);
        ctx.set_timer(wait, MasterTimer::Acquire);
    }

    fn forget(&mut self, ctx: &mut Ctx<'_, Self>) {
        let waiting: Vec<_> = self
            .io
            .meta
            .values()
            .filter_map(|w| match &w.purpose {
                MetaPurpose::Txn(super::io::TxnOwner::Admin { client, req, .. }) => {
                    Some((*client, *req))
                }
                _ => None,
            })
            .collect();
        for (client, req) in waiting {
            self.admin_reply(client, req, Err(AdminError::NotMaster), ctx);
        }
        for w in self.io.meta.values() {
            if let Some(t) = w.timer {
                ctx.cancel_timer(t);
            }
        }
        for w in self.io.ctl.values() {
            if let Some(t) = w.timer {
                ctx.cancel_timer(t);
            }
        }
        self.io.meta.clear();
        self.io.ctl.clear();
        self.phase = Phase::Follower;
        self.lease = None;
        self.st = MasterState::default();
        self.procs.clear();
        self.query = Default::default();
        self.gc = Default::default();
        self.hints.clear();
        self.rebuild = None;
        self.gen += 1;
    }

    pub(crate) fn on_snapshot(
        &mut self,
        result: Result<MetaReply, MetaError>,
        ctx: &mut Ctx<'_, Self>,
    ) {
        if self.phase != Phase::Rebuilding {
            return;
        }
        let snap = match result {
            Ok(MetaReply::Snapshot(s)) => s,
            other => {
                warn!(?other, "snapshot failed; stepping down");
                self.step_down(ctx);
                return;
            }
        };
        self.st = MasterState::from_snapshot(&snap, ctx.now());
        for (id, v) in &snap.procedures {
            match Procedure::decode(&v.value) {
                Ok(p) => {
                    for t in p.body.tablets() {
                        self.st.next_tablet = self.st.next_tablet.max(t.0 + 1);
                    }
                    for t in p.body.locked_tablets() {
                        self.st.lock(t, *id);
                    }
                    self.procs.insert(*id, p);
                }
                Err(e) => {
                    // A record this master cannot read: leave it (and its tablets' locks
                    // unknown) rather than guess. Operators see it in the procedure table.
                    warn!(%id, %e, "cannot decode a persisted procedure; leaving it alone");
                    ctx.mark("master.rebuild.undecodable_procedure");
                }
            }
        }
        ctx.mark("master.rebuild.snapshot");
        let round = self.start_round(true, ctx);
        if let Some(r) = self.rebuild.as_mut() {
            r.round = round;
        }
    }

    /// The rebuild's query round is done: resume every procedure and start leading.
    pub(crate) fn finish_rebuild(&mut self, ctx: &mut Ctx<'_, Self>) {
        self.rebuild = None;
        self.phase = Phase::Leading;
        info!(me = %ctx.me(), term = self.term(), procedures = self.procs.len(), "leading");
        ctx.mark("master.rebuild.done");
        let ids: Vec<_> = self.procs.keys().copied().collect();
        for id in ids {
            ctx.mark("master.rebuild.resume_procedure");
            self.proc_event(id, Event::Resume, ctx);
        }
        self.assign_pass(ctx);
        self.arm_query_tick(ctx);
    }
}

/// The wait before acquiring again after `earlier` resyncs in a row: none for the first,
/// then `min_ms` doubling up to `max_ms`.
fn resync_wait(earlier: u32, min_ms: u64, max_ms: u64) -> Duration {
    if earlier == 0 {
        return Duration::ZERO;
    }
    let doubled = min_ms.saturating_mul(1u64 << (earlier - 1).min(32));
    Duration::from_millis(doubled.min(max_ms.max(min_ms)))
}

#[cfg(test)]
mod resync_tests {
    use super::resync_wait;
    use std::time::Duration;

    #[test]
    fn resync_waits_double_from_none_to_the_cap() {
        let ms = |n| resync_wait(n, 50, 2_000).as_millis();
        assert_eq!(resync_wait(0, 50, 2_000), Duration::ZERO);
        assert_eq!(
            [ms(1), ms(2), ms(3), ms(6), ms(7), ms(40)],
            [50, 100, 200, 1_600, 2_000, 2_000]
        );
        assert_eq!(ms(u32::MAX), 2_000);
    }
}
