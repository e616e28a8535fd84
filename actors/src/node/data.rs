//! The data path on a node: fencing (lease, epoch, tablet, version, range), input checks,
//! server timestamps, and the per-tablet write lane.
//!
//! The lane keeps writes and read-modify-writes of a tablet in admission order with one job
//! running at a time: writes that arrive while a job runs wait in the lane and are committed
//! together by the next job (group commit: one WAL append and one sync for all of them);
//! read-modify-writes run one after another in a job, so two increments never lose an update.
//! Reads do not use the lane; they run as concurrent jobs, bounded node-wide.
//!
//! Must not: acknowledge a write before its job committed it, or admit writes to a tablet
//! behind a split or unload barrier.

use super::actor::{micros, Purpose, TabletNode};
use super::convert::{check_condition, check_family, check_filter, check_mutation, in_range};
use super::served::{AdmittedRmw, AdmittedWrite, Caller, LaneItem};
use super::work::{self, NodeJobOutput};
use crate::kernel::{Ctx, JobError, JobSpec, NodeId};
use crate::meta::TabletId;
use crate::proto::data::{DataError, DataOp, DataReply, DataRequest};
use crate::proto::limits::{self, InputError};
use shale_storage::tablet::ScanRequest;
use tracing::warn;

impl TabletNode {
    pub(super) fn on_data(&mut self, from: NodeId, req: DataRequest, ctx: &mut Ctx<'_, Self>) {
        let caller = Caller { from, id: req.id };
        let tablet = req.tablet;
        let max = self.config.seen_mutations_max;
        if super::dedup::is_mutation(&req.op) && !self.seen_mutations.first_sight(from, req.id, max)
        {
            // A network duplicate: the first copy was (or is being) answered.
            ctx.mark("node.duplicate_mutation_dropped");
            return;
        }
        if let Err(e) = self.admit(caller, req, ctx) {
            match &e {
                DataError::StaleEpoch { .. } => {
                    self.counters.refused_stale_epoch += 1;
                    ctx.mark("node.stale_epoch_refused");
                }
                DataError::StaleVersion { .. } => {
                    self.counters.refused_stale_version += 1;
                    ctx.mark("node.stale_version_refused");
                }
                DataError::LeaseExpired => {
                    self.counters.refused_lease += 1;
                    ctx.mark("node.data_lease_refused");
                }
                DataError::KeyNotInRange { .. } => ctx.mark("node.key_not_in_range"),
                _ => {}
            }
            self.reply_data(caller, Err(e), ctx);
            return;
        }
        self.advance(tablet, ctx);
    }

