//! The [`Client`] actor: starts operations, finds tablets, sends requests, retries refusals
//! with backoff, and emits one [`Completion`] per operation.
//!
//! Must not: retry a mutation whose outcome is unknown (timeout, storage failure), or report
//! one as failed; it is reported `Unknown`.

use super::cache::LocationCache;
use super::ops::{ClientError, Completion, OpId, OpInput, OpResult};
use super::ClientConfig;
use crate::kernel::{Actor, Ctx, Epoch, JobError, JobId, NodeId, Time, TimerId};
use crate::meta::{MetaCall, MetaMsg, MetaRequest, RequestId, TabletId};
use crate::meta::{TabletLocation, TabletStatus};
use crate::proto::admin::{AdminMsg, AdminRequest};
use crate::proto::data::{DataMsg, DataOp, DataRequest, RowMutation, RowOut};
use crate::proto::ClusterMsg;
use rand::Rng;
use std::collections::{BTreeMap, VecDeque};
use std::time::Duration;
use tracing::debug;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ClientTimer {
    /// No answer to this request in time.
    Timeout(RequestId),
    /// Try this operation again after a backoff.
    Retry(OpId),
}

#[derive(Debug)]
pub(super) enum Progress {
    Single,
    Write {
        /// Rows not yet sent (or sent and refused).
        pending: Vec<RowMutation>,
        parts_in_flight: usize,
        /// Some part was applied: a later failure leaves the whole outcome unknown.
        any_done: bool,
    },
    Scan {
        /// Forward: the next row to read from. Reverse: the exclusive end to read below.
        cursor: Vec<u8>,
        rows: Vec<RowOut>,
    },
}

#[derive(Debug)]
pub(super) struct Op {
    pub(super) input: OpInput,
    pub(super) call: Time,
    pub(super) attempts: u32,
    pub(super) progress: Progress,
    pub(super) locating: bool,
    /// The last locate answered, yet the key is still not covered by a usable tablet.
    pub(super) located: bool,
    pub(super) waiting_retry: bool,
}

#[derive(Debug)]
pub(super) enum ReqKind {
    Locate,
    MasterLease,
    Admin,
    /// A client meta call (`OpInput::Meta`).
    Meta,
    Data {
        table: String,
        loc: TabletLocation,
        /// For write parts: the rows this request carries.
        rows: Vec<RowMutation>,
    },
}

#[derive(Debug)]
pub(super) struct Req {
    pub(super) op: OpId,
    pub(super) kind: ReqKind,
    pub(super) timer: TimerId,
}

pub struct Client {
    pub(super) config: ClientConfig,
    pub(super) cache: LocationCache,
    pub(super) master: Option<NodeId>,
    pub(super) ops: BTreeMap<OpId, Op>,
    pub(super) reqs: BTreeMap<RequestId, Req>,
    pub(super) next_req: u64,
    pub(super) next_op: u64,
    pub(super) completions: VecDeque<Completion>,
    pub(super) completions_dropped: u64,
}

/// The node and epoch to send to, if the location can serve now.
pub(super) fn usable(loc: &TabletLocation) -> Option<(NodeId, Epoch)> {
    match (loc.status, loc.assigned) {
        (TabletStatus::Ready, Some(a)) => Some((a.node, a.epoch)),
        _ => None,
    }
}

impl Client {
    pub fn new(config: ClientConfig) -> Self {
        let cache = LocationCache::new(config.cache_len_max);
        Self {
            config,
            cache,
            master: None,
            ops: BTreeMap::new(),
            reqs: BTreeMap::new(),
            next_req: 0,
            next_op: 0,
            completions: VecDeque::new(),
            completions_dropped: 0,
        }
    }

    pub fn config(&self) -> &ClientConfig {
        &self.config
    }
    pub fn cache(&self) -> &LocationCache {
        &self.cache
    }
    pub fn ops_in_flight(&self) -> usize {
        self.ops.len()
    }
    pub fn completions_dropped(&self) -> u64 {
        self.completions_dropped
    }

    /// Hand over the finished operations, oldest first.
    pub fn take_completions(&mut self) -> Vec<Completion> {
        self.completions.drain(..).collect()
    }

