//! The blocking client for the command line and scripts: a [`ShaleClient`] on its own small
//! tokio runtime, each call run to completion with `block_on`.
//!
//! Must not: be used from inside an async runtime (tokio refuses nested `block_on`); async
//! callers use [`ShaleClient`] directly.

mod meta;

use crate::api::{ClientOptions, DeleteTarget, ScanOptions, ShaleClient};
use crate::error::{Error, Result};
use shale_actors::meta::{Schema, TabletId};
use shale_actors::proto::admin::{ClusterStatus, NodeInfo, TableInfo, TabletInfo};
use shale_actors::proto::data::{Condition, Mutation, ReadFilter, RowMutation, RowOut};
use shale_actors::NodeId;

/// Worker threads of the blocking client's runtime: the transport's reader and writer tasks
/// keep running between calls.
const BLOCKING_WORKER_THREADS: usize = 1;

pub struct BlockingClient {
    // Field order matters: the client (and its host) must drop before the runtime.
    inner: ShaleClient,
    rt: tokio::runtime::Runtime,
}

impl BlockingClient {
    pub fn connect(opts: ClientOptions) -> Result<Self> {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(BLOCKING_WORKER_THREADS)
            .enable_all()
            .build()
            .map_err(|e| Error::Start(format!("tokio runtime: {e}")))?;
        let inner = rt.block_on(ShaleClient::connect(opts))?;
        Ok(Self { inner, rt })
    }

    pub fn inner(&self) -> &ShaleClient {
        &self.inner
    }

    pub fn put(
        &self,
        table: &str,
        row: &[u8],
        family: &str,
        qualifier: &[u8],
        value: &[u8],
    ) -> Result<()> {
        self.rt
            .block_on(self.inner.put(table, row, family, qualifier, value))
    }
    pub fn write(&self, table: &str, rows: Vec<RowMutation>) -> Result<()> {
        self.rt.block_on(self.inner.write(table, rows))
    }
    pub fn delete(&self, table: &str, row: &[u8], what: DeleteTarget) -> Result<()> {
        self.rt.block_on(self.inner.delete(table, row, what))
    }
    pub fn get(&self, table: &str, row: &[u8], filter: ReadFilter) -> Result<Option<RowOut>> {
        self.rt.block_on(self.inner.get(table, row, filter))
    }
    pub fn scan(&self, table: &str, scan: ScanOptions) -> Result<Vec<RowOut>> {
        self.rt.block_on(self.inner.scan(table, scan))
    }
    pub fn check_and_mutate(
        &self,
        table: &str,
        row: &[u8],
        check: Condition,
        on_match: Vec<Mutation>,
        on_miss: Vec<Mutation>,
    ) -> Result<bool> {
        self.rt.block_on(
            self.inner
                .check_and_mutate(table, row, check, on_match, on_miss),
        )
    }
    pub fn increment(
        &self,
        table: &str,
        row: &[u8],
        family: &str,
        qualifier: &[u8],
        delta: i64,
    ) -> Result<i64> {
        self.rt
            .block_on(self.inner.increment(table, row, family, qualifier, delta))
    }
    pub fn append(
        &self,
        table: &str,
        row: &[u8],
        family: &str,
        qualifier: &[u8],
        suffix: &[u8],
    ) -> Result<Vec<u8>> {
        self.rt
            .block_on(self.inner.append(table, row, family, qualifier, suffix))
    }

    pub fn create_table(&self, name: &str, schema: Schema, split_keys: Vec<Vec<u8>>) -> Result<()> {
        self.rt
            .block_on(self.inner.create_table(name, schema, split_keys))
    }
    pub fn disable_table(&self, name: &str) -> Result<()> {
        self.rt.block_on(self.inner.disable_table(name))
    }
    pub fn enable_table(&self, name: &str) -> Result<()> {
        self.rt.block_on(self.inner.enable_table(name))
    }
    pub fn drop_table(&self, name: &str) -> Result<()> {
        self.rt.block_on(self.inner.drop_table(name))
    }
    pub fn alter_table(&self, name: &str, schema: Schema) -> Result<()> {
        self.rt.block_on(self.inner.alter_table(name, schema))
    }
    pub fn list_tables(&self) -> Result<Vec<TableInfo>> {
        self.rt.block_on(self.inner.list_tables())
    }
    pub fn describe_table(&self, name: &str) -> Result<(TableInfo, Vec<TabletInfo>)> {
        self.rt.block_on(self.inner.describe_table(name))
    }
    pub fn list_tablets(&self, table: Option<&str>) -> Result<Vec<TabletInfo>> {
        self.rt.block_on(self.inner.list_tablets(table))
    }
    pub fn split_tablet(&self, tablet: TabletId, key: Option<Vec<u8>>) -> Result<u64> {
        self.rt.block_on(self.inner.split_tablet(tablet, key))
    }
    pub fn merge_tablets(&self, a: TabletId, b: TabletId) -> Result<u64> {
        self.rt.block_on(self.inner.merge_tablets(a, b))
    }
    pub fn move_tablet(&self, tablet: TabletId, node: NodeId) -> Result<u64> {
        self.rt.block_on(self.inner.move_tablet(tablet, node))
    }
    pub fn list_nodes(&self) -> Result<Vec<NodeInfo>> {
        self.rt.block_on(self.inner.list_nodes())
    }
    pub fn status(&self) -> Result<ClusterStatus> {
        self.rt.block_on(self.inner.status())
    }
}

impl Drop for BlockingClient {
    fn drop(&mut self) {
        self.rt.block_on(self.inner.shutdown());
    }
}
