//! Query rounds (seed 000): refresh the node list from meta, ask every live node for its
//! report, count replies against `query_deadline_ms`, then process: remember per-tablet
//! reports, write stat rows, reconcile what nodes serve with meta, and hand over to the
//! balancer and GC.
//!
//! The skip rule (Tera's guard against the query-during-split race): a tablet whose status or
//! assignment changed after the round started is ignored for that round, since the node may
//! have answered about its old self.
//! Owns: [`QueryState`] and round processing. Must not: start procedures other than through
//! the balancer, or trust a report from another incarnation of a node.

use super::io::{CtlOwner, MetaPurpose, TxnOwner};
use super::state::Reported;
use super::{Master, MasterTimer, Phase};
use crate::kernel::{Ctx, NodeId, Time};
use crate::master::error::CtlFail;
use crate::meta::{
    MetaCall, MetaError, MetaReply, Op, Record, RecordKind, StatRow, StatSubject, TabletStatus,
};
use crate::proto::control::{ControlCmd, ControlReply, NodeReport};
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;
use tracing::debug;

#[derive(Clone, Debug, Default)]
pub struct QueryState {
    /// The last round number used (rounds are numbered per master life).
    pub round: u64,
    pub active: Option<Round>,
    /// Rounds completed in this life.
    pub completed: u64,
}

#[derive(Clone, Debug)]
pub struct Round {
    pub number: u64,
    pub started: Time,
    pub rebuild: bool,
    pub waiting: BTreeSet<NodeId>,
    pub reports: Vec<(NodeId, NodeReport)>,
    /// Nodes that answered (a node that answered without a tablet does not serve it).
    pub replied: BTreeSet<NodeId>,
}

impl Master {
    pub(crate) fn arm_query_tick(&mut self, ctx: &mut Ctx<'_, Self>) {
        let every = Duration::from_millis(self.cfg.query_interval_ms);
        ctx.set_timer(every, MasterTimer::QueryTick(self.gen));
    }

    /// The periodic round.
    pub(crate) fn start_query_round(&mut self, ctx: &mut Ctx<'_, Self>) {
        if self.phase != Phase::Leading {
            return;
        }
        if self.start_round(false, ctx).is_none() {
            // A round is still running; look again next interval.
            self.arm_query_tick(ctx);
        }
    }

    /// Begin a round by refreshing the node list. None if one is already running.
    pub(crate) fn start_round(&mut self, rebuild: bool, ctx: &mut Ctx<'_, Self>) -> Option<u64> {
        if self.query.active.is_some() {
            return None;
        }
        self.query.round += 1;
        let number = self.query.round;
        self.query.active = Some(Round {
            number,
            started: ctx.now(),
            rebuild,
            waiting: BTreeSet::new(),
            reports: Vec::new(),
            replied: BTreeSet::new(),
        });
        self.scan_nodes(None, ctx);
        Some(number)
    }

    fn scan_nodes(&mut self, after: Option<crate::meta::RecordKey>, ctx: &mut Ctx<'_, Self>) {
        let call = MetaCall::Scan {
            kind: RecordKind::Node,
            after,
            limit: self.cfg.scan_page_len,
        };
        self.meta_send(MetaPurpose::ScanNodes, call, ctx);
    }

    pub(crate) fn on_nodes_scanned(
        &mut self,
        result: Result<MetaReply, MetaError>,
        ctx: &mut Ctx<'_, Self>,
    ) {
        let Ok(MetaReply::Records { records, more }) = result else {
            debug!(
                ?result,
                "node scan failed; the round goes on with the nodes it knows"
            );
            self.send_queries(ctx);
            return;
        };
        let mut last = None;
        for v in records {
            last = Some(v.value.key());
            if let Record::Node(n) = v.value {
                self.st.set_node(n);
            }
        }
        if more && last.is_some() {
            self.scan_nodes(last, ctx);
        } else {
            self.send_queries(ctx);
        }
    }

    fn send_queries(&mut self, ctx: &mut Ctx<'_, Self>) {
        let Some(number) = self.query.active.as_ref().map(|r| r.number) else {
            return;
        };
        let live = self.live_nodes(ctx.now());
        for a in &live {
            let cmd = ControlCmd::Query { round: number };
            self.ctl_send(a.node, a.epoch, cmd, CtlOwner::Query(number), ctx);
        }
        if let Some(r) = self.query.active.as_mut() {
            r.waiting = live.iter().map(|a| a.node).collect();
        }
        if live.is_empty() {
            self.finish_round(ctx);
        } else {
            let deadline = Duration::from_millis(self.cfg.query_deadline_ms);
            ctx.set_timer(deadline, MasterTimer::QueryDeadline(number));
        }
    }

    pub(crate) fn on_report(
        &mut self,
        round: u64,
        node: NodeId,
        result: Result<ControlReply, CtlFail>,
        ctx: &mut Ctx<'_, Self>,
    ) {
        let Some(r) = self.query.active.as_mut().filter(|r| r.number == round) else {
            return;
        };
        if !r.waiting.remove(&node) {
            return;
        }
        if let Ok(ControlReply::Report(rep)) = result {
            r.replied.insert(node);
            r.reports.push((node, rep));
        }
        if r.waiting.is_empty() {
            self.finish_round(ctx);
        }
    }

    pub(crate) fn on_query_deadline(&mut self, round: u64, ctx: &mut Ctx<'_, Self>) {
        if self
            .query
            .active
            .as_ref()
            .is_some_and(|r| r.number == round)
        {
            ctx.mark("master.query.deadline");
            self.finish_round(ctx);
        }
    }

