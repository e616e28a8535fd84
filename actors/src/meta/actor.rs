//! The [`MetaStore`] actor: request dispatch, group commit through one disk job at a time,
//! replies held until durable, snapshots, and recovery from the backend.
//!
//! The disk lane: at most one job (load, commit or snapshot) runs at a time, so records reach
//! the backend in revision order and a snapshot never races an append. Transactions commit
//! to memory at once and queue their log records; whenever the lane is idle, the queue (up to
//! `batch_len_max`) goes to disk in one append + sync. If a disk job fails, memory may be
//! ahead of the disk, so the actor forgets memory and reloads from the backend, answering the
//! waiting requests `OutcomeUnknown`/`Unavailable`.
//!
//! A failed load is retried every `load_retry_interval`, except one refused for its format
//! ([`BackendError::UnsupportedFormat`]: data from a newer build): no retry can fix that, so
//! the store logs it once, stays unavailable and reports it through [`MetaStore::refused`]
//! until it is restarted.
//!
//! Must not: read a clock or do disk work on its own turn (only inside jobs).

use super::backend::{Loaded, MetaBackend};
use super::msg::{MetaCall, MetaMsg, MetaReply, MetaRequest, MetaResponse, RequestId};
use super::state::{Change, DedupRecord, EvalEnv, LogRecord, MetaSnapshot, MetaState, Origin};
use super::txn::{validate_shape, Txn};
use super::{BackendError, MetaConfig, MetaError};
use crate::kernel::{Actor, Ctx, JobError, JobId, JobSpec, NodeId, TimerId};
use std::collections::VecDeque;
use std::sync::Arc;
use tracing::{debug, error, info, warn};

/// What a disk job hands back.
#[derive(Debug)]
pub enum MetaJobOutput {
    Loaded(Result<Box<Loaded>, BackendError>),
    Committed(Result<(), BackendError>),
    Snapshotted(Result<(), BackendError>),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MetaTimer {
    CheckNodeLeases,
    RetryLoad,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Lane {
    Idle,
    Loading(JobId),
    /// Appending and syncing records up to and including `up_to`.
    Committing {
        job: JobId,
        up_to: u64,
        len: u64,
    },
    Snapshotting {
        job: JobId,
        up_to: u64,
    },
}

/// A reply waiting until the revision it may have observed is durable.
#[derive(Debug)]
struct Held {
    needs: u64,
    to: NodeId,
    resp: MetaResponse,
    /// What the caller is told instead if the disk fails before `needs` is durable.
    on_failure: MetaError,
}

/// Counters for tests and operators.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MetaCounters {
    pub commit_jobs: u64,
    pub records_committed: u64,
    pub snapshots: u64,
    pub recoveries: u64,
    pub disk_failures: u64,
    pub nodes_marked_down: u64,
}

pub struct MetaStore {
    pub(super) config: MetaConfig,
    backend: Arc<dyn MetaBackend>,
    pub(super) state: MetaState,
    serving: bool,
    durable_revision: u64,
    log_records_since_snapshot: u64,
    pending: VecDeque<LogRecord>,
    lane: Lane,
    held: VecDeque<Held>,
    pub(super) counters: MetaCounters,
    /// Set when a load was refused for good (see the module docs).
    refused: Option<BackendError>,
}

impl MetaStore {
    pub fn new(config: MetaConfig, backend: Arc<dyn MetaBackend>) -> Self {
        let state = MetaState::new(config.dedup_entries_max);
        Self {
            config,
            backend,
            state,
            serving: false,
            durable_revision: 0,
            log_records_since_snapshot: 0,
            pending: VecDeque::new(),
            lane: Lane::Idle,
            held: VecDeque::new(),
            counters: MetaCounters::default(),
            refused: None,
        }
    }

    /// The in-memory state (including commits not yet durable).
    pub fn state(&self) -> &MetaState {
        &self.state
    }
    pub fn is_serving(&self) -> bool {
        self.serving
    }
    pub fn durable_revision(&self) -> u64 {
        self.durable_revision
    }
    pub fn counters(&self) -> MetaCounters {
        self.counters
    }
    pub fn config(&self) -> &MetaConfig {
        &self.config
    }
    /// Why the store refused its stored data for good (a format version from a newer build),
    /// if it did: it then serves nothing and does not retry until restarted.
    pub fn refused(&self) -> Option<&BackendError> {
        self.refused.as_ref()
    }

