//! Triggers (`when = "split.committing"`): the runner polls the cluster whenever its loop
//! stops (after every meta store write and every client answer) and fires a fault the first
//! time its phase is reached the `occurrence`-th time.
//!
//! Where a phase comes from:
//! - `split`, `merge`, `move`, `load`, `unload`, `disable`, `enable`, `drop`: the phase a
//!   procedure record in meta names (each phase change is a meta write, so none is missed);
//!   a phase counts once per procedure;
//! - `failover`: a master entering `follower`, `rebuilding` or `leading`;
//! - `gc`, `query`: the master's coverage mark `master.gc.PHASE` / `master.query.PHASE`
//!   being hit (each hit counts);
//! - phases a procedure only passes in memory, because the write that ends them deletes the
//!   record (`split.committing`, every `finishing`, ...; [`IN_MEMORY_PHASES`]): the mark the
//!   master hits on entering them. Before these were marks,
//!   `split.committing` never fired.
//!
//! Owns: phase names ([`known_phases`]) and occurrence counting. Must not: apply faults.

use crate::cluster::SimCluster;
use crate::scenario::Trigger;
use shale_actors::master::{Phase, IN_MEMORY_PHASES};
use shale_actors::meta::{ProcedureId, ProcedureKind};
use std::collections::{BTreeMap, BTreeSet};

/// The phases a trigger may name, per procedure.
pub fn known_phases(procedure: &str) -> &'static [&'static str] {
    match procedure {
        "split" => &["splitting", "committing", "rolling_back"],
        "merge" => &[
            "unloading",
            "load_merged",
            "loading",
            "finishing",
            "rolling_back",
        ],
        "move" => &["unloading", "loading", "finishing"],
        "load" => &["loading", "finishing"],
        "unload" => &["unloading", "finishing"],
        "disable" | "enable" => &["waiting", "fixing", "finishing"],
        "drop" => &["trashing", "committing", "trashed", "finishing"],
        "failover" => &["follower", "rebuilding", "leading"],
        "gc" => &[
            "delete",
            "deleted",
            "in_grace",
            "in_use",
            "skip_loading",
            "skip_table",
            "skip_unreported",
        ],
        "query" => &["deadline", "skip_changed", "stale_epoch"],
        _ => &[],
    }
}

fn kind_of(procedure: &str) -> Option<ProcedureKind> {
    Some(match procedure {
        "split" => ProcedureKind::Split,
        "merge" => ProcedureKind::Merge,
        "move" => ProcedureKind::Move,
        "load" => ProcedureKind::Load,
        "unload" => ProcedureKind::Unload,
        "disable" => ProcedureKind::DisableTable,
        "enable" => ProcedureKind::EnableTable,
        "drop" => ProcedureKind::DropTable,
        _ => return None,
    })
}

fn phase_name(p: Phase) -> &'static str {
    match p {
        Phase::Follower => "follower",
        Phase::Rebuilding => "rebuilding",
        Phase::Leading => "leading",
    }
}

/// A phase reached, as the HTML timeline shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PhaseSeen {
    pub procedure: String,
    pub phase: String,
    /// Procedure id, or the master's node id for failover.
    pub subject: String,
}

#[derive(Default)]
pub struct Watcher {
    /// (procedure, phase) -> times reached.
    counts: BTreeMap<(String, String), u32>,
    seen_procs: BTreeSet<(ProcedureId, String)>,
    master_phase: BTreeMap<u64, &'static str>,
    marks: BTreeMap<String, u64>,
    revision: Option<u64>,
    /// Mark names polled for `gc`, `query` and in-memory phase triggers.
    mark_names: Vec<(String, String, String)>,
}

/// The mark the master hits on entering `phase` of `procedure` if that phase is one it
/// passes only in memory ([`IN_MEMORY_PHASES`]).
fn memory_phase_mark(procedure: &str, phase: &str) -> Option<&'static str> {
    let kind = kind_of(procedure)?;
    IN_MEMORY_PHASES
        .iter()
        .find(|(k, p, _)| *k == kind && *p == phase)
        .map(|(_, _, mark)| *mark)
}

impl Watcher {
    pub fn new(triggers: &[&Trigger]) -> Self {
        let mark_names = triggers
            .iter()
            .filter_map(|t| {
                let mark = match memory_phase_mark(&t.procedure, &t.phase) {
                    Some(mark) => mark.to_string(),
                    None if t.procedure == "gc" || t.procedure == "query" => {
                        format!("master.{}.{}", t.procedure, t.phase)
                    }
                    None => return None,
                };
                Some((t.procedure.clone(), t.phase.clone(), mark))
            })
            .collect();
        Self {
            mark_names,
            ..Self::default()
        }
    }

    pub fn count(&self, t: &Trigger) -> u32 {
        self.counts
            .get(&(t.procedure.clone(), t.phase.clone()))
            .copied()
            .unwrap_or(0)
    }

    /// Look at the cluster; returns the phases newly reached.
    pub fn poll(&mut self, c: &SimCluster) -> Vec<PhaseSeen> {
        let mut new = Vec::new();
        let rev = c
            .meta()
            .filter(|m| m.is_serving())
            .map(|m| m.state().revision());
        if rev.is_some() && rev != self.revision {
            self.revision = rev;
            for p in c.procedures() {
                if self.seen_procs.insert((p.id, p.phase.clone())) {
                    let name = PROCS
                        .iter()
                        .find(|n| kind_of(n) == Some(p.kind))
                        .copied()
                        .unwrap_or("other");
                    new.push(PhaseSeen {
                        procedure: name.to_string(),
                        phase: p.phase.clone(),
                        subject: format!("proc {}", p.id),
                    });
                }
            }
        }
        for id in c.master_ids() {
            let now = c.master(id).map(|m| phase_name(m.phase()));
            let before = self.master_phase.get(&id.0).copied();
            if let Some(p) = now {
                if before != Some(p) {
                    self.master_phase.insert(id.0, p);
                    new.push(PhaseSeen {
                        procedure: "failover".into(),
                        phase: p.into(),
                        subject: id.to_string(),
                    });
                }
            } else {
                self.master_phase.remove(&id.0);
            }
        }
        for (procedure, phase, mark) in &self.mark_names {
            let n = c.sim.marks().count(mark);
            let before = self.marks.insert(mark.clone(), n).unwrap_or(0);
            for _ in before..n {
                new.push(PhaseSeen {
                    procedure: procedure.clone(),
                    phase: phase.clone(),
                    subject: "master".into(),
                });
            }
        }
        for p in &new {
            *self
                .counts
                .entry((p.procedure.clone(), p.phase.clone()))
                .or_insert(0) += 1;
        }
        new
    }
}

const PROCS: [&str; 8] = [
    "split", "merge", "move", "load", "unload", "disable", "enable", "drop",
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn in_memory_phases_are_known_phases_with_their_marks() {
        for (kind, phase, mark) in IN_MEMORY_PHASES {
            let name = PROCS
                .iter()
                .find(|n| kind_of(n) == Some(kind))
                .unwrap_or_else(|| panic!("{kind:?} has no trigger name"));
            assert!(
                known_phases(name).contains(&phase),
                "{name}.{phase} unknown"
            );
            assert_eq!(memory_phase_mark(name, phase), Some(mark));
        }
    }
}
