//! The meta store's node registry and time-series catalog, as client calls: node id by name,
//! node info, the node list with disk figures, storage reports (for tools), the global id
//! mapping, time-series table definitions, partition lookup and creation, and explicit
//! partition moves. Each is one [`MetaCall`] run by the client core, which sends it to the
//! meta store and retries it while the store is busy or recovering.
//!
//! Errors: the store's typed [`MetaError`] comes back as [`Error::Meta`] (unknown node or
//! table, bad partition count, timestamp out of range, no live node, ...).
//!
//! Must not: decide placement or partition arithmetic (the meta store does) or touch
//! partition files (`shale_storage::ts` and the command line's `ts` module do).

use crate::api::ShaleClient;
use crate::error::{Error, Result};
use shale_actors::client::{OpInput, OpOutput};
use shale_actors::meta::catalog::{ColumnSpec, NodeInfo, PartitionInfo, TsTableInfo};
use shale_actors::meta::{MetaCall, MetaReply};
use shale_actors::NodeId;

/// Nodes asked of one `ListNodes` page.
const NODES_PAGE: u32 = 256;

fn unexpected(reply: &MetaReply) -> Error {
    Error::UnexpectedReply(format!("meta store answered {reply:?}"))
}

impl ShaleClient {
    async fn meta(&self, call: MetaCall) -> Result<MetaReply> {
        match self.run(OpInput::Meta(call)).await? {
            OpOutput::Meta(r) => Ok(r),
            other => Err(Error::UnexpectedReply(format!("{other:?}"))),
        }
    }

    /// The id of the worker node registered as `name` (the seed's `get_worker_node_id`).
    pub async fn node_id(&self, name: &str) -> Result<NodeId> {
        match self.meta(MetaCall::GetNodeId { name: name.into() }).await? {
            MetaReply::NodeIdIs(n) => Ok(n),
            other => Err(unexpected(&other)),
        }
    }

    /// A worker node's address, status, disk figures and storage history.
    pub async fn node_info(&self, node: NodeId) -> Result<NodeInfo> {
        match self.meta(MetaCall::GetNodeInfo { node }).await? {
            MetaReply::Node(n) => Ok(*n),
            other => Err(unexpected(&other)),
        }
    }

    /// Every registered worker node in id order, with total, used and free disk.
    pub async fn registered_nodes(&self) -> Result<Vec<NodeInfo>> {
        let mut all = Vec::new();
        let mut after = None;
        loop {
            let call = MetaCall::ListNodes {
                after,
                limit: NODES_PAGE,
            };
            match self.meta(call).await? {
                MetaReply::Nodes { nodes, more } => {
                    after = nodes.last().map(|n| n.id);
                    all.extend(nodes);
                    // An empty page with `more` set would loop forever: stop instead.
                    if !more || after.is_none() {
                        return Ok(all);
                    }
                }
                other => return Err(unexpected(&other)),
            }
        }
    }

    /// Report a node's used disk (tablet nodes do this themselves; this is for tools).
    pub async fn report_storage(&self, node: NodeId, used_disk_bytes: u64) -> Result<()> {
        let call = MetaCall::ReportStorage {
            node,
            used_disk_bytes,
        };
        match self.meta(call).await? {
            MetaReply::StorageReported => Ok(()),
            other => Err(unexpected(&other)),
        }
    }

    /// The id of `key` in the global id mapping, created on first use.
    pub async fn id_of(&self, key: &str) -> Result<u32> {
        match self.meta(MetaCall::IdOf { key: key.into() }).await? {
            MetaReply::Id(id) => Ok(id),
            other => Err(unexpected(&other)),
        }
    }

    /// Create a time-series table (the same definition again is a no-op).
    pub async fn insert_table_info(
        &self,
        table: &str,
        partition_count_per_day: u32,
        columns: Vec<ColumnSpec>,
    ) -> Result<TsTableInfo> {
        let call = MetaCall::InsertTableInfo {
            table: table.into(),
            partition_count_per_day,
            columns,
        };
        match self.meta(call).await? {
            MetaReply::Table(t) => Ok(*t),
            other => Err(unexpected(&other)),
        }
    }

    pub async fn table_info(&self, table: &str) -> Result<TsTableInfo> {
        let call = MetaCall::GetTableInfo {
            table: table.into(),
        };
        match self.meta(call).await? {
            MetaReply::Table(t) => Ok(*t),
            other => Err(unexpected(&other)),
        }
    }

    /// The partitions of the UTC day holding `timestamp_ms`; with `create`, the day's missing
    /// partitions are placed first (writers), without only existing ones come back (readers).
    pub async fn partition_infos(
        &self,
        table: &str,
        timestamp_ms: u64,
        create: bool,
    ) -> Result<Vec<PartitionInfo>> {
        let call = MetaCall::GetPartitionInfos {
            table: table.into(),
            timestamp_ms,
            create,
        };
        match self.meta(call).await? {
            MetaReply::Partitions(p) => Ok(p),
            other => Err(unexpected(&other)),
        }
    }

    /// Point partition (date, index) of `table` at node `to` (after its files were copied
    /// there): the only way a partition changes node.
    pub async fn move_partition(
        &self,
        table: &str,
        date: u32,
        index: u32,
        to: NodeId,
    ) -> Result<PartitionInfo> {
        let call = MetaCall::MovePartition {
            table: table.into(),
            date,
            index,
            to,
        };
        match self.meta(call).await? {
            MetaReply::Partitions(mut p) if p.len() == 1 => Ok(p.remove(0)),
            other => Err(unexpected(&other)),
        }
    }
}
