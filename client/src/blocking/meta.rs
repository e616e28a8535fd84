//! The blocking forms of the meta store's registry and catalog calls (see `crate::meta`).
//!
//! Must not: add behaviour; each call is the async one run to completion.

use super::BlockingClient;
use crate::error::Result;
use shale_actors::meta::catalog::{ColumnSpec, NodeInfo, PartitionInfo, TsTableInfo};
use shale_actors::NodeId;

impl BlockingClient {
    pub fn node_id(&self, name: &str) -> Result<NodeId> {
        self.rt.block_on(self.inner.node_id(name))
    }
    pub fn node_info(&self, node: NodeId) -> Result<NodeInfo> {
        self.rt.block_on(self.inner.node_info(node))
    }
    pub fn registered_nodes(&self) -> Result<Vec<NodeInfo>> {
        self.rt.block_on(self.inner.registered_nodes())
    }
    pub fn report_storage(&self, node: NodeId, used_disk_bytes: u64) -> Result<()> {
        self.rt
            .block_on(self.inner.report_storage(node, used_disk_bytes))
    }
    pub fn id_of(&self, key: &str) -> Result<u32> {
        self.rt.block_on(self.inner.id_of(key))
    }
    pub fn insert_table_info(
        &self,
        table: &str,
        partition_count_per_day: u32,
        columns: Vec<ColumnSpec>,
    ) -> Result<TsTableInfo> {
        self.rt.block_on(
            self.inner
                .insert_table_info(table, partition_count_per_day, columns),
        )
    }
    pub fn table_info(&self, table: &str) -> Result<TsTableInfo> {
        self.rt.block_on(self.inner.table_info(table))
    }
    pub fn partition_infos(
        &self,
        table: &str,
        timestamp_ms: u64,
        create: bool,
    ) -> Result<Vec<PartitionInfo>> {
        self.rt
            .block_on(self.inner.partition_infos(table, timestamp_ms, create))
    }
    pub fn move_partition(
        &self,
        table: &str,
        date: u32,
        index: u32,
        to: NodeId,
    ) -> Result<PartitionInfo> {
        self.rt
            .block_on(self.inner.move_partition(table, date, index, to))
    }
}
