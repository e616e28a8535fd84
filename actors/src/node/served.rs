//! One served tablet's state on a node: its phase (loading, serving, splitting, unloading),
//! the engine handle, the write lane (group commit and serialized read-modify-writes), the
//! server timestamp clock, and the counters a query reports.
//!
//! Must not: start jobs or send messages (the actor does); this is bookkeeping only.

use crate::kernel::NodeId;
use crate::meta::TabletId;
use crate::proto::control::{ServedState, TabletSpec};
use crate::proto::data::{DataOp, RowMutation};
use crate::proto::RequestId;
use shale_storage::read::Schema;
use shale_storage::tablet::Tablet;
use std::collections::VecDeque;
use std::sync::Arc;

/// Who to answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Caller {
    pub from: NodeId,
    pub id: RequestId,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Phase {
    Loading,
    Serving,
    /// Split, step 1 (seed 003): flush while still admitting writes, so the barrier that
    /// follows has little left to flush.
    SplitPreflush,
    /// Split, step 2: the barrier. New writes get `Busy`; admitted ones drain from the lane.
    SplitDrain,
    /// Split, step 3: the split job runs.
    SplitRunning,
    /// Unload: everything gets `Busy` while jobs holding the engine finish.
    UnloadDrain,
    UnloadRunning,
}

#[derive(Clone, Debug)]
pub struct SplitCmd {
    pub version: u64,
    pub key: Option<Vec<u8>>,
    pub left: (TabletId, String),
    pub right: (TabletId, String),
}

/// A write request admitted to the lane, with its server timestamp.
#[derive(Debug)]
pub struct AdmittedWrite {
    pub caller: Caller,
    pub rows: Vec<RowMutation>,
    pub ts: u64,
}

/// A read-modify-write (check-and-mutate, increment, append) admitted to the lane.
#[derive(Debug)]
pub struct AdmittedRmw {
    pub caller: Caller,
    pub op: DataOp,
    pub ts: u64,
}

/// One job's worth of lane work: consecutive writes share one group commit; consecutive
/// read-modify-writes run in order in one job.
#[derive(Debug)]
pub enum LaneItem {
    Writes(Vec<AdmittedWrite>),
    Rmw(Vec<AdmittedRmw>),
}

pub struct Served {
    /// Distinguishes this load from an earlier one of the same tablet, so a late job of a
    /// dropped incarnation never touches this one.
    pub gen: u64,
    pub spec: TabletSpec,
    pub schema: Schema,
    /// `None` while loading.
    pub tablet: Option<Arc<Tablet>>,
    pub phase: Phase,
    /// Control requests waiting for the running command (the first sender and its retries).
    pub waiters: Vec<Caller>,
    pub split: Option<SplitCmd>,
    /// Last server timestamp handed out (microseconds), strictly increasing.
    pub last_ts: u64,
    pub lane: VecDeque<LaneItem>,
    pub lane_ops: usize,
    /// A commit or read-modify-write job is running.
    pub lane_busy: bool,
    /// Jobs holding a clone of `tablet`.
    pub jobs: u32,
    pub background_running: bool,
    pub reads: u64,
    pub writes: u64,
    pub scans: u64,
}

impl Served {
    pub fn new(gen: u64, spec: TabletSpec, schema: Schema, ts_floor: u64) -> Self {
        Self {
            gen,
            spec,
            schema,
            tablet: None,
            phase: Phase::Loading,
            waiters: Vec::new(),
            split: None,
            last_ts: ts_floor,
            lane: VecDeque::new(),
            lane_ops: 0,
            lane_busy: false,
            jobs: 0,
            background_running: false,
            reads: 0,
            writes: 0,
            scans: 0,
        }
    }

    pub fn id(&self) -> TabletId {
        self.spec.id
    }

    /// The next server timestamp: the clock, but strictly after the last one handed out.
    pub fn next_ts(&mut self, now_micros: u64) -> u64 {
        let ts = now_micros.max(self.last_ts.saturating_add(1));
        self.last_ts = ts;
        ts
    }

    pub fn admits_writes(&self) -> bool {
        matches!(self.phase, Phase::Serving | Phase::SplitPreflush)
    }

    pub fn admits_reads(&self) -> bool {
        matches!(
            self.phase,
            Phase::Serving | Phase::SplitPreflush | Phase::SplitDrain | Phase::SplitRunning
        )
    }

    pub fn served_state(&self) -> ServedState {
        match self.phase {
            Phase::Loading => ServedState::Loading,
            Phase::Serving => ServedState::Serving,
            Phase::SplitPreflush | Phase::SplitDrain | Phase::SplitRunning => {
                ServedState::Splitting
            }
            Phase::UnloadDrain | Phase::UnloadRunning => ServedState::Unloading,
        }
    }

    pub fn push_write(&mut self, w: AdmittedWrite, group_ops_max: usize) {
        self.lane_ops += 1;
        if let Some(LaneItem::Writes(ws)) = self.lane.back_mut() {
            if ws.len() < group_ops_max {
                ws.push(w);
                return;
            }
        }
        self.lane.push_back(LaneItem::Writes(vec![w]));
    }

    pub fn push_rmw(&mut self, r: AdmittedRmw, group_ops_max: usize) {
        self.lane_ops += 1;
        if let Some(LaneItem::Rmw(rs)) = self.lane.back_mut() {
            if rs.len() < group_ops_max {
                rs.push(r);
                return;
            }
        }
        self.lane.push_back(LaneItem::Rmw(vec![r]));
    }

    /// Nothing admitted is waiting or running in the lane.
    pub fn lane_drained(&self) -> bool {
        !self.lane_busy && self.lane.is_empty()
    }
}
