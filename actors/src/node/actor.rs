//! The [`TabletNode`] actor: its state, message and timer dispatch, and job bookkeeping (which
//! job belongs to which tablet, and what to start next once one finishes).
//!
//! Must not: block on anything or do engine work on its own turn; every engine call is a job
//! (see `work.rs`) and every reply waits for the job that makes it true.

use super::lease::Reg;
use super::served::{Caller, Phase, Served};
use super::work::NodeJobOutput;
use super::NodeConfig;
use crate::kernel::{Actor, Ctx, Epoch, JobError, JobId, JobSpec, NodeId, Time, TimerId};
use crate::meta::{MetaMsg, RequestId, TabletId};
use crate::proto::control::{ControlMsg, ControlReply, ControlResponse, ServedState};
use crate::proto::data::{DataError, DataMsg, DataReply, DataResponse};
use crate::proto::ClusterMsg;
use shale_storage::cache::BlockCache;
use shale_storage::fs::FileStore;
use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use tracing::{debug, warn};

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NodeTimer {
    /// Resend the registration with this id if it is still unanswered.
    RegisterRetry(RequestId),
    /// Send a heartbeat and look for background work.
    Heartbeat,
    /// Check whether the lease has lapsed.
    LeaseCheck,
    /// Report used disk to the meta store.
    StorageReport,
}

/// Counters for tests and operators.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NodeCounters {
    pub registrations: u64,
    pub lease_lapses: u64,
    /// Storage reports sent to the meta store.
    pub storage_reports: u64,
    pub loads: u64,
    pub unloads: u64,
    pub splits: u64,
    /// Group-commit jobs, and the write requests they committed.
    pub commit_jobs: u64,
    pub writes_committed: u64,
    pub rmw_ops: u64,
    pub reads: u64,
    pub background_steps: u64,
    pub refused_stale_epoch: u64,
    pub refused_stale_term: u64,
    pub refused_stale_version: u64,
    pub refused_lease: u64,
}

/// What a running job is for. `gen` names the load of the tablet it belongs to.
#[derive(Debug)]
pub(super) enum Purpose {
    Load {
        tablet: TabletId,
        gen: u64,
    },
    Commit {
        tablet: TabletId,
        gen: u64,
        callers: Vec<Caller>,
    },
    Rmw {
        tablet: TabletId,
        gen: u64,
        callers: Vec<Caller>,
    },
    Read {
        tablet: TabletId,
        gen: u64,
        caller: Caller,
    },
    PreFlush {
        tablet: TabletId,
        gen: u64,
    },
    Split {
        tablet: TabletId,
        gen: u64,
    },
    Unload {
        tablet: TabletId,
        gen: u64,
    },
    Background {
        tablet: TabletId,
        gen: u64,
    },
}

impl Purpose {
    fn tablet(&self) -> (TabletId, u64) {
        match self {
            Purpose::Load { tablet, gen }
            | Purpose::Commit { tablet, gen, .. }
            | Purpose::Rmw { tablet, gen, .. }
            | Purpose::Read { tablet, gen, .. }
            | Purpose::PreFlush { tablet, gen }
            | Purpose::Split { tablet, gen }
            | Purpose::Unload { tablet, gen }
            | Purpose::Background { tablet, gen } => (*tablet, *gen),
        }
    }
}

pub struct TabletNode {
    pub(super) config: NodeConfig,
    pub(super) fs: Arc<dyn FileStore>,
    pub(super) reg: Reg,
    /// The highest master term obeyed; older terms are refused.
    pub(super) highest_term: u64,
    pub(super) tablets: BTreeMap<TabletId, Served>,
    pub(super) jobs: BTreeMap<JobId, Purpose>,
    /// Answers of finished splits, for retried split commands: (parent, version, reply).
    pub(super) done_splits: VecDeque<(TabletId, u64, ControlReply)>,
    pub(super) next_req: u64,
    pub(super) next_gen: u64,
    pub(super) reads_in_flight: usize,
    pub(super) background_running: usize,
    /// When each unanswered heartbeat was sent (the lease counts from there).
    pub(super) heartbeats: BTreeMap<RequestId, Time>,
    pub(super) last_query_at: Option<Time>,
    /// The one armed lease check.
    pub(super) lease_timer: Option<TimerId>,
    pub(super) counters: NodeCounters,
    /// Mutation requests already received, so a duplicate is never applied twice.
    pub(super) seen_mutations: super::dedup::SeenRequests,
}

