//! The data path: client to tablet node, and back.
//!
//! A request names the tablet and the tablet version and node epoch the client's location
//! cache holds. The node refuses anything it cannot serve at exactly that version with a
//! [`DataError`] the client library acts on (refresh the location, back off, retry); it never
//! guesses. Writes are atomic per row. Timestamps are microseconds; a `None` timestamp is
//! assigned by the node from its clock.

use super::RequestId;
use crate::kernel::Epoch;
use crate::meta::TabletId;
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum DataMsg {
    Request(DataRequest),
    Response(DataResponse),
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DataRequest {
    pub id: RequestId,
    pub table: String,
    pub tablet: TabletId,
    /// The tablet version the client's location cache holds.
    pub tablet_version: u64,
    /// The node epoch the client's location cache holds.
    pub node_epoch: Epoch,
    pub op: DataOp,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum DataOp {
    /// Atomic per row; rows are applied in order. Reply: `Written`.
    Write { rows: Vec<RowMutation> },
    /// Reply: `Row`.
    Get {
        #[serde(with = "serde_bytes")]
        row: Vec<u8>,
        filter: ReadFilter,
    },
    /// Rows of `[start, end)` clipped to the tablet (empty `end` = the tablet's end), forward
    /// or reverse. Reply: `Scanned`; when `more`, the client continues from `resume`.
    Scan {
        #[serde(with = "serde_bytes")]
        start: Vec<u8>,
        #[serde(with = "serde_bytes")]
        end: Vec<u8>,
        reverse: bool,
        limit_rows: u32,
        filter: ReadFilter,
    },
    /// Atomic single-row check-and-mutate. Reply: `Checked`.
    CheckAndMutate {
        #[serde(with = "serde_bytes")]
        row: Vec<u8>,
        check: Condition,
        on_match: Vec<Mutation>,
        on_miss: Vec<Mutation>,
    },
    /// Add `delta` to a cell holding a big-endian i64 (absent = 0). Reply: `Counter`.
    Increment {
        #[serde(with = "serde_bytes")]
        row: Vec<u8>,
        family: String,
        #[serde(with = "serde_bytes")]
        qualifier: Vec<u8>,
        delta: i64,
    },
    /// Append bytes to a cell (absent = empty). Reply: `Appended`.
    Append {
        #[serde(with = "serde_bytes")]
        row: Vec<u8>,
        family: String,
        #[serde(with = "serde_bytes")]
        qualifier: Vec<u8>,
        #[serde(with = "serde_bytes")]
        suffix: Vec<u8>,
    },
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RowMutation {
    #[serde(with = "serde_bytes")]
    pub row: Vec<u8>,
    pub mutations: Vec<Mutation>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Mutation {
    Put {
        family: String,
        #[serde(with = "serde_bytes")]
        qualifier: Vec<u8>,
        ts: Option<u64>,
        #[serde(with = "serde_bytes")]
        value: Vec<u8>,
    },
    /// Every cell of the row (up to now).
    DeleteRow,
    /// Every cell of one family of the row.
    DeleteFamily { family: String },
    /// Every version of one column.
    DeleteColumn {
        family: String,
        #[serde(with = "serde_bytes")]
        qualifier: Vec<u8>,
    },
    /// Exactly one version.
    DeleteVersion {
        family: String,
        #[serde(with = "serde_bytes")]
        qualifier: Vec<u8>,
        ts: u64,
    },
}

/// What a check-and-mutate tests, on the newest visible version of one column.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Condition {
    /// The column has no visible version (put-if-absent).
    Absent {
        family: String,
        #[serde(with = "serde_bytes")]
        qualifier: Vec<u8>,
    },
    /// The column's newest value equals `value`.
    Equals {
        family: String,
        #[serde(with = "serde_bytes")]
        qualifier: Vec<u8>,
        #[serde(with = "serde_bytes")]
        value: Vec<u8>,
    },
}

/// Which cells a read returns.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReadFilter {
    /// Empty = every family. Each entry is a whole family or one column.
    pub columns: Vec<ColumnSpec>,
    /// `[min, max)` in microseconds; `None` = all time.
    pub time_range: Option<(u64, u64)>,
    /// Versions per column; `None` = the family's max_versions.
    pub max_versions: Option<u32>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ColumnSpec {
    pub family: String,
    /// `None` = the whole family.
    #[serde(with = "serde_bytes")]
    pub qualifier: Option<Vec<u8>>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CellOut {
    pub family: String,
    #[serde(with = "serde_bytes")]
    pub qualifier: Vec<u8>,
    pub ts: u64,
    #[serde(with = "serde_bytes")]
    pub value: Vec<u8>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RowOut {
    #[serde(with = "serde_bytes")]
    pub row: Vec<u8>,
    pub cells: Vec<CellOut>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DataResponse {
    pub id: RequestId,
    pub result: Result<DataReply, DataError>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum DataReply {
    Written,
    Row(RowOut),
    Scanned {
        rows: Vec<RowOut>,
        /// The tablet may hold more rows in the asked range.
        more: bool,
        /// Where to continue (exclusive for forward scans' last row, see the client).
        #[serde(with = "serde_bytes")]
        resume: Option<Vec<u8>>,
    },
    Checked {
        matched: bool,
    },
    Counter {
        value: i64,
    },
    Appended {
        #[serde(with = "serde_bytes")]
        value: Vec<u8>,
    },
}

/// Why a tablet node refused or failed a request. The first group tells the client to refresh
/// its location and retry; the second is final for this request.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum DataError {
    /// This node does not serve the tablet (never loaded, unloaded, moved).
    #[error("tablet {tablet:?} is not served here")]
    NotServing { tablet: TabletId },
    /// The row is outside the tablet's range (the client's cache predates a split or merge).
    #[error("row outside tablet {tablet:?}'s range")]
    KeyNotInRange { tablet: TabletId },
    /// The client named another tablet version than the one served.
    #[error("tablet {tablet:?} is at version {served}, not {asked}")]
    StaleVersion {
        tablet: TabletId,
        asked: u64,
        served: u64,
    },
    /// The client named another node epoch than this incarnation's.
    #[error("node epoch {current:?}, not {asked:?}")]
    StaleEpoch { asked: Epoch, current: Epoch },
    /// The tablet is briefly closed to writes (split or merge barrier); retry shortly.
    #[error("tablet {tablet:?} is busy (split or merge in progress)")]
    Busy { tablet: TabletId },
    /// The node's lease has lapsed; it serves nothing until it renews.
    #[error("node lease expired")]
    LeaseExpired,
    /// Bad input: oversized, empty row, bad names.
    #[error("invalid request: {0}")]
    Invalid(#[from] super::limits::InputError),
    /// The table has no such family.
    #[error("no column family {0:?}")]
    NoSuchFamily(String),
    /// An increment on a cell that does not hold 8 bytes.
    #[error("cell does not hold a 64-bit counter")]
    NotACounter,
    /// The engine failed (disk error, corruption detected); nothing was acknowledged.
    #[error("storage error: {0}")]
    Storage(String),
}

impl DataError {
    /// Should the client refresh its location cache and retry?
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            DataError::NotServing { .. }
                | DataError::KeyNotInRange { .. }
                | DataError::StaleVersion { .. }
                | DataError::StaleEpoch { .. }
                | DataError::Busy { .. }
                | DataError::LeaseExpired
        )
    }
}