    fn admit(
        &mut self,
        caller: Caller,
        req: DataRequest,
        ctx: &mut Ctx<'_, Self>,
    ) -> Result<(), DataError> {
        let now = ctx.now();
        if !self.lease_valid(now) {
            return Err(DataError::LeaseExpired);
        }
        let current = self.epoch().unwrap_or_default();
        #[cfg(feature = "planted-bugs")]
        let current = match self.config.planted.lease_fencing_off {
            true => req.node_epoch,
            false => current,
        };
        if req.node_epoch != current {
            return Err(DataError::StaleEpoch {
                asked: req.node_epoch,
                current,
            });
        }
        let tid = req.tablet;
        let value_max = self.config.value_bytes_max;
        let s = self
            .tablets
            .get_mut(&tid)
            .filter(|s| s.spec.table == req.table)
            .ok_or(DataError::NotServing { tablet: tid })?;
        if s.spec.version != req.tablet_version {
            return Err(DataError::StaleVersion {
                tablet: tid,
                asked: req.tablet_version,
                served: s.spec.version,
            });
        }
        let Some(engine) = s.tablet.clone() else {
            // Still loading: not served yet, but about to be.
            return Err(DataError::Busy { tablet: tid });
        };
        let (start, end) = (s.spec.start.clone(), s.spec.end.clone());
        let in_tablet = |row: &[u8]| -> Result<(), DataError> {
            limits::check_row(row)?;
            if in_range(&start, &end, row) {
                Ok(())
            } else {
                Err(DataError::KeyNotInRange { tablet: tid })
            }
        };
        match req.op {
            DataOp::Write { rows } => {
                if rows.is_empty() {
                    return Err(InputError::Invalid("a write needs at least one row".into()).into());
                }
                let muts: usize = rows.iter().map(|r| r.mutations.len()).sum();
                limits::check_count("mutations", muts, limits::MUTATIONS_PER_REQUEST_MAX)?;
                for r in &rows {
                    in_tablet(&r.row)?;
                    for m in &r.mutations {
                        check_mutation(&s.schema, m, value_max)?;
                    }
                }
                if !s.admits_writes() {
                    ctx.mark("node.write_held_by_barrier");
                    return Err(DataError::Busy { tablet: tid });
                }
                if s.lane_ops >= self.config.lane_ops_max {
                    ctx.mark("node.lane_full");
                    return Err(DataError::Busy { tablet: tid });
                }
                let ts = s.next_ts(micros(now));
                s.writes += 1;
                s.push_write(
                    AdmittedWrite { caller, rows, ts },
                    self.config.group_ops_max,
                );
                Ok(())
            }
            DataOp::Get { row, filter } => {
                in_tablet(&row)?;
                check_filter(&s.schema, &filter)?;
                if !s.admits_reads() {
                    return Err(DataError::Busy { tablet: tid });
                }
                if self.reads_in_flight >= self.config.reads_in_flight_max {
                    return Err(DataError::Busy { tablet: tid });
                }
                s.reads += 1;
                let gen = s.gen;
                let now_micros = micros(now);
                // A point read is one memtable probe and at most a few block reads: cheap
                // enough for a host to run inline (scans are not).
                self.start_read(tid, gen, caller, true, ctx, move || {
                    work::get(&engine, tid, &row, &filter, now_micros)
                });
                Ok(())
            }
            DataOp::Scan {
                start: from,
                end: to,
                reverse,
                limit_rows,
                filter,
            } => {
                if limit_rows == 0 || limit_rows > limits::SCAN_ROWS_PER_REQUEST_MAX {
                    return Err(InputError::Invalid(format!(
                        "scan limit {limit_rows} not in 1..={}",
                        limits::SCAN_ROWS_PER_REQUEST_MAX
                    ))
                    .into());
                }
                for k in [&from, &to] {
                    if k.len() > limits::ROW_KEY_BYTES_MAX {
                        return Err(InputError::RowTooLarge {
                            len: k.len(),
                            max: limits::ROW_KEY_BYTES_MAX,
                        }
                        .into());
                    }
                }
                check_filter(&s.schema, &filter)?;
                // Clip to the tablet; a range that misses it means a stale cache.
                let lo = from.max(start.clone());
                let hi = match (to.is_empty(), end.is_empty()) {
                    (true, _) => end.clone(),
                    (false, true) => to,
                    (false, false) => to.min(end.clone()),
                };
                if !hi.is_empty() && hi <= lo {
                    return Err(DataError::KeyNotInRange { tablet: tid });
                }
                if !s.admits_reads() {
                    return Err(DataError::Busy { tablet: tid });
                }
                if self.reads_in_flight >= self.config.reads_in_flight_max {
                    return Err(DataError::Busy { tablet: tid });
                }
                s.scans += 1;
                let gen = s.gen;
                let scan = ScanRequest {
                    start: lo,
                    end: hi,
                    reverse,
                    row_limit: limit_rows as usize,
                    opts: super::convert::read_options(&filter, micros(now)),
                };
                self.start_read(tid, gen, caller, false, ctx, move || {
                    work::scan(&engine, tid, scan)
                });
                Ok(())
            }
            op @ (DataOp::CheckAndMutate { .. }
            | DataOp::Increment { .. }
            | DataOp::Append { .. }) => {
                match &op {
                    DataOp::CheckAndMutate {
                        row,
                        check,
                        on_match,
                        on_miss,
                    } => {
                        in_tablet(row)?;
                        check_condition(&s.schema, check, value_max)?;
                        limits::check_count(
                            "mutations",
                            on_match.len() + on_miss.len(),
                            limits::MUTATIONS_PER_REQUEST_MAX,
                        )?;
                        for m in on_match.iter().chain(on_miss) {
                            check_mutation(&s.schema, m, value_max)?;
                        }
                    }
                    DataOp::Increment {
                        row,
                        family,
                        qualifier,
                        ..
                    } => {
                        in_tablet(row)?;
                        check_family(&s.schema, family)?;
                        limits::check_qualifier(qualifier)?;
                    }
                    DataOp::Append {
                        row,
                        family,
                        qualifier,
                        suffix,
                    } => {
                        in_tablet(row)?;
                        check_family(&s.schema, family)?;
                        limits::check_qualifier(qualifier)?;
                        limits::check_value(suffix, value_max)?;
                    }
                    _ => {}
                }
                if !s.admits_writes() {
                    ctx.mark("node.write_held_by_barrier");
                    return Err(DataError::Busy { tablet: tid });
                }
                if s.lane_ops >= self.config.lane_ops_max {
                    ctx.mark("node.lane_full");
                    return Err(DataError::Busy { tablet: tid });
                }
                let ts = s.next_ts(micros(now));
                s.writes += 1;
                s.push_rmw(AdmittedRmw { caller, op, ts }, self.config.group_ops_max);
                Ok(())
            }
        }
    }

