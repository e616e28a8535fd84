//! Master commands on a node: load, unload, split and query, fenced by the master's term and
//! this node's epoch, and idempotent as `proto::control` requires (a retry of a command that
//! is running joins it; a retry of one that finished gets the same answer).
//!
//! Split follows seed 003's barrier: flush while still taking writes, then close the tablet
//! to new writes (they get `Busy`, which clients retry), let admitted ones commit, flush again
//! and split inside one job, and stop serving the parent.
//!
//! Must not: delete files, or serve a tablet at another version than the command named.

use super::actor::{micros, Purpose, TabletNode};
use super::convert::engine_schema;
use super::served::{Caller, Phase, Served, SplitCmd};
use super::work::{self, LoadError, NodeJobOutput};
use crate::kernel::{Ctx, JobError, JobSpec, NodeId};
use crate::meta::TabletId;
use crate::proto::control::{
    ControlCmd, ControlError, ControlReply, ControlRequest, LoadMode, NodeReport, Rate,
    TabletReport, TabletSpec,
};
use crate::proto::limits;
use shale_storage::StorageError;
use std::sync::Arc;
use tracing::{info, warn};

impl TabletNode {
    pub(super) fn on_control(
        &mut self,
        from: NodeId,
        req: ControlRequest,
        ctx: &mut Ctx<'_, Self>,
    ) {
        let caller = Caller { from, id: req.id };
        if !self.lease_valid(ctx.now()) {
            self.counters.refused_lease += 1;
            ctx.mark("node.control_lease_refused");
            self.reply_control(caller, Err(ControlError::LeaseExpired), ctx);
            return;
        }
        if req.term < self.highest_term {
            self.counters.refused_stale_term += 1;
            ctx.mark("node.stale_term_refused");
            let err = ControlError::StaleTerm {
                asked: req.term,
                seen: self.highest_term,
            };
            self.reply_control(caller, Err(err), ctx);
            return;
        }
        let current = self.epoch().unwrap_or_default();
        #[cfg(feature = "planted-bugs")]
        let current = match self.config.planted.lease_fencing_off {
            true => req.node_epoch,
            false => current,
        };
        if req.node_epoch != current {
            self.counters.refused_stale_epoch += 1;
            ctx.mark("node.stale_epoch_refused");
            let err = ControlError::StaleEpoch {
                asked: req.node_epoch,
                current,
            };
            self.reply_control(caller, Err(err), ctx);
            return;
        }
        self.highest_term = req.term;
        match req.cmd {
            ControlCmd::Load { tablet, mode } => self.on_load(caller, tablet, mode, ctx),
            ControlCmd::Unload { tablet, version } => self.on_unload(caller, tablet, version, ctx),
            ControlCmd::Split {
                tablet,
                version,
                key,
                left,
                right,
            } => {
                let cmd = SplitCmd {
                    version,
                    key,
                    left,
                    right,
                };
                self.on_split(caller, tablet, cmd, ctx)
            }
            ControlCmd::Query { round } => self.on_query(caller, round, ctx),
        }
    }

    /// Join the command running on `s`, within the bound on waiters.
    fn join(&mut self, caller: Caller, tablet: TabletId, ctx: &mut Ctx<'_, Self>) {
        let max = self.config.control_waiters_max;
        if let Some(s) = self.tablets.get_mut(&tablet) {
            if s.waiters.len() < max {
                ctx.mark("node.control_retry_joined");
                s.waiters.push(caller);
                return;
            }
        }
        self.reply_control(caller, Err(ControlError::Busy { tablet }), ctx);
    }

