//! The master: decides where tablets live and when they split, merge or move, and runs table
//! DDL. It holds a lease in the meta store and acts only while the lease is surely valid.
//!
//! Map: `config.rs` settings; `state.rs` memory mirrored from meta; `transitions.rs` the
//! tablet state machine; `io.rs` requests to meta and nodes (ids, timeouts, bounded retries);
//! `failover.rs` lease, step-down and the rebuild after winning; `ddl.rs` admin calls;
//! `procedures/` the persisted phase machines; `query.rs` query rounds, stat rows and
//! reconciliation; `balance.rs` split/merge/move decisions and the assign pass; `gc.rs`
//! shared-file and trash deletion (jobs over the file store).
//!
//! Must not: touch a clock, socket, thread or the global RNG (time comes through `Ctx`), read
//! or write tablet data, or write meta without the lease check.

mod balance;
mod config;
mod ddl;
mod error;
mod failover;
mod gc;
mod io;
mod nodes;
mod procedures;
mod query;
mod state;
pub mod transitions;

pub use config::MasterConfig;
pub use error::{CtlFail, TxnFail};
pub use procedures::{ParentUnload, ProcBody, Procedure, IN_MEMORY_PHASES};
pub use state::{MasterState, NodeMem, Reported, TableMem, TabletMem};

use crate::kernel::{Actor, Ctx, JobError, JobId, NodeId, Time, TimerId};
use crate::meta::{MetaMsg, ProcedureId, RequestId, TabletId};
use crate::proto::admin::AdminMsg;
use crate::proto::control::ControlMsg;
use crate::proto::ClusterMsg;
use shale_storage::fs::FileStore;
use std::collections::BTreeMap;
use std::sync::Arc;
use tracing::warn;

/// Where the master is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// Not master: trying to acquire the lease.
    Follower,
    /// Holds the lease; rebuilding memory from meta and node reports. Admin calls get
    /// `NotMaster` until done.
    Rebuilding,
    /// Holds the lease and acts.
    Leading,
}

/// The lease as this master counts it: from when the acquire or renewal was *sent*, on its
/// own clock, so it always believes the lease ends no later than the meta store does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LeaseView {
    pub term: u64,
    pub valid_until: Time,
}

#[derive(Clone, Debug)]
pub enum MasterTimer {
    Acquire,
    /// Carries the generation (`Master::gen`) that set it; older chains die out.
    Renew(u64),
    /// Fires when the lease may lapse, to stop acting on time even if no event arrives.
    LeaseCheck,
    MetaTimeout(RequestId),
    MetaRetry(RequestId),
    CtlTimeout(RequestId),
    CtlRetry(RequestId),
    QueryTick(u64),
    QueryDeadline(u64),
    ProcRetry(ProcedureId),
}

/// Results of the master's file-store jobs.
#[derive(Debug)]
pub enum MasterJobOutput {
    /// The tablet folders under the tables root: (table, folder name).
    GcListed(Result<Vec<(String, String)>, String>),
    /// A dead tablet folder was deleted (number of files).
    GcDeleted {
        dir: String,
        result: Result<u64, String>,
    },
    /// A dropped table's files moved to its trash folder.
    TrashMoved {
        proc_id: ProcedureId,
        result: Result<u64, String>,
    },
    /// A trash folder was emptied after its grace period.
    TrashDeleted {
        proc_id: ProcedureId,
        result: Result<u64, String>,
    },
}

/// The master actor.
pub struct Master {
    pub(crate) cfg: MasterConfig,
    pub(crate) fs: Arc<dyn FileStore>,
    pub(crate) phase: Phase,
    pub(crate) lease: Option<LeaseView>,
    pub(crate) io: io::Io,
    pub(crate) st: MasterState,
    pub(crate) procs: BTreeMap<ProcedureId, Procedure>,
    pub(crate) query: query::QueryState,
    pub(crate) gc: gc::GcState,
    /// The node a tablet should preferably load on next (split children, merge rollback).
    pub(crate) hints: BTreeMap<TabletId, NodeId>,
    /// Bumped whenever memory is forgotten, so timers of an older life are ignored.
    pub(crate) gen: u64,
    pub(crate) rebuild: Option<failover::Rebuild>,
    /// Mutating admin requests already taken, by (sender, request id).
    pub(crate) admin_seen: crate::node::dedup::SeenRequests,
    /// Resyncs since the last committed write (kept across `forget`): the backoff's step.
    pub(crate) resyncs_in_a_row: u32,
}

