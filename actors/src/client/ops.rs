//! Client operations as data: what was asked ([`OpInput`]), what came back ([`OpOutput`],
//! [`OpResult`]), the [`Completion`] event, typed errors, and the input checks made before
//! anything is sent.
//!
//! Must not: send or track requests (`core.rs` does).

use crate::kernel::{NodeId, Time};
use crate::meta::{MetaCall, MetaError, MetaReply, TabletId, TabletStatus};
use crate::proto::admin::{AdminCall, AdminError, AdminReply};
use crate::proto::data::{Condition, DataError, Mutation, ReadFilter, RowMutation, RowOut};
use crate::proto::limits::{self, InputError};
use serde::{Deserialize, Serialize};

/// Names one operation of one client incarnation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct OpId(pub u64);

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum OpInput {
    Write {
        table: String,
        rows: Vec<RowMutation>,
    },
    Get {
        table: String,
        row: Vec<u8>,
        filter: ReadFilter,
    },
    Scan {
        table: String,
        start: Vec<u8>,
        end: Vec<u8>,
        reverse: bool,
        limit: u32,
        filter: ReadFilter,
    },
    CheckAndMutate {
        table: String,
        row: Vec<u8>,
        check: Condition,
        on_match: Vec<Mutation>,
        on_miss: Vec<Mutation>,
    },
    Increment {
        table: String,
        row: Vec<u8>,
        family: String,
        qualifier: Vec<u8>,
        delta: i64,
    },
    Append {
        table: String,
        row: Vec<u8>,
        family: String,
        qualifier: Vec<u8>,
        suffix: Vec<u8>,
    },
    Admin(AdminCall),
    /// A call to the meta store's node registry or time-series catalog (see
    /// [`OpInput::meta_allowed`]); answered by the meta store itself.
    Meta(MetaCall),
}

impl OpInput {
    /// Meta calls a client may make. Registration and heartbeats are a tablet node's own
    /// business (its id is the sender's), and the raw record, lease and transaction calls
    /// belong to the master: a client sending them would corrupt the cluster's view.
    pub fn meta_allowed(call: &MetaCall) -> bool {
        matches!(
            call,
            MetaCall::GetNodeId { .. }
                | MetaCall::GetNodeInfo { .. }
                | MetaCall::ListNodes { .. }
                | MetaCall::ReportStorage { .. }
                | MetaCall::IdOf { .. }
                | MetaCall::InsertTableInfo { .. }
                | MetaCall::GetTableInfo { .. }
                | MetaCall::GetPartitionInfos { .. }
                | MetaCall::MovePartition { .. }
        )
    }

    /// May a meta call be sent again after its answer was lost? Every allowed call is
    /// idempotent (id mapping and table creation return what exists, partition creation
    /// places only missing partitions, a move to the current node is a no-op) except a
    /// storage report, which would add a second history entry.
    pub fn meta_retry_safe(call: &MetaCall) -> bool {
        !matches!(call, MetaCall::ReportStorage { .. })
    }

    /// Does the operation change data (so a lost answer leaves its outcome unknown)?
    pub fn is_mutation(&self) -> bool {
        match self {
            OpInput::Get { .. } | OpInput::Scan { .. } => false,
            OpInput::Meta(call) => call.may_write(),
            OpInput::Admin(call) => !matches!(
                call,
                AdminCall::ListTables
                    | AdminCall::DescribeTable { .. }
                    | AdminCall::ListTablets { .. }
                    | AdminCall::ListNodes
                    | AdminCall::Status
            ),
            _ => true,
        }
    }

    pub fn table(&self) -> Option<&str> {
        match self {
            OpInput::Write { table, .. }
            | OpInput::Get { table, .. }
            | OpInput::Scan { table, .. }
            | OpInput::CheckAndMutate { table, .. }
            | OpInput::Increment { table, .. }
            | OpInput::Append { table, .. } => Some(table),
            OpInput::Admin(_) | OpInput::Meta(_) => None,
        }
    }