    fn on_load(
        &mut self,
        caller: Caller,
        spec: TabletSpec,
        mode: LoadMode,
        ctx: &mut Ctx<'_, Self>,
    ) {
        let tid = spec.id;
        if let Some(s) = self.tablets.get(&tid) {
            if s.spec.version != spec.version {
                self.counters.refused_stale_version += 1;
                let err = ControlError::StaleVersion {
                    tablet: tid,
                    asked: spec.version,
                    served: s.spec.version,
                };
                self.reply_control(caller, Err(err), ctx);
                return;
            }
            match (&s.phase, &s.tablet) {
                (Phase::Loading, _) => self.join(caller, tid, ctx),
                (Phase::Serving, Some(t)) => {
                    ctx.mark("node.load_idempotent");
                    let reply = ControlReply::Loaded {
                        tablet: tid,
                        version: spec.version,
                        size_bytes: size_of(t),
                    };
                    self.reply_control(caller, Ok(reply), ctx);
                }
                _ => self.reply_control(caller, Err(ControlError::Busy { tablet: tid }), ctx),
            }
            return;
        }
        if let Err(why) = check_spec(&spec) {
            self.reply_control(caller, Err(ControlError::Refused(why)), ctx);
            return;
        }
        if self.tablets.len() >= self.config.tablets_max {
            let why = format!(
                "node serves its limit of {} tablets",
                self.config.tablets_max
            );
            self.reply_control(caller, Err(ControlError::Refused(why)), ctx);
            return;
        }
        let schema = engine_schema(&spec.schema);
        if let Err(e) = schema.validate() {
            self.reply_control(caller, Err(ControlError::Refused(e.to_string())), ctx);
            return;
        }
        self.next_gen += 1;
        let gen = self.next_gen;
        let floor = micros(ctx.now().plus(self.config.clock_skew_margin));
        let mut served = Served::new(gen, spec.clone(), schema.clone(), floor);
        served.waiters.push(caller);
        self.tablets.insert(tid, served);
        info!(tablet = %tid, version = spec.version, ?mode, "loading");
        let fs = Arc::clone(&self.fs);
        let opts = self.config.tablet.clone();
        let planted = self.planted();
        let job = JobSpec::new("node.load", self.config.load_estimate);
        self.start_tablet_job(
            Purpose::Load { tablet: tid, gen },
            job,
            false,
            move || NodeJobOutput::Loaded(work::load(fs, &spec, schema, &mode, opts, planted)),
            ctx,
        );
    }

    pub(super) fn load_done(
        &mut self,
        tablet: TabletId,
        gen: u64,
        result: Result<NodeJobOutput, JobError>,
        ctx: &mut Ctx<'_, Self>,
    ) {
        let Some(s) = self.served_mut(tablet, gen) else {
            // Dropped while loading (the lease lapsed); the engine handle just goes away.
            return;
        };
        let waiters = std::mem::take(&mut s.waiters);
        let version = s.spec.version;
        let reply = match result {
            Ok(NodeJobOutput::Loaded(Ok(handle))) => {
                let size_bytes = size_of(&handle.0);
                s.tablet = Some(handle.0);
                s.phase = Phase::Serving;
                self.counters.loads += 1;
                info!(%tablet, version, "serving");
                Ok(ControlReply::Loaded {
                    tablet,
                    version,
                    size_bytes,
                })
            }
            other => {
                self.tablets.remove(&tablet);
                ctx.mark("node.load_failed");
                Err(match other {
                    Ok(NodeJobOutput::Loaded(Err(LoadError::Refused(why)))) => {
                        ControlError::Refused(why)
                    }
                    Ok(NodeJobOutput::Loaded(Err(LoadError::Storage(e)))) => {
                        ControlError::Storage(e.to_string())
                    }
                    Ok(o) => ControlError::Storage(format!("unexpected job output {o:?}")),
                    Err(e) => ControlError::Storage(e.to_string()),
                })
            }
        };
        for w in waiters {
            self.reply_control(w, reply.clone(), ctx);
        }
        self.advance(tablet, ctx);
    }