    fn start_read(
        &mut self,
        tablet: TabletId,
        gen: u64,
        caller: Caller,
        cheap: bool,
        ctx: &mut Ctx<'_, Self>,
        read: impl FnOnce() -> Result<DataReply, DataError> + Send + 'static,
    ) {
        self.reads_in_flight += 1;
        self.counters.reads += 1;
        let spec = JobSpec::new("node.read", self.config.read_estimate);
        let spec = if cheap { spec.cheap() } else { spec };
        let purpose = Purpose::Read {
            tablet,
            gen,
            caller,
        };
        self.start_tablet_job(
            purpose,
            spec,
            true,
            move || NodeJobOutput::Read(read()),
            ctx,
        );
    }

    /// Start the job for the next lane item of `tablet` (the caller checked the lane is idle).
    pub(super) fn start_lane_job(&mut self, tablet: TabletId, ctx: &mut Ctx<'_, Self>) {
        let now_micros = micros(ctx.now());
        let Some(s) = self.tablets.get_mut(&tablet) else {
            return;
        };
        let Some(engine) = s.tablet.clone() else {
            return;
        };
        let Some(item) = s.lane.pop_front() else {
            return;
        };
        s.lane_busy = true;
        let gen = s.gen;
        match item {
            LaneItem::Writes(ws) => {
                s.lane_ops = s.lane_ops.saturating_sub(ws.len());
                if ws.len() > 1 {
                    ctx.mark("node.group_commit_batched");
                }
                self.counters.commit_jobs += 1;
                let callers = ws.iter().map(|w| w.caller).collect();
                let spec = JobSpec::new("node.commit", self.config.commit_estimate);
                let purpose = Purpose::Commit {
                    tablet,
                    gen,
                    callers,
                };
                self.start_tablet_job(
                    purpose,
                    spec,
                    true,
                    move || NodeJobOutput::Committed(work::commit(&engine, &ws)),
                    ctx,
                );
            }
            LaneItem::Rmw(rs) => {
                s.lane_ops = s.lane_ops.saturating_sub(rs.len());
                let callers = rs.iter().map(|r| r.caller).collect();
                let spec = JobSpec::new("node.rmw", self.config.commit_estimate);
                let purpose = Purpose::Rmw {
                    tablet,
                    gen,
                    callers,
                };
                self.start_tablet_job(
                    purpose,
                    spec,
                    true,
                    move || NodeJobOutput::Rmw(work::rmw(&engine, tablet, &rs, now_micros)),
                    ctx,
                );
            }
        }
    }