    /// The client-side checks (the node repeats them, plus the schema's families).
    pub fn validate(&self, value_max: usize) -> Result<(), InputError> {
        if let Some(t) = self.table() {
            limits::check_name("table", t)?;
        }
        let mutations = |ms: &[Mutation]| -> Result<(), InputError> {
            for m in ms {
                match m {
                    Mutation::Put {
                        family,
                        qualifier,
                        value,
                        ..
                    } => {
                        limits::check_name("family", family)?;
                        limits::check_qualifier(qualifier)?;
                        limits::check_value(value, value_max)?;
                    }
                    Mutation::DeleteRow => {}
                    Mutation::DeleteFamily { family } => limits::check_name("family", family)?,
                    Mutation::DeleteColumn { family, qualifier }
                    | Mutation::DeleteVersion {
                        family, qualifier, ..
                    } => {
                        limits::check_name("family", family)?;
                        limits::check_qualifier(qualifier)?;
                    }
                }
            }
            Ok(())
        };
        match self {
            OpInput::Write { rows, .. } => {
                if rows.is_empty() {
                    return Err(InputError::Invalid("a write needs at least one row".into()));
                }
                let n: usize = rows.iter().map(|r| r.mutations.len()).sum();
                limits::check_count("mutations", n, limits::MUTATIONS_PER_REQUEST_MAX)?;
                for r in rows {
                    limits::check_row(&r.row)?;
                    mutations(&r.mutations)?;
                }
            }
            OpInput::Get { row, .. } => limits::check_row(row)?,
            OpInput::Scan {
                start, end, limit, ..
            } => {
                if *limit == 0 {
                    return Err(InputError::Invalid("scan limit must be at least 1".into()));
                }
                for k in [start, end] {
                    if k.len() > limits::ROW_KEY_BYTES_MAX {
                        return Err(InputError::RowTooLarge {
                            len: k.len(),
                            max: limits::ROW_KEY_BYTES_MAX,
                        });
                    }
                }
                if !end.is_empty() && end <= start {
                    return Err(InputError::Invalid(
                        "scan end must be above its start".into(),
                    ));
                }
            }
            OpInput::CheckAndMutate {
                row,
                check,
                on_match,
                on_miss,
                ..
            } => {
                limits::check_row(row)?;
                let (Condition::Absent { family, qualifier }
                | Condition::Equals {
                    family, qualifier, ..
                }) = check;
                limits::check_name("family", family)?;
                limits::check_qualifier(qualifier)?;
                mutations(on_match)?;
                mutations(on_miss)?;
            }
            OpInput::Increment {
                row,
                family,
                qualifier,
                ..
            } => {
                limits::check_row(row)?;
                limits::check_name("family", family)?;
                limits::check_qualifier(qualifier)?;
            }
            OpInput::Append {
                row,
                family,
                qualifier,
                suffix,
                ..
            } => {
                limits::check_row(row)?;
                limits::check_name("family", family)?;
                limits::check_qualifier(qualifier)?;
                limits::check_value(suffix, value_max)?;
            }
            OpInput::Admin(_) => {}
            OpInput::Meta(call) => {
                if !Self::meta_allowed(call) {
                    return Err(InputError::Invalid(format!(
                        "meta call {} is not a client call",
                        meta_call_name(call)
                    )));
                }
            }
        }
        Ok(())
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum OpOutput {
    Written,
    Row(RowOut),
    Rows(Vec<RowOut>),
    Checked(bool),
    Counter(i64),
    Appended(Vec<u8>),
    Admin(AdminReply),
    Meta(MetaReply),
}

/// The call's name, for errors (the whole call may carry a large schema).
fn meta_call_name(call: &MetaCall) -> &'static str {
    match call {
        MetaCall::Txn(_) => "Txn",
        MetaCall::Get(_) => "Get",
        MetaCall::Scan { .. } => "Scan",
        MetaCall::Locate { .. } => "Locate",
        MetaCall::Snapshot => "Snapshot",
        MetaCall::AcquireMasterLease { .. } => "AcquireMasterLease",
        MetaCall::RenewMasterLease { .. } => "RenewMasterLease",
        MetaCall::ReleaseMasterLease { .. } => "ReleaseMasterLease",
        MetaCall::GetMasterLease => "GetMasterLease",
        MetaCall::RegisterNode { .. } => "RegisterNode",
        MetaCall::Heartbeat { .. } => "Heartbeat",
        MetaCall::GetNodeId { .. } => "GetNodeId",
        MetaCall::GetNodeInfo { .. } => "GetNodeInfo",
        MetaCall::ListNodes { .. } => "ListNodes",
        MetaCall::ReportStorage { .. } => "ReportStorage",
        MetaCall::IdOf { .. } => "IdOf",
        MetaCall::InsertTableInfo { .. } => "InsertTableInfo",
        MetaCall::GetTableInfo { .. } => "GetTableInfo",
        MetaCall::GetPartitionInfos { .. } => "GetPartitionInfos",
        MetaCall::MovePartition { .. } => "MovePartition",
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum OpResult {
    Done(OpOutput),
    /// The operation did not happen (or, for a read, gave no answer).
    Failed(ClientError),
    /// A mutation whose outcome is not known: it may or may not have happened.
    Unknown(ClientError),
}

/// One finished operation, as the embedding role records it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Completion {
    pub op: OpId,
    pub input: OpInput,
    /// When the operation was started and when it finished, on the client's clock.
    pub call: Time,
    pub ret: Time,
    pub result: OpResult,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum ClientError {
    #[error("invalid input: {0}")]
    Invalid(#[from] InputError),
    #[error("tablet node: {0}")]
    Data(DataError),
    #[error("meta store: {0}")]
    Meta(MetaError),
    #[error("master: {0}")]
    Admin(AdminError),
    #[error("no tablet of table {table:?} holds row \"{}\"", .row.escape_ascii())]
    NoTablet { table: String, row: Vec<u8> },
    /// The tablet holding the row exists but cannot serve it now (not Ready, or assigned to
    /// no node): a procedure or a reassignment is under way.
    #[error("{}", unavailable(.table, .row, *.tablet, *.status, *.node))]
    TabletUnavailable {
        table: String,
        row: Vec<u8>,
        tablet: TabletId,
        status: TabletStatus,
        node: Option<NodeId>,
    },
    #[error("gave up after {attempts} attempts; last: {last}")]
    RetriesExhausted { attempts: u32, last: String },
    #[error("no answer within the request timeout")]
    Timeout,
    #[error("too many operations in flight ({0})")]
    TooManyOps(usize),
}

/// The text of [`ClientError::TabletUnavailable`].
fn unavailable(
    table: &str,
    row: &[u8],
    tablet: TabletId,
    status: TabletStatus,
    node: Option<NodeId>,
) -> String {
    let at = match node {
        Some(n) => format!("on node {n}"),
        None => "assigned to no node".into(),
    };
    format!(
        "tablet {tablet} of table {table:?} holds row \"{}\" but cannot serve it now ({status:?}, {at})",
        row.escape_ascii()
    )
}