    fn env(&self, ctx: &Ctx<'_, Self>) -> EvalEnv {
        EvalEnv {
            now: ctx.now(),
            node_lease: self.config.node_lease,
        }
    }

    /// Answer now, without waiting for durability (for errors that observed nothing).
    fn answer_now(&self, to: NodeId, id: RequestId, err: MetaError, ctx: &mut Ctx<'_, Self>) {
        ctx.send(
            to,
            MetaMsg::Response(MetaResponse {
                id,
                result: Err(err),
            }),
        );
    }

    /// Queue a reply behind the current revision; it goes out once that is durable.
    pub(super) fn reply(
        &mut self,
        to: NodeId,
        id: RequestId,
        result: Result<MetaReply, MetaError>,
        on_failure: MetaError,
        ctx: &mut Ctx<'_, Self>,
    ) {
        self.held.push_back(Held {
            needs: self.state.revision(),
            to,
            resp: MetaResponse { id, result },
            on_failure,
        });
        self.release(ctx);
    }

    fn release(&mut self, ctx: &mut Ctx<'_, Self>) {
        while self
            .held
            .front()
            .is_some_and(|h| h.needs <= self.durable_revision)
        {
            if let Some(h) = self.held.pop_front() {
                ctx.send(h.to, MetaMsg::Response(h.resp));
            }
        }
    }

    /// Commit a state change to memory and queue it for the disk. Returns its revision.
    pub(super) fn commit(
        &mut self,
        change: Change,
        dedup: Option<DedupRecord>,
        ctx: &mut Ctx<'_, Self>,
    ) -> u64 {
        let rec = LogRecord {
            revision: self.state.revision() + 1,
            at: ctx.now(),
            change,
            dedup,
        };
        self.state.apply(&rec);
        if cfg!(debug_assertions) {
            if let Err(e) = self.state.check_invariants() {
                panic!("meta invariant broken by revision {}: {e}", rec.revision);
            }
        }
        let revision = rec.revision;
        self.pending.push_back(rec);
        self.pump(ctx);
        revision
    }

    /// Start the next disk job if the lane is idle.
    fn pump(&mut self, ctx: &mut Ctx<'_, Self>) {
        if self.lane != Lane::Idle || !self.serving {
            return;
        }
        if self.log_records_since_snapshot + self.pending.len() as u64
            > self.config.log_records_before_snapshot_max
        {
            // The snapshot is of memory, which already holds every pending record, so it
            // makes them durable too and they are never appended.
            let snap: MetaSnapshot = self.state.snapshot().clone();
            let up_to = snap.revision;
            self.pending.clear();
            let backend = self.backend.clone();
            let spec = JobSpec::new("meta.snapshot", self.config.snapshot_estimate);
            let job = ctx.start_job(spec, move || {
                MetaJobOutput::Snapshotted(backend.write_snapshot(&snap))
            });
            debug!(up_to, "meta snapshot started");
            self.lane = Lane::Snapshotting { job, up_to };
            return;
        }
        if self.pending.is_empty() {
            return;
        }
        let n = self.pending.len().min(self.config.batch_len_max.max(1));
        let batch: Vec<LogRecord> = self.pending.drain(..n).collect();
        let up_to = batch.last().map_or(self.durable_revision, |r| r.revision);
        let backend = self.backend.clone();
        let spec = JobSpec::new("meta.commit", self.config.commit_estimate);
        let job = ctx.start_job(spec, move || {
            MetaJobOutput::Committed(backend.append(&batch).and_then(|()| backend.sync()))
        });
        self.lane = Lane::Committing {
            job,
            up_to,
            len: n as u64,
        };
    }

    fn start_load(&mut self, ctx: &mut Ctx<'_, Self>) {
        let backend = self.backend.clone();
        let spec = JobSpec::new("meta.load", self.config.load_estimate);
        // Sync after load: what a live process reads may include unsynced records (after a
        // failed sync); making them durable before serving means nothing served can vanish.
        let job = ctx.start_job(spec, move || {
            MetaJobOutput::Loaded(
                backend
                    .load()
                    .and_then(|l| backend.sync().map(|()| Box::new(l))),
            )
        });
        self.lane = Lane::Loading(job);
    }