impl Master {
    pub fn new(cfg: MasterConfig, fs: Arc<dyn FileStore>) -> Self {
        Self {
            cfg,
            fs,
            phase: Phase::Follower,
            lease: None,
            io: io::Io::default(),
            st: MasterState::default(),
            procs: BTreeMap::new(),
            query: query::QueryState::default(),
            gc: gc::GcState::default(),
            hints: BTreeMap::new(),
            gen: 0,
            rebuild: None,
            admin_seen: Default::default(),
            resyncs_in_a_row: 0,
        }
    }

    pub fn phase(&self) -> Phase {
        self.phase
    }
    pub fn lease(&self) -> Option<LeaseView> {
        self.lease
    }
    /// Memory as last committed (for tests and checkers: must agree with meta).
    pub fn state(&self) -> &MasterState {
        &self.st
    }
    pub fn procedures(&self) -> &BTreeMap<ProcedureId, Procedure> {
        &self.procs
    }
    pub fn config(&self) -> &MasterConfig {
        &self.cfg
    }

    /// Leading or rebuilding with a lease that is surely still valid at `now`.
    pub(crate) fn holds_lease(&self, now: Time) -> bool {
        self.phase != Phase::Follower && self.lease.is_some_and(|l| now < l.valid_until)
    }

    pub(crate) fn term(&self) -> u64 {
        self.lease.map_or(0, |l| l.term)
    }

    /// Called first on every event: a master whose lease may have lapsed stops at once.
    fn check_lease(&mut self, ctx: &mut Ctx<'_, Self>) {
        if self.phase != Phase::Follower && !self.holds_lease(ctx.now()) {
            ctx.mark("master.lease.lapsed");
            warn!(me = %ctx.me(), "master lease may have lapsed; stepping down");
            self.step_down(ctx);
        }
    }
}

impl Actor for Master {
    type Msg = ClusterMsg;
    type Timer = MasterTimer;
    type JobOutput = MasterJobOutput;

    fn on_start(&mut self, ctx: &mut Ctx<'_, Self>) {
        self.io.start_incarnation(ctx);
        self.send_acquire(ctx);
    }

    fn on_msg(&mut self, from: NodeId, msg: ClusterMsg, ctx: &mut Ctx<'_, Self>) {
        self.check_lease(ctx);
        match msg {
            ClusterMsg::Meta(MetaMsg::Response(resp)) if from == self.cfg.meta => {
                self.on_meta_response(resp, ctx)
            }
            ClusterMsg::Control(ControlMsg::Response(resp)) => {
                self.on_control_response(from, resp, ctx)
            }
            ClusterMsg::Admin(AdminMsg::Request(req)) => self.on_admin(from, req, ctx),
            other => warn!(%from, ?other, "master ignores an unexpected message"),
        }
    }

    fn on_timer(&mut self, _id: TimerId, timer: MasterTimer, ctx: &mut Ctx<'_, Self>) {
        self.check_lease(ctx);
        match timer {
            MasterTimer::Acquire => self.send_acquire(ctx),
            MasterTimer::Renew(gen) if gen == self.gen => self.send_renew(ctx),
            MasterTimer::Renew(_) => {}
            MasterTimer::LeaseCheck => {}
            MasterTimer::MetaTimeout(id) => self.on_meta_timeout(id, ctx),
            MasterTimer::MetaRetry(id) => self.resend_meta(id, ctx),
            MasterTimer::CtlTimeout(id) => self.on_ctl_timeout(id, ctx),
            MasterTimer::CtlRetry(id) => self.resend_ctl(id, ctx),
            MasterTimer::QueryTick(gen) if gen == self.gen => self.start_query_round(ctx),
            MasterTimer::QueryTick(_) => {}
            MasterTimer::QueryDeadline(round) => self.on_query_deadline(round, ctx),
            MasterTimer::ProcRetry(id) => self.proc_event(id, procedures::Event::Retry, ctx),
        }
    }

    fn on_job_done(
        &mut self,
        id: JobId,
        result: Result<MasterJobOutput, JobError>,
        ctx: &mut Ctx<'_, Self>,
    ) {
        self.check_lease(ctx);
        self.on_job(id, result, ctx);
    }
}

#[cfg(test)]
mod tests;
