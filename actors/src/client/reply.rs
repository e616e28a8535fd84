//! How the [`Client`] handles answers: locations from the meta store, data replies (including
//! scan continuation and batch-write parts), admin replies, and request timeouts.
//!
//! Must not: retry a mutation whose answer was lost; that outcome is reported unknown.

use super::core::{Client, Op, Progress, ReqKind};
use super::ops::OpId;
use super::ops::OpInput;
use super::ops::{ClientError, OpOutput, OpResult};
use crate::kernel::Ctx;
use crate::meta::{MetaError, MetaReply, MetaResponse, RequestId, TabletLocation};
use crate::proto::admin::{AdminError, AdminResponse};
use crate::proto::data::{DataError, DataReply, DataResponse};
use tracing::debug;

impl Client {
    pub(super) fn on_meta(&mut self, resp: MetaResponse, ctx: &mut Ctx<'_, Self>) {
        let Some(req) = self.reqs.remove(&resp.id) else {
            return;
        };
        ctx.cancel_timer(req.timer);
        let id = req.op;
        match req.kind {
            ReqKind::Locate => {
                let table = self
                    .ops
                    .get(&id)
                    .and_then(|o| o.input.table().map(str::to_string));
                if let Some(o) = self.ops.get_mut(&id) {
                    o.locating = false;
                }
                match (resp.result, table) {
                    (Ok(MetaReply::Locations(locs)), Some(table)) => {
                        for l in locs {
                            self.cache.insert(&table, l);
                        }
                        if let Some(o) = self.ops.get_mut(&id) {
                            o.located = true;
                        }
                        self.drive(id, ctx);
                    }
                    (other, _) => self.refused(id, format!("locate: {other:?}"), ctx),
                }
            }
            ReqKind::MasterLease => match resp.result {
                Ok(MetaReply::LeaseState(Some(lease))) => {
                    self.master = Some(lease.holder);
                    self.drive(id, ctx);
                }
                other => self.refused(id, format!("no master: {other:?}"), ctx),
            },
            ReqKind::Meta => self.on_meta_call(id, resp.result, ctx),
            _ => debug!("meta answer to a request of another kind"),
        }
    }

    /// The answer to a client meta call: done, refused-and-retried (busy, unavailable), or
    /// failed with the store's typed error.
    fn on_meta_call(
        &mut self,
        id: OpId,
        result: Result<MetaReply, MetaError>,
        ctx: &mut Ctx<'_, Self>,
    ) {
        let retry_safe = match self.ops.get(&id).map(|o| &o.input) {
            Some(OpInput::Meta(call)) => OpInput::meta_retry_safe(call),
            _ => return,
        };
        match result {
            Ok(reply) => self.complete(id, OpResult::Done(OpOutput::Meta(reply)), ctx),
            Err(e @ (MetaError::Busy | MetaError::Unavailable)) => {
                self.refused(id, e.to_string(), ctx)
            }
            Err(MetaError::OutcomeUnknown) if retry_safe => {
                self.refused(id, MetaError::OutcomeUnknown.to_string(), ctx)
            }
            Err(MetaError::OutcomeUnknown) => self.complete(
                id,
                OpResult::Unknown(ClientError::Meta(MetaError::OutcomeUnknown)),
                ctx,
            ),
            Err(e) => self.complete(id, OpResult::Failed(ClientError::Meta(e)), ctx),
        }
    }

    pub(super) fn on_admin(&mut self, resp: AdminResponse, ctx: &mut Ctx<'_, Self>) {
        let Some(req) = self.reqs.remove(&resp.id) else {
            return;
        };
        ctx.cancel_timer(req.timer);
        match resp.result {
            Ok(reply) => self.complete(req.op, OpResult::Done(OpOutput::Admin(reply)), ctx),
            Err(AdminError::NotMaster) => {
                self.master = None;
                self.refused(req.op, "not the master".into(), ctx);
            }
            Err(e) => self.complete(req.op, OpResult::Failed(ClientError::Admin(e)), ctx),
        }
    }

