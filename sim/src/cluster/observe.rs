//! Invariants watched while a cluster runs (architecture.md section 9, items 2 and 4, and the
//! legal-transition rule): the runner calls [`Observer::after_step`] after every executor step
//! that changed the meta store's revision, and [`Observer::check_serving`] whenever it stops.
//!
//! - Legal transitions: every tablet status the meta store takes is fed to a
//!   [`TransitionChecker`] built from the master's own table (`master::transitions`). A tablet
//!   must be born Offline. After a meta store restart, and after the store reloads from its
//!   backend because a disk job failed, the durable state is taken as the new baseline: the
//!   records it lost were never acknowledged (replies wait until durable), so nobody acted on
//!   them, and a status that goes back to its durable value is a rollback, not a transition.
//! - Single owner at the latest version: among nodes whose lease is valid on their own clock,
//!   the ranges of tablets that admit reads must not overlap within a table, every such tablet
//!   must exist in meta, and its served version must be meta's version.
//! - GC safety: whenever the shared store deleted something, every file a loaded tablet reads
//!   must still exist.
//!
//! Must not: change the cluster (it only reads actors' public accessors).

use super::verdict::Violation;
use super::META;
use crate::check::{TransitionChecker, TransitionTable};
use crate::Sim;
use shale_actors::cluster::ClusterNode;
use shale_actors::master::transitions;
use shale_actors::meta::{TabletId, TabletStatus};
use shale_actors::proto::control::ServedState;
use shale_actors::NodeId;
use shale_storage::fs::FileStore;
use shale_storage::fs::SimFs;
use std::collections::{BTreeMap, BTreeSet};

const ALL_STATUSES: [TabletStatus; 10] = {
    use TabletStatus::*;
    [
        Offline, Loading, Ready, Unloading, Splitting, Merging, LoadFail, UnloadFail, Disabled,
        Retired,
    ]
};

/// The master's transition table as checker data. Any status may start an observation (a
/// baseline after a meta restart); births are checked separately.
pub fn tablet_transition_table() -> TransitionTable<TabletStatusKey> {
    let mut allowed = Vec::new();
    for a in ALL_STATUSES {
        for b in ALL_STATUSES {
            if transitions::is_legal(a, b) {
                allowed.push((TabletStatusKey(a), TabletStatusKey(b)));
            }
        }
    }
    TransitionTable::new(ALL_STATUSES.map(TabletStatusKey), allowed)
}

/// `TabletStatus` with an order (by declaration), so the checker can keep it in sets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TabletStatusKey(pub TabletStatus);

impl PartialOrd for TabletStatusKey {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for TabletStatusKey {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (self.0 as u8).cmp(&(other.0 as u8))
    }
}

/// (start, end, tablet, node) of a tablet a leased node serves.
type ServedRange<'a> = (&'a [u8], &'a [u8], TabletId, NodeId);

pub(super) struct Observer {
    transitions: TransitionChecker<TabletId, TabletStatusKey>,
    /// Meta revision last observed; `None` after a meta restart (next observation is a
    /// baseline).
    revision: Option<u64>,
    /// The meta store's recovery count when last observed: a change means it rebuilt its
    /// memory from the backend (kitchen-sink seed 2: failed commit jobs rolled unacknowledged
    /// statuses back to their durable values, which looked like Ready -> Loading).
    recoveries: Option<u64>,
    known: BTreeSet<TabletId>,
    deletes_seen: u64,
    pub violations: Vec<Violation>,
    /// Violations already reported, so a state that persists is reported once.
    reported: BTreeSet<String>,
}

impl Observer {
    pub fn new() -> Self {
        Self {
            transitions: TransitionChecker::new(tablet_transition_table()),
            revision: Some(0),
            recoveries: None,
            known: BTreeSet::new(),
            deletes_seen: 0,
            violations: Vec::new(),
            reported: BTreeSet::new(),
        }
    }

    fn report(&mut self, v: Violation) {
        if self.reported.insert(v.to_string()) {
            tracing::warn!(%v, "invariant violated");
            self.violations.push(v);
        }
    }

    /// The meta store crashed: its next state is a new baseline.
    pub fn meta_restarted(&mut self) {
        self.revision = None;
    }

    /// The meta store's revision, if it is up and serving (what the run loop watches).
    pub fn meta_revision(sim: &Sim<ClusterNode>) -> Option<u64> {
        sim.actor(META)
            .and_then(ClusterNode::as_meta)
            .filter(|m| m.is_serving())
            .map(|m| m.state().revision())
    }

    pub fn last_revision(&self) -> Option<u64> {
        self.revision
    }