    /// The disk failed: memory may be ahead of it. Fail everything waiting and reload.
    fn disk_failed(&mut self, what: &str, err: String, ctx: &mut Ctx<'_, Self>) {
        error!(what, %err, "meta store disk job failed; reloading from the backend");
        self.counters.disk_failures += 1;
        self.serving = false;
        self.pending.clear();
        for h in std::mem::take(&mut self.held) {
            let err = if h.needs <= self.durable_revision {
                // Everything it observed is durable; the answer stands.
                ctx.send(h.to, MetaMsg::Response(h.resp));
                continue;
            } else {
                h.on_failure
            };
            let resp = MetaResponse {
                id: h.resp.id,
                result: Err(err),
            };
            ctx.send(h.to, MetaMsg::Response(resp));
        }
        self.start_load(ctx);
    }

    /// Rebuild memory from what the backend returned.
    fn recover(&mut self, loaded: Loaded, ctx: &mut Ctx<'_, Self>) -> Result<(), BackendError> {
        let corrupt = |reason: String| BackendError::Corrupt {
            what: "meta recovery",
            offset: 0,
            reason,
        };
        let snap = loaded.snapshot.unwrap_or_default();
        let mut state = MetaState::from_snapshot(snap, self.config.dedup_entries_max);
        let mut replayed = 0u64;
        for rec in loaded.records {
            if rec.revision <= state.revision() {
                continue; // Covered by the snapshot (crash between snapshot and truncation).
            }
            if rec.revision != state.revision() + 1 {
                return Err(corrupt(format!(
                    "log jumps from revision {} to {}",
                    state.revision(),
                    rec.revision
                )));
            }
            state.apply(&rec);
            replayed += 1;
        }
        state.check_invariants().map_err(corrupt)?;
        // Leases are soft state: give every holder a full lease from now, which is never
        // shorter than what the holder may believe it has (see NodeRecord::lease_expiry).
        let now = ctx.now();
        let ups: Vec<_> = state
            .snapshot()
            .nodes
            .values()
            .filter(|n| n.value.status == super::model::NodeStatus::Up)
            .map(|n| {
                (
                    n.value.id,
                    n.value.lease_expiry.max(now.plus(self.config.node_lease)),
                )
            })
            .collect();
        for (id, expiry) in ups {
            state.set_node_lease_expiry(id, expiry);
        }
        if let Some(l) = state.master_lease() {
            let expiry = l.expiry.max(now.plus(self.config.master_lease));
            state.set_master_lease_expiry(expiry);
        }
        info!(
            revision = state.revision(),
            replayed,
            torn_tail_bytes = loaded.torn_tail_bytes,
            "meta store recovered"
        );
        self.durable_revision = state.revision();
        self.log_records_since_snapshot = replayed;
        self.state = state;
        self.serving = true;
        self.counters.recoveries += 1;
        Ok(())
    }