    /// Start an operation. Bad input and a full op table are refused here, before anything
    /// is sent; everything else ends in a [`Completion`].
    pub fn start(&mut self, input: OpInput, ctx: &mut Ctx<'_, Self>) -> Result<OpId, ClientError> {
        input.validate(self.config.value_bytes_max)?;
        if self.ops.len() >= self.config.ops_in_flight_max {
            return Err(ClientError::TooManyOps(self.ops.len()));
        }
        if self.next_req == 0 {
            // Request ids never repeat across incarnations (see `proto`): a random high base.
            self.next_req = u64::from(ctx.rng().gen::<u32>()) << 32;
        }
        self.next_op += 1;
        let id = OpId(self.next_op);
        let progress = match &input {
            OpInput::Write { rows, .. } => Progress::Write {
                pending: rows.clone(),
                parts_in_flight: 0,
                any_done: false,
            },
            OpInput::Scan {
                start,
                end,
                reverse,
                ..
            } => Progress::Scan {
                cursor: if *reverse { end.clone() } else { start.clone() },
                rows: Vec::new(),
            },
            _ => Progress::Single,
        };
        self.ops.insert(
            id,
            Op {
                input,
                call: ctx.now(),
                attempts: 0,
                progress,
                locating: false,
                located: false,
                waiting_retry: false,
            },
        );
        self.drive(id, ctx);
        Ok(id)
    }

    pub(super) fn send(
        &mut self,
        op: OpId,
        to: NodeId,
        kind: ReqKind,
        msg: impl FnOnce(RequestId) -> ClusterMsg,
        ctx: &mut Ctx<'_, Self>,
    ) {
        self.next_req += 1;
        let id = RequestId(self.next_req);
        ctx.send(to, msg(id));
        let timer = ctx.set_timer(self.config.request_timeout, ClientTimer::Timeout(id));
        self.reqs.insert(id, Req { op, kind, timer });
    }

    pub(super) fn locate(
        &mut self,
        op: OpId,
        table: String,
        row: Vec<u8>,
        ctx: &mut Ctx<'_, Self>,
    ) {
        if let Some(o) = self.ops.get_mut(&op) {
            if o.located {
                // The answer we just got does not cover the key with a usable tablet (a
                // gap, a tablet mid-procedure or unassigned while the master reassigns, or
                // no such table yet): back off instead of asking at once.
                o.located = false;
                let err = match self.cache.lookup(&table, &row) {
                    Some(loc) => ClientError::TabletUnavailable {
                        tablet: loc.tablet,
                        status: loc.status,
                        node: loc.assigned.map(|a| a.node),
                        table,
                        row,
                    },
                    None => ClientError::NoTablet { table, row },
                };
                self.refused(op, err.to_string(), ctx);
                return;
            }
            o.locating = true;
        }
        let call = MetaCall::Locate {
            table,
            row,
            limit: self.config.locate_batch,
        };
        let meta = self.config.meta;
        self.send(
            op,
            meta,
            ReqKind::Locate,
            |id| ClusterMsg::Meta(MetaMsg::Request(MetaRequest { id, call })),
            ctx,
        );
    }

    pub(super) fn send_data(
        &mut self,
        op: OpId,
        table: &str,
        loc: &TabletLocation,
        data_op: DataOp,
        rows: Vec<RowMutation>,
        ctx: &mut Ctx<'_, Self>,
    ) {
        let Some((node, epoch)) = usable(loc) else {
            return;
        };
        let req_table = table.to_string();
        let (tablet, version) = (loc.tablet, loc.version);
        let kind = ReqKind::Data {
            table: table.to_string(),
            loc: loc.clone(),
            rows,
        };
        self.send(
            op,
            node,
            kind,
            |id| {
                ClusterMsg::Data(DataMsg::Request(DataRequest {
                    id,
                    table: req_table,
                    tablet,
                    tablet_version: version,
                    node_epoch: epoch,
                    op: data_op,
                }))
            },
            ctx,
        );
    }

