//! The client's typed errors: what a caller can act on, one variant per cause.
//!
//! Must not: lose the server's own error (it is kept inside `Data`, `Admin`, `Meta`).

use shale_actors::client::ClientError;
use shale_actors::meta::{MetaError, TableStatus};
use shale_actors::proto::admin::AdminError;
use shale_actors::proto::data::DataError;
use shale_actors::proto::limits::InputError;
use std::time::Duration;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// Refused before anything was sent (names, sizes, empty writes, bad ranges).
    #[error("invalid input: {0}")]
    Invalid(#[from] InputError),
    #[error("no table {0:?}")]
    NoSuchTable(String),
    #[error("table {name:?} is {status:?}; enable it first")]
    TableNotEnabled { name: String, status: TableStatus },
    /// A tablet node refused or failed the request (final, not retryable).
    #[error("tablet node: {0}")]
    Data(DataError),
    /// The master refused or failed an admin call.
    #[error("master: {0}")]
    Admin(AdminError),
    #[error("meta store: {0}")]
    Meta(MetaError),
    /// Retries ran out: the cluster did not serve the request in time (nothing was applied).
    #[error("cluster unavailable after {attempts} attempts (last: {last})")]
    Unavailable { attempts: u32, last: String },
    /// A mutation's answer was lost: it may or may not have been applied.
    #[error("outcome unknown (the write may or may not have been applied): {0}")]
    OutcomeUnknown(String),
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    #[error("too many operations in flight ({0})")]
    TooManyOps(usize),
    #[error("the client has stopped")]
    Stopped,
    #[error("cannot start the client: {0}")]
    Start(String),
    /// The cluster answered with something this call does not expect (a version mismatch).
    #[error("unexpected reply: {0}")]
    UnexpectedReply(String),
}

impl Error {
    /// The core's error, with the causes a caller acts on lifted into their own variants.
    pub(crate) fn from_core(e: ClientError, unknown: bool) -> Self {
        let e = match e {
            ClientError::Invalid(i) => Error::Invalid(i),
            ClientError::Data(DataError::Invalid(i)) => Error::Invalid(i),
            ClientError::Data(d) => Error::Data(d),
            ClientError::Admin(AdminError::NoSuchTable(t)) => Error::NoSuchTable(t),
            ClientError::Admin(AdminError::Invalid(i)) => Error::Invalid(i),
            ClientError::Admin(a) => Error::Admin(a),
            ClientError::Meta(m) => Error::Meta(m),
            e @ (ClientError::NoTablet { .. } | ClientError::TabletUnavailable { .. }) => {
                Error::Unavailable {
                    attempts: 1,
                    last: e.to_string(),
                }
            }
            ClientError::RetriesExhausted { attempts, last } => {
                Error::Unavailable { attempts, last }
            }
            ClientError::Timeout => Error::Unavailable {
                attempts: 1,
                last: "request timed out".into(),
            },
            ClientError::TooManyOps(n) => Error::TooManyOps(n),
        };
        if unknown {
            Error::OutcomeUnknown(e.to_string())
        } else {
            e
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