impl TabletNode {
    pub fn new(mut config: NodeConfig, fs: Arc<dyn FileStore>) -> Self {
        if config.tablet.cache.is_none() && config.block_cache_bytes > 0 {
            config.tablet.cache = Some(BlockCache::new(config.block_cache_bytes));
        }
        Self {
            config,
            fs,
            reg: Reg::Idle,
            highest_term: 0,
            tablets: BTreeMap::new(),
            jobs: BTreeMap::new(),
            done_splits: VecDeque::new(),
            next_req: 0,
            next_gen: 0,
            reads_in_flight: 0,
            background_running: 0,
            heartbeats: BTreeMap::new(),
            last_query_at: None,
            lease_timer: None,
            counters: NodeCounters::default(),
            seen_mutations: super::dedup::SeenRequests::default(),
        }
    }

    pub fn config(&self) -> &NodeConfig {
        &self.config
    }
    /// The planted bugs live in this run (all off without the `planted-bugs` feature).
    pub(super) fn planted(&self) -> super::work::Planted {
        #[cfg(feature = "planted-bugs")]
        return self.config.planted;
        #[cfg(not(feature = "planted-bugs"))]
        super::work::Planted::default()
    }
    pub fn counters(&self) -> NodeCounters {
        self.counters
    }
    pub fn highest_term(&self) -> u64 {
        self.highest_term
    }
    /// This incarnation's epoch, once registered.
    pub fn epoch(&self) -> Option<Epoch> {
        match self.reg {
            Reg::Registered { epoch, .. } => Some(epoch),
            _ => None,
        }
    }
    /// Until when (on this node's clock) the node may serve.
    pub fn lease_until(&self) -> Option<Time> {
        match self.reg {
            Reg::Registered { lease_until, .. } => Some(lease_until),
            _ => None,
        }
    }
    /// The tablets this node holds, with version and state.
    pub fn tablets(&self) -> Vec<(TabletId, u64, ServedState)> {
        self.tablets
            .values()
            .map(|s| (s.id(), s.spec.version, s.served_state()))
            .collect()
    }
    /// The engine handle of a served tablet (for tests and statistics).
    pub fn engine(&self, id: TabletId) -> Option<Arc<shale_storage::tablet::Tablet>> {
        self.tablets.get(&id).and_then(|s| s.tablet.clone())
    }
    /// The engine of a served tablet, borrowed (for checkers that look at every tablet often).
    pub fn engine_ref(&self, id: TabletId) -> Option<&shale_storage::tablet::Tablet> {
        self.tablets.get(&id).and_then(|s| s.tablet.as_deref())
    }

    pub(super) fn next_request_id(&mut self) -> RequestId {
        self.next_req += 1;
        RequestId(self.next_req)
    }

    pub(super) fn reply_data(
        &self,
        to: Caller,
        result: Result<DataReply, DataError>,
        ctx: &mut Ctx<'_, Self>,
    ) {
        let resp = DataResponse { id: to.id, result };
        ctx.send(to.from, ClusterMsg::Data(DataMsg::Response(resp)));
    }

    pub(super) fn reply_control(
        &self,
        to: Caller,
        result: Result<ControlReply, crate::proto::control::ControlError>,
        ctx: &mut Ctx<'_, Self>,
    ) {
        let resp = ControlResponse { id: to.id, result };
        ctx.send(to.from, ClusterMsg::Control(ControlMsg::Response(resp)));
    }