    fn on_unload(&mut self, caller: Caller, tid: TabletId, version: u64, ctx: &mut Ctx<'_, Self>) {
        let Some(s) = self.tablets.get_mut(&tid) else {
            ctx.mark("node.unload_idempotent");
            self.reply_control(caller, Ok(ControlReply::Unloaded { tablet: tid }), ctx);
            return;
        };
        if s.spec.version != version {
            self.counters.refused_stale_version += 1;
            let err = ControlError::StaleVersion {
                tablet: tid,
                asked: version,
                served: s.spec.version,
            };
            self.reply_control(caller, Err(err), ctx);
            return;
        }
        match s.phase {
            Phase::Serving => {
                s.phase = Phase::UnloadDrain;
                s.waiters.push(caller);
                self.advance(tid, ctx);
            }
            Phase::UnloadDrain | Phase::UnloadRunning => self.join(caller, tid, ctx),
            _ => self.reply_control(caller, Err(ControlError::Busy { tablet: tid }), ctx),
        }
    }

    pub(super) fn start_unload_job(&mut self, tid: TabletId, ctx: &mut Ctx<'_, Self>) {
        let Some(s) = self.tablets.get_mut(&tid) else {
            return;
        };
        let Some(handle) = s.tablet.take() else {
            return;
        };
        match Arc::try_unwrap(handle) {
            Ok(engine) => {
                s.phase = Phase::UnloadRunning;
                let gen = s.gen;
                let spec = JobSpec::new("node.unload", self.config.flush_estimate);
                self.start_tablet_job(
                    Purpose::Unload { tablet: tid, gen },
                    spec,
                    false,
                    move || NodeJobOutput::Unloaded(engine.unload()),
                    ctx,
                );
            }
            Err(handle) => {
                // Someone still holds the engine although no job does: serve on and let the
                // master retry rather than unload under a reader.
                warn!(tablet = %tid, "unload: engine still referenced; refusing");
                s.tablet = Some(handle);
                s.phase = Phase::Serving;
                let waiters = std::mem::take(&mut s.waiters);
                for w in waiters {
                    self.reply_control(w, Err(ControlError::Busy { tablet: tid }), ctx);
                }
            }
        }
    }

    pub(super) fn unload_done(
        &mut self,
        tid: TabletId,
        gen: u64,
        result: Result<NodeJobOutput, JobError>,
        ctx: &mut Ctx<'_, Self>,
    ) {
        if self.served_mut(tid, gen).is_none() {
            return;
        }
        let Some(mut s) = self.tablets.remove(&tid) else {
            return;
        };
        let reply = match result {
            Ok(NodeJobOutput::Unloaded(Ok(()))) => {
                self.counters.unloads += 1;
                info!(tablet = %tid, "unloaded");
                Ok(ControlReply::Unloaded { tablet: tid })
            }
            // The engine was consumed either way; a reopen elsewhere recovers from the WAL.
            Ok(NodeJobOutput::Unloaded(Err(e))) => Err(ControlError::Storage(e.to_string())),
            Ok(o) => Err(ControlError::Storage(format!(
                "unexpected job output {o:?}"
            ))),
            Err(e) => Err(ControlError::Storage(e.to_string())),
        };
        for w in s.waiters.drain(..) {
            self.reply_control(w, reply.clone(), ctx);
        }
    }

    fn on_split(&mut self, caller: Caller, tid: TabletId, cmd: SplitCmd, ctx: &mut Ctx<'_, Self>) {
        if let Some((_, _, reply)) = self
            .done_splits
            .iter()
            .find(|(t, v, _)| *t == tid && *v == cmd.version)
        {
            ctx.mark("node.split_idempotent");
            let reply = reply.clone();
            self.reply_control(caller, Ok(reply), ctx);
            return;
        }
        let Some(s) = self.tablets.get_mut(&tid) else {
            self.reply_control(caller, Err(ControlError::NotServing { tablet: tid }), ctx);
            return;
        };
        if s.spec.version != cmd.version {
            self.counters.refused_stale_version += 1;
            let err = ControlError::StaleVersion {
                tablet: tid,
                asked: cmd.version,
                served: s.spec.version,
            };
            self.reply_control(caller, Err(err), ctx);
            return;
        }
        match s.phase {
            Phase::Serving => {}
            Phase::SplitPreflush | Phase::SplitDrain | Phase::SplitRunning => {
                let same = s.split.as_ref().is_some_and(|c| {
                    c.key == cmd.key && c.left == cmd.left && c.right == cmd.right
                });
                if same {
                    self.join(caller, tid, ctx);
                } else {
                    self.reply_control(caller, Err(ControlError::Busy { tablet: tid }), ctx);
                }
                return;
            }
            _ => {
                self.reply_control(caller, Err(ControlError::Busy { tablet: tid }), ctx);
                return;
            }
        }
        if let Err(why) = check_split(&s.spec, &cmd) {
            self.reply_control(caller, Err(ControlError::Refused(why)), ctx);
            return;
        }
        let Some(engine) = s.tablet.clone() else {
            return;
        };
        info!(tablet = %tid, "split: pre-flush");
        s.phase = Phase::SplitPreflush;
        s.split = Some(cmd);
        s.waiters.push(caller);
        let gen = s.gen;
        self.start_preflush(tid, gen, engine, ctx);
    }

