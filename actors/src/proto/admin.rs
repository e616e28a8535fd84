//! Admin calls: client to master (DDL and operator commands), and back. Clients find the
//! master through the meta store's lease record.
//!
//! DDL follows seed 000: the master validates again, writes meta (bounded retries, then an
//! error), answers, and only then loads or unloads tablets. So a `Created` answer means the
//! table is durable, not that every tablet is already Ready; `shale table describe` shows
//! tablet states.

use super::RequestId;
use crate::kernel::{Addr, Epoch, NodeId};
use crate::meta::{NodeStatus, Schema, TableStatus, TabletId, TabletStatus};
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum AdminMsg {
    Request(AdminRequest),
    Response(AdminResponse),
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AdminRequest {
    pub id: RequestId,
    pub call: AdminCall,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum AdminCall {
    CreateTable {
        name: String,
        schema: Schema,
        split_keys: Vec<Vec<u8>>,
    },
    DisableTable {
        name: String,
    },
    EnableTable {
        name: String,
    },
    /// Only a disabled table. Its files go to the trash and are deleted after a grace period.
    DropTable {
        name: String,
    },
    /// Replace the families (add, remove, change versions/TTL). Applies on next load.
    AlterTable {
        name: String,
        schema: Schema,
    },
    ListTables,
    DescribeTable {
        name: String,
    },
    ListTablets {
        table: Option<String>,
    },
    SplitTablet {
        tablet: TabletId,
        #[serde(with = "serde_bytes")]
        key: Option<Vec<u8>>,
    },
    MergeTablets {
        a: TabletId,
        b: TabletId,
    },
    MoveTablet {
        tablet: TabletId,
        node: NodeId,
    },
    ListNodes,
    Status,
}

impl AdminCall {
    /// Does repeating the call change the outcome? Everything but the listings does: a
    /// second `CreateTable` answers `TableExists`, a second split splits a child.
    pub fn is_mutation(&self) -> bool {
        !matches!(
            self,
            AdminCall::ListTables
                | AdminCall::DescribeTable { .. }
                | AdminCall::ListTablets { .. }
                | AdminCall::ListNodes
                | AdminCall::Status
        )
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AdminResponse {
    pub id: RequestId,
    pub result: Result<AdminReply, AdminError>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TableInfo {
    pub name: String,
    pub schema: Schema,
    pub status: TableStatus,
    pub tablets: u32,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TabletInfo {
    pub id: TabletId,
    pub table: String,
    #[serde(with = "serde_bytes")]
    pub start: Vec<u8>,
    #[serde(with = "serde_bytes")]
    pub end: Vec<u8>,
    pub status: TabletStatus,
    pub node: Option<NodeId>,
    pub size_bytes: u64,
    pub version: u64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeInfo {
    pub id: NodeId,
    pub name: String,
    pub addr: Addr,
    pub status: NodeStatus,
    pub epoch: Epoch,
    pub tablets: u32,
    pub size_bytes: u64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterStatus {
    pub master: NodeId,
    pub term: u64,
    pub nodes_up: u32,
    pub nodes_down: u32,
    pub tables: u32,
    pub tablets: u32,
    pub tablets_ready: u32,
    pub procedures_running: u32,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum AdminReply {
    Done,
    /// A procedure was started (split, merge, move); it finishes in the background.
    Started {
        procedure: u64,
    },
    Tables(Vec<TableInfo>),
    Table {
        table: TableInfo,
        tablets: Vec<TabletInfo>,
    },
    Tablets(Vec<TabletInfo>),
    Nodes(Vec<NodeInfo>),
    Status(ClusterStatus),
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum AdminError {
    #[error("invalid request: {0}")]
    Invalid(#[from] super::limits::InputError),
    #[error("table {0:?} already exists")]
    TableExists(String),
    #[error("no table {0:?}")]
    NoSuchTable(String),
    #[error("no tablet {0:?}")]
    NoSuchTablet(TabletId),
    #[error("no node {0:?}")]
    NoSuchNode(NodeId),
    /// The call needs another table status (drop needs Disabled, data needs Enabled...).
    #[error("table {name:?} is {status:?}: {why}")]
    WrongTableStatus {
        name: String,
        status: TableStatus,
        why: String,
    },
    /// Another procedure holds the tablet; retry later.
    #[error("tablet {0:?} is locked by another procedure")]
    TabletBusy(TabletId),
    /// The tablets are not adjacent, not of one table, or not Ready.
    #[error("cannot merge: {0}")]
    NotMergeable(String),
    /// This master is not (or no longer) the master; ask the meta store who is.
    #[error("not the master")]
    NotMaster,
    /// A meta write failed after its bounded retries; nothing changed.
    #[error("meta store unavailable: {0}")]
    MetaUnavailable(String),
}