    /// Start a job for `tablet` and remember what it is for. Jobs that hold the engine count
    /// against the tablet, so an unload waits for them.
    pub(super) fn start_tablet_job(
        &mut self,
        purpose: Purpose,
        spec: JobSpec,
        holds_engine: bool,
        work: impl FnOnce() -> NodeJobOutput + Send + 'static,
        ctx: &mut Ctx<'_, Self>,
    ) {
        if holds_engine {
            let (tid, gen) = purpose.tablet();
            if let Some(s) = self.tablets.get_mut(&tid).filter(|s| s.gen == gen) {
                s.jobs += 1;
            }
        }
        let id = ctx.start_job(spec, work);
        self.jobs.insert(id, purpose);
    }

    /// The served tablet of this load, if it is still the one the job belongs to.
    pub(super) fn served_mut(&mut self, tablet: TabletId, gen: u64) -> Option<&mut Served> {
        self.tablets.get_mut(&tablet).filter(|s| s.gen == gen)
    }

    /// Move a tablet along: start its next lane job, and the split or unload once the lane has
    /// drained, and background work when it is idle.
    pub(super) fn advance(&mut self, tablet: TabletId, ctx: &mut Ctx<'_, Self>) {
        let Some(s) = self.tablets.get(&tablet) else {
            return;
        };
        let phase = s.phase.clone();
        if matches!(
            phase,
            Phase::Serving | Phase::SplitPreflush | Phase::SplitDrain | Phase::UnloadDrain
        ) && !s.lane_busy
            && !s.lane.is_empty()
        {
            self.start_lane_job(tablet, ctx);
        }
        let Some(s) = self.tablets.get(&tablet) else {
            return;
        };
        match phase {
            Phase::SplitDrain if s.lane_drained() => self.start_split_job(tablet, ctx),
            Phase::UnloadDrain if s.lane_drained() && s.jobs == 0 => {
                self.start_unload_job(tablet, ctx)
            }
            Phase::Serving => self.maybe_background(tablet, ctx),
            _ => {}
        }
    }

    fn maybe_background(&mut self, tablet: TabletId, ctx: &mut Ctx<'_, Self>) {
        if self.background_running >= self.config.background_jobs_max {
            return;
        }
        let Some(s) = self.tablets.get_mut(&tablet) else {
            return;
        };
        let Some(t) = s.tablet.clone() else {
            return;
        };
        if s.background_running || !t.needs_work() {
            return;
        }
        s.background_running = true;
        let gen = s.gen;
        self.background_running += 1;
        let now_micros = ctx.now().as_nanos() / 1_000;
        let spec = JobSpec::new("node.background", self.config.flush_estimate);
        self.start_tablet_job(
            Purpose::Background { tablet, gen },
            spec,
            true,
            move || NodeJobOutput::Background(t.compact_step(now_micros)),
            ctx,
        );
    }

    /// Look for background work on every serving tablet (periodically, so work the engine
    /// wants without new writes, such as compacting inherited files, still happens).
    pub(super) fn background_sweep(&mut self, ctx: &mut Ctx<'_, Self>) {
        let ids: Vec<TabletId> = self.tablets.keys().copied().collect();
        for id in ids {
            self.maybe_background(id, ctx);
        }
    }

    /// Drop every tablet without unloading (the lease lapsed or the node lost its
    /// registration): the master reassigns them after the lease plus its margin, and the next
    /// owner replays the WAL. Waiting control requests are told the lease expired.
    pub(super) fn drop_all_tablets(&mut self, ctx: &mut Ctx<'_, Self>) {
        let tablets = std::mem::take(&mut self.tablets);
        for (id, mut s) in tablets {
            warn!(tablet = %id, "dropping tablet: lease lost");
            for w in s.waiters.drain(..) {
                self.reply_control(
                    w,
                    Err(crate::proto::control::ControlError::LeaseExpired),
                    ctx,
                );
            }
            for item in s.lane.drain(..) {
                let callers: Vec<Caller> = match item {
                    super::served::LaneItem::Writes(ws) => ws.iter().map(|w| w.caller).collect(),
                    super::served::LaneItem::Rmw(rs) => rs.iter().map(|r| r.caller).collect(),
                };
                for c in callers {
                    self.reply_data(c, Err(DataError::LeaseExpired), ctx);
                }
            }
        }
    }
}

impl Actor for TabletNode {
    type Msg = ClusterMsg;
    type Timer = NodeTimer;
    type JobOutput = NodeJobOutput;