    fn start_preflush(
        &mut self,
        tid: TabletId,
        gen: u64,
        engine: Arc<shale_storage::tablet::Tablet>,
        ctx: &mut Ctx<'_, Self>,
    ) {
        let spec = JobSpec::new("node.split.preflush", self.config.flush_estimate);
        self.start_tablet_job(
            Purpose::PreFlush { tablet: tid, gen },
            spec,
            true,
            move || NodeJobOutput::Flushed(engine.flush()),
            ctx,
        );
    }

    pub(super) fn preflush_done(
        &mut self,
        tid: TabletId,
        gen: u64,
        result: Result<NodeJobOutput, JobError>,
        ctx: &mut Ctx<'_, Self>,
    ) {
        let again = ctx.buggify("node.split.after_flush");
        let Some(s) = self.served_mut(tid, gen) else {
            return;
        };
        if s.phase != Phase::SplitPreflush {
            return;
        }
        match result {
            Ok(NodeJobOutput::Flushed(Ok(()))) => {
                if again {
                    // A rare but legal path: flush once more while writes keep arriving, so
                    // the barrier starts later than usual.
                    if let Some(engine) = s.tablet.clone() {
                        ctx.mark("node.split.preflush_repeated");
                        self.start_preflush(tid, gen, engine, ctx);
                        return;
                    }
                }
                ctx.mark("node.split_barrier");
                s.phase = Phase::SplitDrain;
            }
            other => {
                warn!(tablet = %tid, ?other, "split pre-flush failed; split abandoned");
                s.phase = Phase::Serving;
                s.split = None;
                let waiters = std::mem::take(&mut s.waiters);
                let err = ControlError::Storage(format!("pre-flush failed: {other:?}"));
                for w in waiters {
                    self.reply_control(w, Err(err.clone()), ctx);
                }
            }
        }
    }

    pub(super) fn start_split_job(&mut self, tid: TabletId, ctx: &mut Ctx<'_, Self>) {
        let Some(s) = self.tablets.get_mut(&tid) else {
            return;
        };
        let (Some(engine), Some(cmd)) = (s.tablet.clone(), s.split.clone()) else {
            return;
        };
        s.phase = Phase::SplitRunning;
        let gen = s.gen;
        let planted = self.planted();
        let spec = JobSpec::new("node.split", self.config.split_estimate);
        self.start_tablet_job(
            Purpose::Split { tablet: tid, gen },
            spec,
            true,
            move || {
                NodeJobOutput::Split(work::split(
                    &engine, cmd.key, &cmd.left, &cmd.right, planted,
                ))
            },
            ctx,
        );
    }

