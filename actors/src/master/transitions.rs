//! The tablet state machine: which status changes are legal.
//!
//! Owns: the transition table and the check every in-memory tablet update goes through. An
//! illegal transition is a bug in a procedure, so it is an assertion failure (on in every
//! build: a wrong state silently written to meta would be far worse than a crash).
//! Must not: perform transitions or know why a procedure wants one.

use crate::meta::TabletStatus;

/// Every legal `(from, to)` pair besides staying in the same status (an update of size or
/// assignment that leaves the status alone is always legal).
const LEGAL: &[(TabletStatus, TabletStatus)] = {
    use TabletStatus::*;
    &[
        // Assign and load.
        (Offline, Loading),
        (LoadFail, Loading),
        (Loading, Ready),
        (Loading, LoadFail),
        // The node died or a procedure rolled back before the load took.
        (Loading, Offline),
        (LoadFail, Offline),
        // Unload (disable, move, repair of a failed load or unload).
        (Ready, Unloading),
        (LoadFail, Unloading),
        (UnloadFail, Unloading),
        (Unloading, Offline),
        (Unloading, Disabled),
        (Unloading, UnloadFail),
        // A move whose unload failed keeps serving where it was.
        (Unloading, Ready),
        // A move hands the tablet to its destination once the source let go.
        (Unloading, Loading),
        (UnloadFail, Offline),
        // Split and merge, and their rollbacks.
        (Ready, Splitting),
        (Splitting, Ready),
        (Splitting, Offline),
        (Ready, Merging),
        (Merging, Ready),
        (Merging, Offline),
        // The node died under a served tablet; or a report showed it missing.
        (Ready, Offline),
        (UnloadFail, Disabled),
        (LoadFail, Disabled),
        // Disable and enable of unloaded tablets.
        (Offline, Disabled),
        (Disabled, Offline),
    ]
};

/// Is `from -> to` allowed?
pub fn is_legal(from: TabletStatus, to: TabletStatus) -> bool {
    from == to || LEGAL.contains(&(from, to))
}

/// Assert that `from -> to` is legal. Called on every tablet update the master applies.
pub fn check(tablet: crate::meta::TabletId, from: TabletStatus, to: TabletStatus) {
    assert!(
        is_legal(from, to),
        "illegal tablet transition for {tablet}: {from:?} -> {to:?}"
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use TabletStatus::*;

    #[test]
    fn table_admits_the_procedure_paths() {
        // load; split; merge; move; disable; enable; repair
        for (a, b) in [
            (Offline, Loading),
            (Loading, Ready),
            (Ready, Splitting),
            (Ready, Merging),
            (Merging, Offline),
            (Ready, Unloading),
            (Unloading, Disabled),
            (Disabled, Offline),
            (UnloadFail, Unloading),
        ] {
            assert!(is_legal(a, b), "{a:?} -> {b:?}");
        }
    }

    #[test]
    fn table_refuses_shortcuts() {
        for (a, b) in [
            (Offline, Ready),
            (Disabled, Ready),
            (Disabled, Loading),
            (Splitting, Merging),
            (Merging, Splitting),
            (Ready, Disabled),
            (Loading, Splitting),
            (Retired, Offline),
            (Offline, Retired),
        ] {
            assert!(!is_legal(a, b), "{a:?} -> {b:?}");
        }
    }

    #[test]
    #[should_panic(expected = "illegal tablet transition")]
    fn illegal_transition_is_an_assertion_failure() {
        check(crate::meta::TabletId(3), Offline, Ready);
    }
}