    pub(super) fn commit_done(
        &mut self,
        tablet: TabletId,
        gen: u64,
        callers: Vec<Caller>,
        result: Result<NodeJobOutput, JobError>,
        ctx: &mut Ctx<'_, Self>,
    ) {
        if let Some(s) = self.served_mut(tablet, gen) {
            s.lane_busy = false;
        }
        let outcome = match result {
            Ok(NodeJobOutput::Committed(Ok(()))) => Ok(DataReply::Written),
            Ok(NodeJobOutput::Committed(Err(e))) => {
                warn!(%tablet, error = %e, "group commit failed; the tablet stops serving");
                self.fail_tablet(tablet, gen, ctx);
                Err(work::data_error(tablet, e))
            }
            Ok(other) => Err(DataError::Storage(format!(
                "unexpected job output {other:?}"
            ))),
            Err(e) => Err(DataError::Storage(e.to_string())),
        };
        if outcome.is_ok() {
            self.counters.writes_committed += callers.len() as u64;
        }
        for c in callers {
            self.reply_data(c, outcome.clone(), ctx);
        }
    }

    pub(super) fn rmw_done(
        &mut self,
        tablet: TabletId,
        gen: u64,
        callers: Vec<Caller>,
        result: Result<NodeJobOutput, JobError>,
        ctx: &mut Ctx<'_, Self>,
    ) {
        let results: Vec<Result<DataReply, DataError>> = match result {
            Ok(NodeJobOutput::Rmw(rs)) => {
                let mut out = Vec::with_capacity(rs.len());
                let mut failed = false;
                for r in rs {
                    match r {
                        Ok((reply, ts)) => {
                            if let Some(s) = self.served_mut(tablet, gen) {
                                s.last_ts = s.last_ts.max(ts);
                            }
                            self.counters.rmw_ops += 1;
                            out.push(Ok(reply));
                        }
                        Err(e) => {
                            failed |= matches!(e, DataError::Storage(_));
                            out.push(Err(e));
                        }
                    }
                }
                if failed {
                    self.fail_tablet(tablet, gen, ctx);
                }
                out
            }
            Ok(other) => {
                let e = DataError::Storage(format!("unexpected job output {other:?}"));
                callers.iter().map(|_| Err(e.clone())).collect()
            }
            Err(e) => {
                let e = DataError::Storage(e.to_string());
                callers.iter().map(|_| Err(e.clone())).collect()
            }
        };
        if let Some(s) = self.served_mut(tablet, gen) {
            s.lane_busy = false;
        }
        for (c, r) in callers.into_iter().zip(results) {
            self.reply_data(c, r, ctx);
        }
    }

    /// The engine failed under this tablet (a WAL or manifest write): its state on disk is
    /// whatever a reopen finds, so stop serving it and let the master load it again.
    pub(super) fn fail_tablet(&mut self, tablet: TabletId, gen: u64, ctx: &mut Ctx<'_, Self>) {
        if self.served_mut(tablet, gen).is_none() {
            return;
        }
        ctx.mark("node.tablet_failed");
        if let Some(mut s) = self.tablets.remove(&tablet) {
            for w in s.waiters.drain(..) {
                self.reply_control(
                    w,
                    Err(crate::proto::control::ControlError::Storage(
                        "tablet failed".into(),
                    )),
                    ctx,
                );
            }
            for item in s.lane.drain(..) {
                let callers: Vec<Caller> = match item {
                    LaneItem::Writes(ws) => ws.iter().map(|w| w.caller).collect(),
                    LaneItem::Rmw(rs) => rs.iter().map(|r| r.caller).collect(),
                };
                for c in callers {
                    self.reply_data(c, Err(DataError::NotServing { tablet }), ctx);
                }
            }
        }
    }
}