    pub(super) fn split_done(
        &mut self,
        tid: TabletId,
        gen: u64,
        result: Result<NodeJobOutput, JobError>,
        ctx: &mut Ctx<'_, Self>,
    ) {
        let Some(s) = self.served_mut(tid, gen) else {
            return;
        };
        let version = s.spec.version;
        let reply = match result {
            Ok(NodeJobOutput::Split(Ok(out))) => {
                // The engine closed the parent: stop serving it. Reads still running on it get
                // `Closed`, which clients see as NotServing and follow to the children.
                let mut s = match self.tablets.remove(&tid) {
                    Some(s) => s,
                    None => return,
                };
                self.counters.splits += 1;
                ctx.mark("node.split_done");
                info!(tablet = %tid, "split done");
                let reply = ControlReply::Split {
                    tablet: tid,
                    key: out.key,
                    left_size_bytes: out.left_size_bytes,
                    right_size_bytes: out.right_size_bytes,
                };
                while self.done_splits.len() >= self.config.done_splits_max.max(1) {
                    self.done_splits.pop_front();
                }
                self.done_splits.push_back((tid, version, reply.clone()));
                let waiters = std::mem::take(&mut s.waiters);
                for w in waiters {
                    self.reply_control(w, Ok(reply.clone()), ctx);
                }
                return;
            }
            Ok(NodeJobOutput::Split(Err(StorageError::InvalidArgument(why)))) => {
                Err(ControlError::Refused(why))
            }
            Ok(NodeJobOutput::Split(Err(e))) => Err(ControlError::Storage(e.to_string())),
            Ok(o) => Err(ControlError::Storage(format!(
                "unexpected job output {o:?}"
            ))),
            Err(e) => Err(ControlError::Storage(e.to_string())),
        };
        // Nothing split: the parent serves on (a disk failure surfaces on its next write).
        ctx.mark("node.split_failed");
        s.phase = Phase::Serving;
        s.split = None;
        let waiters = std::mem::take(&mut s.waiters);
        for w in waiters {
            self.reply_control(w, reply.clone(), ctx);
        }
    }

    fn on_query(&mut self, caller: Caller, round: u64, ctx: &mut Ctx<'_, Self>) {
        let now = ctx.now();
        let secs = self
            .last_query_at
            .map(|t| now.since(t).as_secs_f64())
            .filter(|s| *s > 0.0);
        self.last_query_at = Some(now);
        let rate = |n: u64| Rate::new(secs.map_or(0.0, |s| n as f64 / s));
        let mut tablets = Vec::with_capacity(self.tablets.len());
        for s in self.tablets.values_mut() {
            let (size_bytes, inherited_files, split_key) = match &s.tablet {
                Some(t) => (
                    size_of(t),
                    t.inherited_files(),
                    // Reads only the in-memory block indexes.
                    t.split_key().ok().flatten(),
                ),
                None => (0, Vec::new(), None),
            };
            tablets.push(TabletReport {
                id: s.spec.id,
                version: s.spec.version,
                state: s.served_state(),
                size_bytes,
                read_rate: rate(s.reads),
                write_rate: rate(s.writes),
                scan_rate: rate(s.scans),
                inherited_files,
                split_key,
            });
            s.reads = 0;
            s.writes = 0;
            s.scans = 0;
        }
        let report = NodeReport {
            round,
            epoch: self.epoch().unwrap_or_default(),
            tablets,
        };
        self.reply_control(caller, Ok(ControlReply::Report(report)), ctx);
    }
}

pub(super) fn size_of(t: &shale_storage::tablet::Tablet) -> u64 {
    let (sst, mem) = t.approximate_size_bytes();
    sst.saturating_add(mem as u64)
}

fn check_spec(spec: &TabletSpec) -> Result<(), String> {
    limits::check_name("table", &spec.table).map_err(|e| e.to_string())?;
    if !spec.end.is_empty() && spec.start >= spec.end {
        return Err("empty key range".into());
    }
    if spec.path.is_empty() {
        return Err("empty tablet path".into());
    }
    Ok(())
}

fn check_split(spec: &TabletSpec, cmd: &SplitCmd) -> Result<(), String> {
    if let Some(k) = &cmd.key {
        if k.as_slice() <= spec.start.as_slice() || (!spec.end.is_empty() && *k >= spec.end) {
            return Err("split key not strictly inside the tablet's range".into());
        }
    }
    let (l, r) = (&cmd.left, &cmd.right);
    if l.0 == r.0 || l.0 == spec.id || r.0 == spec.id {
        return Err("children need their own tablet ids".into());
    }
    if l.1 == r.1 || l.1 == spec.path || r.1 == spec.path {
        return Err("children need their own paths".into());
    }
    Ok(())
}
