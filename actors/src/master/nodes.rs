//! Node liveness as the master sees it, node choice for loads, and tablet specs for commands.
//!
//! A node is dead only when meta marked it Down, it registered again (new epoch: the old
//! incarnation is gone), or its lease expiry (meta's clock) plus `clock_skew_margin_ms` is
//! behind the master's clock. Only then may its tablets be loaded elsewhere.
//! Must not: send anything.

use super::procedures::ProcBody;
use super::Master;
use crate::kernel::{NodeId, Time};
use crate::meta::{Assignment, NodeStatus, TabletId};
use crate::proto::control::TabletSpec;
use std::time::Duration;

impl Master {
    /// Is the node incarnation `at` surely gone?
    pub(crate) fn node_dead(&self, at: Assignment, now: Time) -> bool {
        let Some(n) = self.st.nodes.get(&at.node) else {
            return true;
        };
        if n.rec.epoch != at.epoch || n.rec.status != NodeStatus::Up {
            return true;
        }
        let margin = Duration::from_millis(self.cfg.clock_skew_margin_ms);
        n.rec.lease_expiry.plus(margin) <= now
    }

    /// Is the node Up with a lease that has not run out?
    pub(crate) fn node_live(&self, node: NodeId, now: Time) -> Option<Assignment> {
        let n = self.st.nodes.get(&node)?;
        (n.rec.status == NodeStatus::Up && now < n.rec.lease_expiry).then_some(Assignment {
            node,
            epoch: n.rec.epoch,
        })
    }

    pub(crate) fn live_nodes(&self, now: Time) -> Vec<Assignment> {
        self.st
            .nodes
            .keys()
            .filter_map(|id| self.node_live(*id, now))
            .collect()
    }

    /// Where to load a tablet: its hint if that node is live, else the live node with the
    /// fewest tablets (ties to the lowest id, so choices are deterministic).
    pub(crate) fn choose_node(&self, tablet: TabletId, now: Time) -> Option<Assignment> {
        if let Some(a) = self
            .hints
            .get(&tablet)
            .and_then(|n| self.node_live(*n, now))
        {
            return Some(a);
        }
        // Count loads still being written too, so one pass spreads its loads.
        let pending = |node: NodeId| {
            self.procs
                .values()
                .filter(|p| matches!(&p.body, ProcBody::Load(l) if l.at.node == node))
                .count()
        };
        self.live_nodes(now)
            .into_iter()
            .min_by_key(|a| (self.st.tablets_on(a.node) + pending(a.node), a.node))
    }

    pub(crate) fn tablet_spec(&self, id: TabletId) -> Option<TabletSpec> {
        let t = self.st.tablets.get(&id)?;
        let schema = self.st.tables.get(&t.rec.table)?.rec.schema.clone();
        Some(TabletSpec {
            id,
            table: t.rec.table.clone(),
            start: t.rec.start.clone(),
            end: t.rec.end.clone(),
            path: t.rec.path.clone(),
            version: t.rec.version,
            schema,
        })
    }
}