    /// Feed the meta store's tablet statuses to the transition checker if they changed.
    pub fn observe_meta(&mut self, sim: &Sim<ClusterNode>) {
        let Some(meta) = sim.actor(META).and_then(ClusterNode::as_meta) else {
            return;
        };
        if !meta.is_serving() {
            return;
        }
        let rev = meta.state().revision();
        let recoveries = meta.counters().recoveries;
        let reloaded = self.recoveries.is_some_and(|r| r != recoveries);
        self.recoveries = Some(recoveries);
        if self.revision == Some(rev) && !reloaded {
            return;
        }
        let baseline = self.revision.is_none() || reloaded;
        self.revision = Some(rev);
        let snap = meta.state().snapshot();
        if baseline {
            for id in std::mem::take(&mut self.known) {
                self.transitions.forget(&id);
            }
        }
        let before = self.transitions.illegal().len();
        let mut births = Vec::new();
        for (id, v) in &snap.tablets {
            if !baseline && !self.known.contains(id) && v.value.status != TabletStatus::Offline {
                births.push((*id, v.value.status));
            }
            self.transitions
                .observe(*id, TabletStatusKey(v.value.status));
        }
        let gone: Vec<TabletId> = self
            .known
            .iter()
            .filter(|id| !snap.tablets.contains_key(id))
            .copied()
            .collect();
        for id in gone {
            self.transitions.forget(&id);
        }
        self.known = snap.tablets.keys().copied().collect();
        let illegal: Vec<_> = self.transitions.illegal()[before..].to_vec();
        for t in illegal {
            self.report(Violation::IllegalTransition {
                tablet: t.entity,
                from: t.from.map(|s| s.0),
                to: t.to.0,
                revision: rev,
            });
        }
        for (tablet, status) in births {
            self.report(Violation::BadBirth { tablet, status });
        }
    }

    /// Single owner at the latest version, and GC safety when the store deleted files.
    pub fn check_serving(&mut self, sim: &Sim<ClusterNode>, fs: &SimFs) {
        // A recovering meta store has not loaded its state yet: nothing to compare with.
        let Some(meta) = sim
            .actor(META)
            .and_then(ClusterNode::as_meta)
            .filter(|m| m.is_serving())
        else {
            return;
        };
        let tablets = &meta.state().snapshot().tablets;
        let deletes = fs.stats().deletes;
        let check_files = deletes != self.deletes_seen;
        self.deletes_seen = deletes;
        let mut served: BTreeMap<&str, Vec<ServedRange<'_>>> = BTreeMap::new();
        let mut found = Vec::new();
        let ids: Vec<NodeId> = sim.node_ids().collect();
        for nid in ids {
            let Some(node) = sim.actor(nid).and_then(ClusterNode::as_node) else {
                continue;
            };
            let (Some(now), Some(until)) = (sim.local_now(nid), node.lease_until()) else {
                continue;
            };
            let leased = now < until;
            for (id, version, state) in node.tablets() {
                if !matches!(state, ServedState::Serving | ServedState::Splitting) {
                    continue;
                }
                let Some(engine) = node.engine_ref(id) else {
                    continue;
                };
                if check_files {
                    engine.for_each_live_file(|f| {
                        if !fs.exists(f) {
                            found.push(Violation::FileDeletedWhileLive {
                                tablet: id,
                                node: nid,
                                file: f.to_string(),
                            });
                        }
                    });
                }
                if !leased {
                    continue;
                }
                match tablets.get(&id) {
                    None => found.push(Violation::ServedNotInMeta {
                        tablet: id,
                        node: nid,
                    }),
                    Some(rec) => {
                        if version < rec.value.version {
                            found.push(Violation::StaleVersionServed {
                                tablet: id,
                                node: nid,
                                served: version,
                                meta: rec.value.version,
                            });
                        }
                        let range = engine.key_range();
                        if range.start != rec.value.start || range.end != rec.value.end {
                            let text = |k: &[u8]| String::from_utf8_lossy(k).into_owned();
                            found.push(Violation::ServedOutsideRange {
                                tablet: id,
                                node: nid,
                                served_start: text(&range.start),
                                served_end: text(&range.end),
                                meta_start: text(&rec.value.start),
                                meta_end: text(&rec.value.end),
                            });
                        }
                        served.entry(&rec.value.table).or_default().push((
                            &range.start,
                            &range.end,
                            id,
                            nid,
                        ));
                    }
                }
            }
        }
        for (table, mut ranges) in served {
            ranges.sort();
            for w in ranges.windows(2) {
                let (a, b) = (&w[0], &w[1]);
                // `end` empty is +inf, so it overlaps anything after it.
                if a.1.is_empty() || a.1 > b.0 {
                    found.push(Violation::DoubleServe {
                        table: table.to_string(),
                        a: (a.2, a.3),
                        b: (b.2, b.3),
                    });
                }
            }
        }
        for v in found {
            self.report(v);
        }
    }
}