    /// Push the operation as far as it can go now.
    pub(super) fn drive(&mut self, id: OpId, ctx: &mut Ctx<'_, Self>) {
        let Some(op) = self.ops.get(&id) else {
            return;
        };
        if op.waiting_retry || op.locating {
            return;
        }
        match &op.input {
            OpInput::Admin(call) => {
                let call = call.clone();
                match self.master {
                    Some(m) => self.send(
                        id,
                        m,
                        ReqKind::Admin,
                        |rid| ClusterMsg::Admin(AdminMsg::Request(AdminRequest { id: rid, call })),
                        ctx,
                    ),
                    None => {
                        let meta = self.config.meta;
                        self.send(
                            id,
                            meta,
                            ReqKind::MasterLease,
                            |rid| {
                                ClusterMsg::Meta(MetaMsg::Request(MetaRequest {
                                    id: rid,
                                    call: MetaCall::GetMasterLease,
                                }))
                            },
                            ctx,
                        )
                    }
                }
            }
            OpInput::Meta(call) => {
                let call = call.clone();
                let meta = self.config.meta;
                self.send(
                    id,
                    meta,
                    ReqKind::Meta,
                    |rid| ClusterMsg::Meta(MetaMsg::Request(MetaRequest { id: rid, call })),
                    ctx,
                );
            }
            OpInput::Write { table, .. } => {
                let table = table.clone();
                let Some(Op {
                    progress: Progress::Write { pending, .. },
                    ..
                }) = self.ops.get_mut(&id)
                else {
                    return;
                };
                // Group the pending rows by the tablet that holds them.
                let mut groups: BTreeMap<TabletId, (TabletLocation, Vec<RowMutation>)> =
                    BTreeMap::new();
                let mut unlocated = Vec::new();
                for r in std::mem::take(pending) {
                    match self
                        .cache
                        .lookup(&table, &r.row)
                        .filter(|l| usable(l).is_some())
                    {
                        Some(loc) => groups
                            .entry(loc.tablet)
                            .or_insert_with(|| (loc.clone(), Vec::new()))
                            .1
                            .push(r),
                        None => unlocated.push(r),
                    }
                }
                let first_missing = unlocated.first().map(|r| r.row.clone());
                if let Some(Op {
                    progress:
                        Progress::Write {
                            pending,
                            parts_in_flight,
                            ..
                        },
                    located,
                    ..
                }) = self.ops.get_mut(&id)
                {
                    *pending = unlocated;
                    *parts_in_flight += groups.len();
                    if !groups.is_empty() {
                        *located = false;
                    }
                }
                for (_, (loc, rows)) in groups {
                    let data_op = DataOp::Write { rows: rows.clone() };
                    self.send_data(id, &table, &loc, data_op, rows, ctx);
                }
                if let Some(row) = first_missing {
                    self.locate(id, table, row, ctx);
                }
            }
            OpInput::Scan {
                table,
                start,
                end,
                reverse,
                limit,
                filter,
            } => {
                let Progress::Scan { cursor, rows } = &op.progress else {
                    return;
                };
                let (table, start, end, reverse, filter) = (
                    table.clone(),
                    start.clone(),
                    end.clone(),
                    *reverse,
                    filter.clone(),
                );
                let want = limit.saturating_sub(rows.len() as u32);
                let batch = want.min(self.config.scan_batch_rows).max(1);
                let cursor = cursor.clone();
                let loc = if reverse {
                    self.cache.lookup_before(&table, &cursor)
                } else {
                    self.cache.lookup(&table, &cursor)
                };
                match loc.filter(|l| usable(l).is_some()).cloned() {
                    Some(loc) => {
                        let (s, e) = if reverse {
                            (start.clone(), cursor)
                        } else {
                            (cursor, end.clone())
                        };
                        let data_op = DataOp::Scan {
                            start: s,
                            end: e,
                            reverse,
                            limit_rows: batch,
                            filter,
                        };
                        if let Some(o) = self.ops.get_mut(&id) {
                            o.located = false;
                        }
                        self.send_data(id, &table, &loc, data_op, Vec::new(), ctx);
                    }
                    None => {
                        let row = if reverse {
                            self.cache.locate_hint_before(&table, &cursor, &start)
                        } else {
                            cursor
                        };
                        self.locate(id, table, row, ctx);
                    }
                }
            }
            single => {
                let (table, row, data_op) = match single.clone() {
                    OpInput::Get { table, row, filter } => {
                        (table, row.clone(), DataOp::Get { row, filter })
                    }
                    OpInput::CheckAndMutate {
                        table,
                        row,
                        check,
                        on_match,
                        on_miss,
                    } => (
                        table,
                        row.clone(),
                        DataOp::CheckAndMutate {
                            row,
                            check,
                            on_match,
                            on_miss,
                        },
                    ),
                    OpInput::Increment {
                        table,
                        row,
                        family,
                        qualifier,
                        delta,
                    } => (
                        table,
                        row.clone(),
                        DataOp::Increment {
                            row,
                            family,
                            qualifier,
                            delta,
                        },
                    ),
                    OpInput::Append {
                        table,
                        row,
                        family,
                        qualifier,
                        suffix,
                    } => (
                        table,
                        row.clone(),
                        DataOp::Append {
                            row,
                            family,
                            qualifier,
                            suffix,
                        },
                    ),
                    _ => return,
                };
                match self
                    .cache
                    .lookup(&table, &row)
                    .filter(|l| usable(l).is_some())
                    .cloned()
                {
                    Some(loc) => {
                        if let Some(o) = self.ops.get_mut(&id) {
                            o.located = false;
                        }
                        self.send_data(id, &table, &loc, data_op, Vec::new(), ctx)
                    }
                    None => self.locate(id, table, row, ctx),
                }
            }
        }
    }

