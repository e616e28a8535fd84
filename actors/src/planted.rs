//! Known bugs planted on purpose, so tests can prove the simulator's checkers catch them
//! (issue 5, item 6). Compiled only with the `planted-bugs` feature, which no production
//! build enables: `shale-tests` turns it on through a dev-dependency.
//!
//! Each bug is switched per run through [`PlantedBugs`], carried in the actors' configs
//! (`NodeConfig::planted`, `MasterConfig::planted`), never in global state; all default to
//! off, so a build with the feature behaves exactly like one without it until a test asks.

/// Which planted bugs are live in one run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PlantedBugs {
    /// Tablet node: keeps serving after its lease lapsed and accepts requests and commands
    /// carrying a stale epoch.
    pub lease_fencing_off: bool,
    /// Master: query-GC leaves Loading tablets out when deciding a folder is unused.
    pub gc_ignores_loading: bool,
    /// Master: a merged tablet's record ends where the left parent ended (the union's end is
    /// taken from the wrong parent).
    pub merge_wrong_range: bool,
    /// Tablet node: a split cuts the children's files just past the key it reports to the
    /// master, and a load trusts the files' range over the command's, so the left child
    /// serves the first row the master gave the right child. (Planted in the master, a wider
    /// child record was refused by the meta store's no-overlap rule and never took effect.)
    pub split_child_outside_range: bool,
}

impl PlantedBugs {
    /// Every planted bug off.
    pub const NONE: Self = Self {
        lease_fencing_off: false,
        gc_ignores_loading: false,
        merge_wrong_range: false,
        split_child_outside_range: false,
    };
}