    fn on_request(&mut self, from: NodeId, req: MetaRequest, ctx: &mut Ctx<'_, Self>) {
        let MetaRequest { id, call } = req;
        if !self.serving {
            return self.answer_now(from, id, MetaError::Unavailable, ctx);
        }
        if self.held.len() >= self.config.held_replies_max {
            return self.answer_now(from, id, MetaError::Busy, ctx);
        }
        let writes = call.may_write();
        if writes && self.pending.len() >= self.config.pending_len_max {
            return self.answer_now(from, id, MetaError::Busy, ctx);
        }
        let origin = Origin { from, request: id };
        let mut fingerprint = 0;
        if call.is_deduplicated() {
            fingerprint = super::msg::fingerprint(&call);
            if let Some(reply) = self.state.dedup(&origin, fingerprint).cloned() {
                debug!(%from, request = id.0, "meta retry answered from the dedup table");
                return self.reply(from, id, Ok(reply), MetaError::OutcomeUnknown, ctx);
            }
        }
        let scan_max = self.config.scan_limit_max.max(1);
        let result = match call {
            MetaCall::Txn(txn) => {
                let dedup = DedupRecord {
                    origin,
                    fingerprint,
                    reply: MetaReply::Committed { revision: 0 },
                };
                self.txn(txn, dedup, ctx)
            }
            MetaCall::Get(key) => Ok(MetaReply::Record(self.state.get(&key))),
            MetaCall::Scan { kind, after, limit } => self
                .state
                .scan(kind, after.as_ref(), limit.clamp(1, scan_max) as usize)
                .map(|(records, more)| MetaReply::Records { records, more }),
            MetaCall::Locate { table, row, limit } => self
                .state
                .locate(&table, &row, limit.clamp(1, scan_max) as usize)
                .map(MetaReply::Locations),
            MetaCall::Snapshot => {
                let mut snap = self.state.snapshot().clone();
                snap.dedup.clear();
                Ok(MetaReply::Snapshot(Box::new(snap)))
            }
            MetaCall::AcquireMasterLease { addr } => self.acquire_master_lease(from, addr, ctx),
            MetaCall::RenewMasterLease { term } => self.renew_master_lease(from, term, ctx),
            MetaCall::ReleaseMasterLease { term } => self.release_master_lease(from, term, ctx),
            MetaCall::GetMasterLease => Ok(MetaReply::LeaseState(
                self.state
                    .master_lease()
                    .filter(|l| ctx.now() < l.expiry)
                    .cloned(),
            )),
            MetaCall::RegisterNode {
                name,
                addr,
                total_disk_bytes,
            } => self.register_node(
                from,
                name,
                addr,
                total_disk_bytes,
                (origin, fingerprint),
                ctx,
            ),
            MetaCall::Heartbeat { epoch, status } => self.heartbeat(from, epoch, status, ctx),
            MetaCall::GetNodeId { name } => self.get_node_id(&name),
            MetaCall::GetNodeInfo { node } => self.get_node_info(node),
            MetaCall::ListNodes { after, limit } => {
                Ok(self.list_nodes(after, limit.clamp(1, scan_max) as usize))
            }
            MetaCall::ReportStorage {
                node,
                used_disk_bytes,
            } => self.report_storage(node, used_disk_bytes, ctx),
            MetaCall::IdOf { key } => self.id_of_or_create(key, ctx),
            MetaCall::InsertTableInfo {
                table,
                partition_count_per_day,
                columns,
            } => self.insert_table_info(table, partition_count_per_day, columns, ctx),
            MetaCall::GetTableInfo { table } => self.get_table_info(&table),
            MetaCall::GetPartitionInfos {
                table,
                timestamp_ms,
                create,
            } => self.get_partition_infos(&table, timestamp_ms, create, ctx),
            MetaCall::MovePartition {
                table,
                date,
                index,
                to,
            } => self.move_partition(&table, date, index, to, ctx),
        };
        let on_failure = if writes {
            MetaError::OutcomeUnknown
        } else {
            MetaError::Unavailable
        };
        self.reply(from, id, result, on_failure, ctx);
    }

    fn txn(
        &mut self,
        txn: Txn,
        mut dedup: DedupRecord,
        ctx: &mut Ctx<'_, Self>,
    ) -> Result<MetaReply, MetaError> {
        validate_shape(&txn, &self.config.txn)?;
        let writes = self.state.evaluate(&txn, self.env(ctx))?;
        let revision = self.state.revision() + 1;
        let reply = MetaReply::Committed { revision };
        dedup.reply = reply.clone();
        let committed = self.commit(Change::Writes(writes), Some(dedup), ctx);
        assert_eq!(committed, revision, "commit takes the next revision");
        Ok(reply)
    }
}

impl Actor for MetaStore {
    type Msg = MetaMsg;
    type Timer = MetaTimer;
    type JobOutput = MetaJobOutput;

    fn on_start(&mut self, ctx: &mut Ctx<'_, Self>) {
        // Only the backend survives a restart: start from nothing and load it.
        self.state = MetaState::new(self.config.dedup_entries_max);
        self.serving = false;
        self.pending.clear();
        self.held.clear();
        self.durable_revision = 0;
        self.refused = None;
        self.start_load(ctx);
        ctx.set_timer(self.config.node_check_interval, MetaTimer::CheckNodeLeases);
    }

