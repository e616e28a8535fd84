//! Legal state transitions (architecture.md, section 9): a [`TransitionTable`] lists the states
//! an entity may start in and the (from, to) changes allowed; a [`TransitionChecker`] is fed
//! every observed change, per entity, and keeps the illegal ones.
//!
//! Generic over the entity id and the state type, so the same checker serves tablet states,
//! procedure phases and node states. Must not know any of those state machines: the caller
//! supplies the table.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Debug;

/// The allowed initial states and (from, to) pairs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TransitionTable<S: Ord> {
    initial: BTreeSet<S>,
    allowed: BTreeSet<(S, S)>,
}

impl<S: Ord + Clone> TransitionTable<S> {
    pub fn new(
        initial: impl IntoIterator<Item = S>,
        allowed: impl IntoIterator<Item = (S, S)>,
    ) -> Self {
        Self {
            initial: initial.into_iter().collect(),
            allowed: allowed.into_iter().collect(),
        }
    }

    pub fn may_start_in(&self, s: &S) -> bool {
        self.initial.contains(s)
    }

    /// True if `from -> to` is listed. Staying in a state is a transition too, and is legal
    /// only if listed: a table that means to allow repeats must say so.
    pub fn allows(&self, from: &S, to: &S) -> bool {
        self.allowed.contains(&(from.clone(), to.clone()))
    }
}

/// One observed change the table does not allow.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IllegalTransition<E, S> {
    pub entity: E,
    /// `None`: the entity was first seen in `to`, which is not an initial state.
    pub from: Option<S>,
    pub to: S,
    /// Position of the observation in the stream fed to the checker (0-based).
    pub seq: u64,
}

/// Follows each entity's state through a stream of observations.
#[derive(Clone, Debug)]
pub struct TransitionChecker<E: Ord, S: Ord> {
    table: TransitionTable<S>,
    current: BTreeMap<E, S>,
    illegal: Vec<IllegalTransition<E, S>>,
    seen: u64,
}

impl<E: Ord + Clone + Debug, S: Ord + Clone + Debug> TransitionChecker<E, S> {
    pub fn new(table: TransitionTable<S>) -> Self {
        Self {
            table,
            current: BTreeMap::new(),
            illegal: Vec::new(),
            seen: 0,
        }
    }

    /// `entity` is now in `to`. An illegal change is recorded and still followed, so one bad
    /// step does not make every later legal step look wrong.
    pub fn observe(&mut self, entity: E, to: S) {
        let seq = self.seen;
        self.seen += 1;
        let from = self.current.insert(entity.clone(), to.clone());
        let legal = match &from {
            None => self.table.may_start_in(&to),
            Some(f) => self.table.allows(f, &to),
        };
        if !legal {
            tracing::debug!(?entity, ?from, ?to, seq, "illegal transition");
            self.illegal.push(IllegalTransition {
                entity,
                from,
                to,
                seq,
            });
        }
    }

    /// The entity left the system (a tablet dropped, merged away): a later observation of the
    /// same id starts over from an initial state.
    pub fn forget(&mut self, entity: &E) {
        self.current.remove(entity);
    }

    pub fn state(&self, entity: &E) -> Option<&S> {
        self.current.get(entity)
    }

    pub fn observed(&self) -> u64 {
        self.seen
    }

    pub fn illegal(&self) -> &[IllegalTransition<E, S>] {
        &self.illegal
    }

    pub fn is_ok(&self) -> bool {
        self.illegal.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
    enum T {
        Offline,
        Loading,
        Ready,
        Unloading,
    }
    use T::*;

    fn tablet_table() -> TransitionTable<T> {
        TransitionTable::new(
            [Offline],
            [
                (Offline, Loading),
                (Loading, Ready),
                (Loading, Offline),
                (Ready, Unloading),
                (Unloading, Offline),
            ],
        )
    }

    #[test]
    fn legal_lifecycles_pass() {
        let mut c = TransitionChecker::new(tablet_table());
        for s in [
            Offline, Loading, Offline, Loading, Ready, Unloading, Offline,
        ] {
            c.observe("t1", s);
        }
        c.observe("t2", Offline);
        c.observe("t2", Loading);
        assert!(c.is_ok(), "{:?}", c.illegal());
        assert_eq!(c.observed(), 9);
        assert_eq!(c.state(&"t2"), Some(&Loading));
    }

    #[test]
    fn skipped_states_repeats_and_bad_starts_are_caught_with_their_position() {
        let mut c = TransitionChecker::new(tablet_table());
        c.observe("t1", Offline);
        c.observe("t1", Ready); // skipped Loading
        c.observe("t1", Unloading); // legal from where it really is
        c.observe("t2", Ready); // never Offline
        c.observe("t1", Offline);
        c.observe("t1", Offline); // a repeat is not listed
        assert_eq!(
            c.illegal(),
            &[
                IllegalTransition {
                    entity: "t1",
                    from: Some(Offline),
                    to: Ready,
                    seq: 1
                },
                IllegalTransition {
                    entity: "t2",
                    from: None,
                    to: Ready,
                    seq: 3
                },
                IllegalTransition {
                    entity: "t1",
                    from: Some(Offline),
                    to: Offline,
                    seq: 5
                },
            ]
        );
    }

    #[test]
    fn a_forgotten_entity_starts_over() {
        let mut c = TransitionChecker::new(tablet_table());
        c.observe(7u64, Offline);
        c.observe(7, Loading);
        c.forget(&7);
        c.observe(7, Offline);
        assert!(c.is_ok());
        c.forget(&7);
        c.observe(7, Loading);
        assert_eq!(c.illegal().len(), 1);
    }
}
