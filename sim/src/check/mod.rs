//! Checkers that judge a run from the outside (style.md, point 8): over the client history a
//! runner recorded, and over state snapshots it took. Each is a pure function or a small
//! accumulator over plain data, so a test can feed it hand-made inputs and the cluster runner
//! can feed it real ones.
//!
//! - `history.rs`: operations, completions, the [`Model`] trait, [`HistoryRecorder`].
//! - `kv.rs`: Shale's per-row operations as a [`Model`].
//! - `linearizability.rs`: per-key Wing and Gong search with memoization and a step budget.
//! - `lost_write.rs`: no acknowledged write is missing from the final reads.
//! - `coverage.rs`: a table's tablets cover the key space exactly once.
//! - `transitions.rs`: every observed state change is in a table of allowed ones.
//!
//! Must not run the simulator or know about actors: checkers take data and return verdicts.

mod coverage;
mod history;
mod kv;
mod linearizability;
mod lost_write;
mod transitions;

pub use coverage::{check_coverage, CoverageViolation, KeyRange};
pub use history::{ClientId, Completion, HistoryRecorder, Model, Operation, RecordError};
pub use kv::{KvInput, KvModel, KvOp, KvOutput, RowKey};
pub use linearizability::{
    check_linearizable, HistoryError, LinearizabilityConfig, Report, Undecided, Verdict, Violation,
};
pub use lost_write::{check_no_lost_writes, LostWrite, LostWriteReport};
pub use transitions::{IllegalTransition, TransitionChecker, TransitionTable};