    fn finish_round(&mut self, ctx: &mut Ctx<'_, Self>) {
        let Some(round) = self.query.active.take() else {
            return;
        };
        // Answers still in flight belong to a finished round.
        self.io
            .ctl
            .retain(|_, w| !matches!(w.owner, CtlOwner::Query(n) if n == round.number));
        self.query.completed += 1;
        self.process_reports(&round, ctx);
        self.write_stats(&round, ctx);
        self.dead_node_pass(ctx);
        if round.rebuild {
            self.finish_rebuild(ctx);
            return;
        }
        self.balance(ctx);
        self.gc_round(ctx);
        self.assign_pass(ctx);
        self.arm_query_tick(ctx);
    }

    fn process_reports(&mut self, round: &Round, ctx: &mut Ctx<'_, Self>) {
        let mut served: BTreeMap<NodeId, BTreeSet<crate::meta::TabletId>> = BTreeMap::new();
        let mut reconcile = Vec::new();
        for (node, rep) in &round.reports {
            if self.st.node_epoch(*node) != Some(rep.epoch) {
                ctx.mark("master.query.stale_epoch");
                continue;
            }
            let (mut size, mut load) = (0u64, 0u64);
            for tr in &rep.tablets {
                served.entry(*node).or_default().insert(tr.id);
                let rate = (tr.read_rate.get() + tr.write_rate.get() + tr.scan_rate.get()).max(0.0);
                // Saturating float-to-int conversion is the intent here.
                let rate = rate as u64;
                size = size.saturating_add(tr.size_bytes);
                load = load.saturating_add(rate);
                let referenced = self
                    .procs
                    .values()
                    .any(|p| p.body.tablets().contains(&tr.id));
                let Some(t) = self.st.tablets.get_mut(&tr.id) else {
                    if !referenced {
                        reconcile.push((*node, rep.epoch, tr.id, tr.version));
                    }
                    continue;
                };
                if t.changed_at > round.started {
                    ctx.mark("master.query.skip_changed");
                    continue;
                }
                let ours = t
                    .rec
                    .assigned
                    .is_some_and(|a| a.node == *node && a.epoch == rep.epoch)
                    && t.rec.version == tr.version;
                if ours {
                    t.reported = Some(Reported {
                        round_started: round.started,
                        node: *node,
                        size_bytes: tr.size_bytes,
                        load_per_sec: rate,
                        inherited_files: tr.inherited_files.clone(),
                        split_key: tr.split_key.clone(),
                    });
                } else if t.lock.is_none() {
                    // Served where meta says it is not (a duplicate) or at an old version.
                    reconcile.push((*node, rep.epoch, tr.id, tr.version));
                }
            }
            if let Some(n) = self.st.nodes.get_mut(node) {
                n.size_bytes = size;
                n.load_per_sec = load;
            }
        }
        for (node, epoch, id, version) in reconcile {
            ctx.mark("master.reconcile.unload_duplicate");
            let cmd = ControlCmd::Unload {
                tablet: id,
                version,
            };
            self.ctl_send(node, epoch, cmd, CtlOwner::Reconcile, ctx);
        }
        // Ready tablets their node did not report (it answered, so it does not serve them).
        let mut ops = Vec::new();
        let mut ids = Vec::new();
        for t in self.st.tablets.values() {
            let Some(a) = t.rec.assigned else { continue };
            let missing = t.rec.status == TabletStatus::Ready
                && t.lock.is_none()
                && t.changed_at <= round.started
                && round.replied.contains(&a.node)
                && self.st.node_epoch(a.node) == Some(a.epoch)
                && !served.get(&a.node).is_some_and(|s| s.contains(&t.rec.id));
            if missing {
                ctx.mark("master.reconcile.missing");
                if ops.len() < self.cfg.stat_rows_per_txn_max {
                    ops.extend(
                        self.with_status(t.rec.id, TabletStatus::Offline, None)
                            .map(Op::PutTablet),
                    );
                    ids.push(t.rec.id);
                }
            }
        }
        if !ops.is_empty() {
            self.repair(ids, ops, ctx);
        }
    }

    fn write_stats(&mut self, round: &Round, ctx: &mut Ctx<'_, Self>) {
        let mut rows = Vec::new();
        for (node, rep) in &round.reports {
            let Some(n) = self.st.nodes.get(node) else {
                continue;
            };
            if n.rec.epoch != rep.epoch {
                continue;
            }
            rows.push(StatRow {
                subject: StatSubject::Node(*node),
                round: round.number,
                at: round.started,
                size_bytes: n.size_bytes,
                reads_per_sec: 0,
                writes_per_sec: 0,
                scans_per_sec: n.load_per_sec,
                tablet_count: u32::try_from(rep.tablets.len()).unwrap_or(u32::MAX),
                inherited_files: Vec::new(),
            });
            for tr in &rep.tablets {
                let ok = self.st.tablets.get(&tr.id).is_some_and(|t| {
                    t.reported
                        .as_ref()
                        .is_some_and(|r| r.round_started == round.started)
                });
                if !ok {
                    continue;
                }
                rows.push(StatRow {
                    subject: StatSubject::Tablet(tr.id),
                    round: round.number,
                    at: round.started,
                    size_bytes: tr.size_bytes,
                    reads_per_sec: tr.read_rate.get().max(0.0) as u64,
                    writes_per_sec: tr.write_rate.get().max(0.0) as u64,
                    scans_per_sec: tr.scan_rate.get().max(0.0) as u64,
                    tablet_count: 0,
                    inherited_files: tr.inherited_files.clone(),
                });
            }
        }
        let chunk = self.cfg.stat_rows_per_txn_max.max(1);
        let ops: Vec<Op> = rows.into_iter().map(Op::PutStat).collect();
        for c in ops.chunks(chunk) {
            self.txn(TxnOwner::Stats, c.to_vec(), ctx);
        }
    }
}
