//! Placement and load balance: the assign pass (load what is unassigned, repair failed loads
//! and unloads), the dead-node pass (take a dead node's tablets off its books), and the
//! per-round balancer (split big tablets, merge small neighbours, move for size and load).
//!
//! Every decision starts a procedure; per-round budgets (`splits_per_round_max`,
//! `merges_per_round_max`, `moves_per_round_max`) bound the churn, and `anti_flap_ms` keeps a
//! range that was just split from being merged back (and the reverse). Decisions use only
//! reports that are fresh (taken after the tablet's last change).
//! Must not: change a tablet outside a procedure except the dead-node and missing-tablet
//! repairs, which take the repair lock so no procedure races them.

use super::io::TxnOwner;
use super::procedures::{LoadPhase, LoadProc, ProcBody, UnloadPhase, UnloadProc};
use super::{Master, Phase};
use crate::kernel::{Ctx, NodeId};
use crate::meta::{Op, ProcedureId, ProcedureKind, TableStatus, TabletId, TabletStatus};
use crate::proto::control::LoadMode;
use std::time::Duration;

/// The lock repairs hold while their write is in flight (never a real procedure id).
pub const REPAIR_LOCK: ProcedureId = ProcedureId(u64::MAX);

impl Master {
    /// Load Offline tablets of enabled tables; unload tablets whose load or unload failed on
    /// a live node; let table procedures look at their tables.
    pub(crate) fn assign_pass(&mut self, ctx: &mut Ctx<'_, Self>) {
        if self.phase != Phase::Leading {
            return;
        }
        let now = ctx.now();
        let retry = Duration::from_millis(self.cfg.load_retry_ms);
        let creating: Vec<String> = self
            .procs
            .values()
            .filter(|p| p.body.kind() == ProcedureKind::CreateTable)
            .filter_map(|p| p.body.table().map(str::to_string))
            .collect();
        let mut starts = Vec::new();
        for t in self.st.tablets.values() {
            if t.lock.is_some() || self.st.table_status(&t.rec.table) != Some(TableStatus::Enabled)
            {
                continue;
            }
            match (t.rec.status, t.rec.assigned) {
                (TabletStatus::Offline, None) => starts.push((t.rec.id, None)),
                (TabletStatus::LoadFail, None) if now.since(t.changed_at) >= retry => {
                    starts.push((t.rec.id, None))
                }
                (TabletStatus::LoadFail | TabletStatus::UnloadFail, Some(a)) => {
                    starts.push((t.rec.id, Some(a)))
                }
                _ => {}
            }
        }
        for (id, unload_from) in starts {
            let body = match unload_from {
                Some(at) => {
                    ctx.mark("master.assign.repair_unload");
                    ProcBody::Unload(UnloadProc {
                        tablet: id,
                        at,
                        then: TabletStatus::Offline,
                        phase: UnloadPhase::Marking,
                    })
                }
                None => {
                    let Some(at) = self.choose_node(id, now) else {
                        ctx.mark("master.assign.no_live_node");
                        break;
                    };
                    let table = self.st.tablets.get(&id).map(|t| t.rec.table.clone());
                    let mode = if table.is_some_and(|n| creating.contains(&n)) {
                        LoadMode::Create
                    } else {
                        LoadMode::Open
                    };
                    self.hints.remove(&id);
                    ProcBody::Load(LoadProc {
                        tablet: id,
                        at,
                        mode,
                        phase: LoadPhase::Assigning,
                    })
                }
            };
            if self.start_procedure(body, ctx).is_none() {
                break;
            }
        }
        self.table_procs_pass(ctx);
    }

    /// Take tablets off dead nodes' books (lease expired plus margin, Down, or re-registered).
    pub(crate) fn dead_node_pass(&mut self, ctx: &mut Ctx<'_, Self>) {
        let now = ctx.now();
        let mut ops = Vec::new();
        let mut ids = Vec::new();
        for t in self.st.tablets.values() {
            let Some(a) = t.rec.assigned else { continue };
            if t.lock.is_some() || !self.node_dead(a, now) {
                continue;
            }
            let to = match self.st.table_status(&t.rec.table) {
                Some(TableStatus::Enabled) => TabletStatus::Offline,
                _ if crate::master::transitions::is_legal(t.rec.status, TabletStatus::Disabled) => {
                    TabletStatus::Disabled
                }
                _ => TabletStatus::Offline,
            };
            if !crate::master::transitions::is_legal(t.rec.status, to) {
                continue;
            }
            if ops.len() >= self.cfg.stat_rows_per_txn_max {
                break;
            }
            ops.extend(self.with_status(t.rec.id, to, None).map(Op::PutTablet));
            ids.push(t.rec.id);
        }
        if !ops.is_empty() {
            ctx.mark("master.failover.reassign_dead");
            self.repair(ids, ops, ctx);
        }
    }