    fn on_msg(&mut self, from: NodeId, msg: MetaMsg, ctx: &mut Ctx<'_, Self>) {
        match msg {
            MetaMsg::Request(req) => self.on_request(from, req, ctx),
            MetaMsg::Response(resp) => {
                warn!(%from, request = resp.id.0, "meta store ignores a response sent to it");
            }
        }
    }

    fn on_timer(&mut self, _id: TimerId, timer: MetaTimer, ctx: &mut Ctx<'_, Self>) {
        match timer {
            MetaTimer::CheckNodeLeases => {
                if self.serving {
                    self.mark_expired_nodes_down(ctx);
                }
                ctx.set_timer(self.config.node_check_interval, MetaTimer::CheckNodeLeases);
            }
            MetaTimer::RetryLoad => {
                if !self.serving && self.lane == Lane::Idle {
                    self.start_load(ctx);
                }
            }
        }
    }

    fn on_job_done(
        &mut self,
        id: JobId,
        result: Result<MetaJobOutput, JobError>,
        ctx: &mut Ctx<'_, Self>,
    ) {
        let lane = self.lane;
        let ours = match lane {
            Lane::Idle => false,
            Lane::Loading(job) => job == id,
            Lane::Committing { job, .. } | Lane::Snapshotting { job, .. } => job == id,
        };
        if !ours {
            warn!(
                job = id.0,
                "meta store got a result for a job it is not waiting for"
            );
            return;
        }
        self.lane = Lane::Idle;
        let output = match result {
            Ok(output) => output,
            Err(e) => {
                return match lane {
                    Lane::Loading(_) => self.load_failed(e.to_string(), ctx),
                    _ => self.disk_failed("job", e.to_string(), ctx),
                };
            }
        };
        match (lane, output) {
            (Lane::Loading(_), MetaJobOutput::Loaded(Ok(loaded))) => {
                if let Err(e) = self.recover(*loaded, ctx) {
                    return self.load_failed(e.to_string(), ctx);
                }
            }
            (Lane::Loading(_), MetaJobOutput::Loaded(Err(e))) => {
                if matches!(e, BackendError::UnsupportedFormat { .. }) {
                    return self.load_refused(e);
                }
                return self.load_failed(e.to_string(), ctx);
            }
            (Lane::Committing { up_to, len, .. }, MetaJobOutput::Committed(Ok(()))) => {
                assert!(
                    up_to > self.durable_revision,
                    "durability only moves forward"
                );
                self.durable_revision = up_to;
                self.log_records_since_snapshot += len;
                self.counters.commit_jobs += 1;
                self.counters.records_committed += len;
            }
            (Lane::Snapshotting { up_to, .. }, MetaJobOutput::Snapshotted(Ok(()))) => {
                assert!(
                    up_to >= self.durable_revision,
                    "durability only moves forward"
                );
                self.durable_revision = up_to;
                self.log_records_since_snapshot = 0;
                self.counters.snapshots += 1;
                info!(up_to, "meta snapshot written; log truncated");
            }
            (_, MetaJobOutput::Committed(Err(e)) | MetaJobOutput::Snapshotted(Err(e))) => {
                return self.disk_failed("commit or snapshot", e.to_string(), ctx);
            }
            (lane, output) => {
                // A job's output kind is fixed by the lane that started it.
                return self.disk_failed("job", format!("{lane:?} returned {output:?}"), ctx);
            }
        }
        self.release(ctx);
        self.pump(ctx);
    }
}

impl MetaStore {
    fn load_failed(&mut self, err: String, ctx: &mut Ctx<'_, Self>) {
        error!(%err, "meta store recovery failed; retrying");
        self.counters.disk_failures += 1;
        self.serving = false;
        ctx.set_timer(self.config.load_retry_interval, MetaTimer::RetryLoad);
    }

    /// The stored data is in a format this build cannot read: stop (no retry timer) and say
    /// so once, loudly.
    fn load_refused(&mut self, err: BackendError) {
        error!(
            %err,
            "meta store refuses to start: its data was written by a newer Shale build; \
             it stays unavailable until restarted with a build that reads this format"
        );
        self.counters.disk_failures += 1;
        self.serving = false;
        self.refused = Some(err);
    }
}