    /// The request was refused in a way that means "not applied": back off and retry, up to
    /// the bound.
    pub(super) fn refused(&mut self, id: OpId, why: String, ctx: &mut Ctx<'_, Self>) {
        let Some(op) = self.ops.get_mut(&id) else {
            return;
        };
        op.attempts += 1;
        if op.attempts > self.config.retries_max {
            let err = ClientError::RetriesExhausted {
                attempts: op.attempts,
                last: why,
            };
            let applied = matches!(op.progress, Progress::Write { any_done: true, .. })
                || matches!(op.progress, Progress::Write { parts_in_flight, .. } if parts_in_flight > 0);
            let result = if applied {
                OpResult::Unknown(err)
            } else {
                OpResult::Failed(err)
            };
            self.complete(id, result, ctx);
            return;
        }
        if op.waiting_retry {
            return;
        }
        op.waiting_retry = true;
        let exp = op.attempts.saturating_sub(1).min(16);
        let full = self
            .config
            .backoff_base
            .saturating_mul(1u32 << exp)
            .min(self.config.backoff_max);
        let half = full / 2;
        let half_nanos = u64::try_from(half.as_nanos()).unwrap_or(u64::MAX);
        let jitter = Duration::from_nanos(ctx.rng().gen_range(0..=half_nanos));
        ctx.mark("client.retry_backoff");
        ctx.set_timer(half + jitter, ClientTimer::Retry(id));
    }

    pub(super) fn complete(&mut self, id: OpId, result: OpResult, ctx: &mut Ctx<'_, Self>) {
        let Some(op) = self.ops.remove(&id) else {
            return;
        };
        let stale: Vec<RequestId> = self
            .reqs
            .iter()
            .filter(|(_, r)| r.op == id)
            .map(|(rid, _)| *rid)
            .collect();
        for rid in stale {
            if let Some(r) = self.reqs.remove(&rid) {
                ctx.cancel_timer(r.timer);
            }
        }
        if self.completions.len() >= self.config.completions_max {
            self.completions.pop_front();
            self.completions_dropped += 1;
        }
        self.completions.push_back(Completion {
            op: id,
            input: op.input,
            call: op.call,
            ret: ctx.now(),
            result,
        });
    }
}

impl Actor for Client {
    type Msg = ClusterMsg;
    type Timer = ClientTimer;
    type JobOutput = ();

    fn on_start(&mut self, _ctx: &mut Ctx<'_, Self>) {}

    fn on_msg(&mut self, from: NodeId, msg: ClusterMsg, ctx: &mut Ctx<'_, Self>) {
        match msg {
            ClusterMsg::Meta(MetaMsg::Response(r)) => self.on_meta(r, ctx),
            ClusterMsg::Data(DataMsg::Response(r)) => self.on_data(r, ctx),
            ClusterMsg::Admin(AdminMsg::Response(r)) => self.on_admin(r, ctx),
            other => debug!(%from, ?other, "client drops a message it does not expect"),
        }
    }

    fn on_timer(&mut self, _id: TimerId, timer: ClientTimer, ctx: &mut Ctx<'_, Self>) {
        match timer {
            ClientTimer::Timeout(rid) => self.on_timeout(rid, ctx),
            ClientTimer::Retry(op) => {
                if let Some(o) = self.ops.get_mut(&op) {
                    o.waiting_retry = false;
                    self.drive(op, ctx);
                }
            }
        }
    }

    fn on_job_done(&mut self, _id: JobId, _r: Result<(), JobError>, _ctx: &mut Ctx<'_, Self>) {}
}
