//! Why a master request to the meta store or a node did not get the answer it wanted.
//!
//! Must not: carry anything the caller cannot act on.

use crate::meta::MetaError;
use crate::proto::control::ControlError;

/// A transaction that did not commit.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TxnFail {
    /// `meta_write_retries_max` attempts got no answer or a retryable error. `maybe_applied`
    /// is true when an attempt may have committed (a timeout or `OutcomeUnknown`).
    #[error("meta write gave up after {attempts} attempts")]
    Exhausted { attempts: u32, maybe_applied: bool },
    /// Meta answered with a definitive refusal.
    #[error("meta refused the write: {0}")]
    Refused(MetaError),
}

/// A control command that did not succeed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CtlFail {
    /// The node answered with an error (the command did not take effect).
    #[error("node refused: {0}")]
    Error(ControlError),
    /// No answer within `control_retries_max` attempts: the command may or may not have
    /// taken effect.
    #[error("no answer from the node")]
    NoAnswer,
}