    pub(super) fn on_data(&mut self, resp: DataResponse, ctx: &mut Ctx<'_, Self>) {
        let Some(req) = self.reqs.remove(&resp.id) else {
            return;
        };
        ctx.cancel_timer(req.timer);
        let id = req.op;
        let ReqKind::Data { table, loc, rows } = req.kind else {
            return;
        };
        let Some(op) = self.ops.get_mut(&id) else {
            return;
        };
        let mutation = op.input.is_mutation();
        if let Progress::Write {
            parts_in_flight, ..
        } = &mut op.progress
        {
            *parts_in_flight = parts_in_flight.saturating_sub(1);
        }
        match resp.result {
            Ok(reply) => self.on_data_ok(id, &loc, reply, ctx),
            Err(e) if e.is_retryable() => {
                ctx.mark("client.stale_location");
                self.cache.invalidate(&table, loc.tablet);
                if let Some(Op {
                    progress: Progress::Write { pending, .. },
                    ..
                }) = self.ops.get_mut(&id)
                {
                    pending.extend(rows);
                }
                self.refused(id, e.to_string(), ctx);
            }
            Err(e) => {
                let any_done = matches!(op.progress, Progress::Write { any_done: true, .. });
                let result = if mutation && (any_done || matches!(e, DataError::Storage(_))) {
                    OpResult::Unknown(ClientError::Data(e))
                } else {
                    OpResult::Failed(ClientError::Data(e))
                };
                self.complete(id, result, ctx);
            }
        }
    }

    pub(super) fn on_data_ok(
        &mut self,
        id: OpId,
        loc: &TabletLocation,
        reply: DataReply,
        ctx: &mut Ctx<'_, Self>,
    ) {
        let Some(op) = self.ops.get_mut(&id) else {
            return;
        };
        let output = match (&mut op.progress, reply) {
            (
                Progress::Write {
                    pending,
                    parts_in_flight,
                    any_done,
                },
                DataReply::Written,
            ) => {
                *any_done = true;
                op.attempts = 0;
                if !pending.is_empty() || *parts_in_flight > 0 {
                    self.drive(id, ctx);
                    return;
                }
                OpOutput::Written
            }
            (
                Progress::Scan { cursor, rows },
                DataReply::Scanned {
                    rows: got,
                    more,
                    resume,
                },
            ) => {
                let OpInput::Scan {
                    start,
                    end,
                    reverse,
                    limit,
                    ..
                } = &op.input
                else {
                    return;
                };
                rows.extend(got);
                rows.truncate(*limit as usize);
                op.attempts = 0;
                let full = rows.len() >= *limit as usize;
                let next = match (more, resume) {
                    (true, Some(r)) if *reverse => Some(r),
                    (true, Some(mut r)) => {
                        // Forward: the smallest row after the last one returned.
                        r.push(0);
                        Some(r)
                    }
                    (true, None) => None,
                    (false, _) if *reverse => {
                        (!loc.start.is_empty() && loc.start > *start).then(|| loc.start.clone())
                    }
                    (false, _) => (!loc.end.is_empty() && (end.is_empty() || loc.end < *end))
                        .then(|| loc.end.clone()),
                };
                match next {
                    Some(n) if !full => {
                        ctx.mark("client.scan_continues");
                        *cursor = n;
                        self.drive(id, ctx);
                        return;
                    }
                    _ => OpOutput::Rows(std::mem::take(rows)),
                }
            }
            (_, DataReply::Row(r)) => OpOutput::Row(r),
            (_, DataReply::Checked { matched }) => OpOutput::Checked(matched),
            (_, DataReply::Counter { value }) => OpOutput::Counter(value),
            (_, DataReply::Appended { value }) => OpOutput::Appended(value),
            (_, other) => {
                let err =
                    ClientError::Data(DataError::Storage(format!("unexpected reply {other:?}")));
                self.complete(id, OpResult::Unknown(err), ctx);
                return;
            }
        };
        self.complete(id, OpResult::Done(output), ctx);
    }

    pub(super) fn on_timeout(&mut self, rid: RequestId, ctx: &mut Ctx<'_, Self>) {
        let Some(req) = self.reqs.remove(&rid) else {
            return;
        };
        let id = req.op;
        let Some(op) = self.ops.get_mut(&id) else {
            return;
        };
        ctx.mark("client.request_timeout");
        match req.kind {
            ReqKind::Data { .. } | ReqKind::Admin if op.input.is_mutation() => {
                self.complete(id, OpResult::Unknown(ClientError::Timeout), ctx);
            }
            ReqKind::Locate => {
                op.locating = false;
                self.refused(id, "locate timed out".into(), ctx);
            }
            ReqKind::Admin => {
                self.master = None;
                self.refused(id, "master timed out".into(), ctx);
            }
            ReqKind::Meta => {
                let safe = matches!(&op.input, OpInput::Meta(c) if OpInput::meta_retry_safe(c));
                if safe {
                    self.refused(id, "meta store timed out".into(), ctx);
                } else {
                    self.complete(id, OpResult::Unknown(ClientError::Timeout), ctx);
                }
            }
            ReqKind::Data { table, loc, .. } => {
                // The node may be dead and its tablets moved: locate again before the retry,
                // or every retry would go to the same silent node until the retries run out.
                self.cache.invalidate(&table, loc.tablet);
                self.refused(id, "timed out".into(), ctx);
            }
            _ => self.refused(id, "timed out".into(), ctx),
        }
    }
}