    fn on_start(&mut self, ctx: &mut Ctx<'_, Self>) {
        self.start_registration(ctx);
        ctx.set_timer(self.config.heartbeat_interval, NodeTimer::Heartbeat);
        ctx.set_timer(
            self.config.storage_report_interval,
            NodeTimer::StorageReport,
        );
    }

    fn on_msg(&mut self, from: NodeId, msg: ClusterMsg, ctx: &mut Ctx<'_, Self>) {
        match msg {
            ClusterMsg::Meta(MetaMsg::Response(resp)) => self.on_meta_response(resp, ctx),
            ClusterMsg::Control(ControlMsg::Request(req)) => self.on_control(from, req, ctx),
            ClusterMsg::Data(DataMsg::Request(req)) => self.on_data(from, req, ctx),
            other => debug!(%from, ?other, "tablet node drops a message it does not serve"),
        }
    }

    fn on_timer(&mut self, _id: TimerId, timer: NodeTimer, ctx: &mut Ctx<'_, Self>) {
        match timer {
            NodeTimer::RegisterRetry(req) => self.on_register_retry(req, ctx),
            NodeTimer::Heartbeat => {
                self.send_heartbeat(ctx);
                self.background_sweep(ctx);
                ctx.set_timer(self.config.heartbeat_interval, NodeTimer::Heartbeat);
            }
            NodeTimer::LeaseCheck => self.on_lease_check(ctx),
            NodeTimer::StorageReport => {
                self.send_storage_report(ctx);
                ctx.set_timer(
                    self.config.storage_report_interval,
                    NodeTimer::StorageReport,
                );
            }
        }
    }

    fn on_job_done(
        &mut self,
        id: JobId,
        result: Result<NodeJobOutput, JobError>,
        ctx: &mut Ctx<'_, Self>,
    ) {
        let Some(purpose) = self.jobs.remove(&id) else {
            warn!(job = id.0, "a job this node does not know finished");
            return;
        };
        let (tablet, gen) = purpose.tablet();
        let holds_engine = !matches!(purpose, Purpose::Load { .. } | Purpose::Unload { .. });
        if holds_engine {
            if let Some(s) = self.served_mut(tablet, gen) {
                s.jobs = s.jobs.saturating_sub(1);
            }
        }
        match purpose {
            Purpose::Load { .. } => self.load_done(tablet, gen, result, ctx),
            Purpose::Commit { callers, .. } => self.commit_done(tablet, gen, callers, result, ctx),
            Purpose::Rmw { callers, .. } => self.rmw_done(tablet, gen, callers, result, ctx),
            Purpose::Read { caller, .. } => {
                self.reads_in_flight = self.reads_in_flight.saturating_sub(1);
                let reply = match result {
                    Ok(NodeJobOutput::Read(r)) => r,
                    Ok(other) => Err(DataError::Storage(format!(
                        "unexpected job output {other:?}"
                    ))),
                    Err(e) => Err(DataError::Storage(e.to_string())),
                };
                self.reply_data(caller, reply, ctx);
            }
            Purpose::PreFlush { .. } => self.preflush_done(tablet, gen, result, ctx),
            Purpose::Split { .. } => self.split_done(tablet, gen, result, ctx),
            Purpose::Unload { .. } => self.unload_done(tablet, gen, result, ctx),
            Purpose::Background { .. } => {
                self.background_running = self.background_running.saturating_sub(1);
                let mut again = false;
                if let Some(s) = self.served_mut(tablet, gen) {
                    s.background_running = false;
                    match &result {
                        Ok(NodeJobOutput::Background(Ok(did))) => again = *did,
                        other => warn!(%tablet, ?other, "background step failed"),
                    }
                }
                self.counters.background_steps += 1;
                if again {
                    self.advance(tablet, ctx);
                }
            }
        }
        if holds_engine {
            self.advance(tablet, ctx);
        }
    }
}

/// `t` in microseconds: the unit of cell timestamps.
pub(super) fn micros(t: Time) -> u64 {
    t.as_nanos() / 1_000
}