    /// A write outside any procedure, under the repair lock.
    pub(crate) fn repair(&mut self, ids: Vec<TabletId>, ops: Vec<Op>, ctx: &mut Ctx<'_, Self>) {
        for id in ids {
            self.st.lock(id, REPAIR_LOCK);
        }
        self.txn(TxnOwner::Repair, ops, ctx);
    }

    /// After a query round: split, merge and move within the per-round budgets.
    pub(crate) fn balance(&mut self, ctx: &mut Ctx<'_, Self>) {
        if self.phase != Phase::Leading {
            return;
        }
        let now = ctx.now();
        let flap = Duration::from_millis(self.cfg.anti_flap_ms);
        let eligible = |m: &Self, id: TabletId| {
            m.st.tablets.get(&id).is_some_and(|t| {
                t.lock.is_none()
                    && t.rec.status == TabletStatus::Ready
                    && t.fresh_report().is_some()
                    && m.st.table_status(&t.rec.table) == Some(TableStatus::Enabled)
            })
        };
        // Splits.
        let mut splits: Vec<(u64, TabletId, Vec<u8>)> = self
            .st
            .tablets
            .values()
            .filter_map(|t| {
                let r = t.fresh_report()?;
                (r.size_bytes > self.cfg.split_size_bytes)
                    .then(|| r.split_key.clone().map(|k| (r.size_bytes, t.rec.id, k)))
                    .flatten()
            })
            .collect();
        splits.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
        let mut n = 0;
        for (_, id, key) in splits {
            if n >= self.cfg.splits_per_round_max {
                break;
            }
            if eligible(self, id) && self.start_split(id, Some(key), ctx).is_ok() {
                ctx.mark("master.balance.split");
                n += 1;
            }
        }
        // Merges: adjacent, both small, both old enough (anti-flap).
        let tables: Vec<String> = self.st.tables.keys().cloned().collect();
        let mut n = 0;
        'tables: for table in tables {
            let ts: Vec<(TabletId, u64, bool)> = self
                .st
                .tablets_of(&table)
                .map(|t| {
                    let small = t
                        .fresh_report()
                        .is_some_and(|r| r.size_bytes < self.cfg.merge_size_bytes);
                    let settled = now.since(t.born_at) >= flap;
                    if small && !settled {
                        ctx.mark("master.balance.anti_flap");
                    }
                    (t.rec.id, 0, small && settled)
                })
                .collect();
            for w in ts.windows(2) {
                if n >= self.cfg.merges_per_round_max {
                    break 'tables;
                }
                let (a, b) = (w[0], w[1]);
                if a.2
                    && b.2
                    && eligible(self, a.0)
                    && eligible(self, b.0)
                    && self.start_merge(a.0, b.0, ctx).is_ok()
                {
                    ctx.mark("master.balance.merge");
                    n += 1;
                }
            }
        }
        self.balance_moves(ctx);
    }

    fn balance_moves(&mut self, ctx: &mut Ctx<'_, Self>) {
        let now = ctx.now();
        let live: Vec<NodeId> = self.live_nodes(now).into_iter().map(|a| a.node).collect();
        if live.len() < 2 {
            return;
        }
        let mut moves = 0;
        for by_load in [false, true] {
            if moves >= self.cfg.moves_per_round_max {
                return;
            }
            let metric = |m: &Self, n: NodeId| {
                m.st.nodes.get(&n).map_or(0, |x| {
                    if by_load {
                        x.load_per_sec
                    } else {
                        x.size_bytes
                    }
                })
            };
            let Some(src) = live
                .iter()
                .copied()
                .max_by_key(|n| (metric(self, *n), std::cmp::Reverse(*n)))
            else {
                return;
            };
            let Some(dst) = live.iter().copied().min_by_key(|n| (metric(self, *n), *n)) else {
                return;
            };
            let (hi, lo) = (metric(self, src), metric(self, dst));
            let ratio = if by_load {
                self.cfg.move_load_ratio_pct
            } else {
                self.cfg.move_size_ratio_pct
            };
            let worth = src != dst
                && hi.saturating_mul(100) >= lo.saturating_mul(ratio)
                && hi > lo
                && (!by_load || hi >= self.cfg.move_load_min_per_sec);
            if !worth {
                continue;
            }
            // The tablet that best evens the pair without overshooting.
            let gap = hi - lo;
            let pick = self
                .st
                .tablets
                .values()
                .filter(|t| t.rec.assigned.is_some_and(|a| a.node == src))
                .filter(|t| t.lock.is_none() && t.rec.status == TabletStatus::Ready)
                .filter_map(|t| {
                    let r = t.fresh_report()?;
                    let v = if by_load {
                        r.load_per_sec
                    } else {
                        r.size_bytes
                    };
                    (v > 0 && v < gap)
                        .then_some((gap / 2).abs_diff(v))
                        .map(|d| (d, t.rec.id))
                })
                .min();
            if let Some((_, id)) = pick {
                if self.start_move(id, dst, ctx).is_ok() {
                    ctx.mark(if by_load {
                        "master.balance.move_load"
                    } else {
                        "master.balance.move_size"
                    });
                    moves += 1;
                }
            }
        }
    }
}
