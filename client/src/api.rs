//! The async client: [`ShaleClient`] runs a [`ClientActor`] on its own dial-only TCP host and
//! turns each call into one core operation, awaited on a oneshot channel with a timeout.
//!
//! Calls on a table first make sure it exists and is enabled (one `DescribeTable` to the
//! master, remembered for `table_check_ttl`), so a wrong name or a disabled table is a typed
//! error at once rather than retries running out against tablets that will never be served.
//!
//! Must not: retry on its own (the core's bounded retries with backoff do), or unwrap anything
//! that came off the network.

use crate::actor::ClientActor;
use crate::error::{Error, Result};
use shale_actors::client::{ClientConfig, OpInput, OpOutput, OpResult};
use shale_actors::meta::{Schema, TableStatus, TabletId};
use shale_actors::proto::admin::{
    AdminCall, AdminError, AdminReply, ClusterStatus, NodeInfo, TableInfo, TabletInfo,
};
use shale_actors::proto::data::{Condition, Mutation, ReadFilter, RowMutation, RowOut};
use shale_actors::proto::ClusterMsg;
use shale_actors::{Epoch, NodeId};
use shale_net::{ClusterId, HostConfig, HostHandle, Invoker};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::task::JoinHandle;

/// The meta store's node id in every Shale cluster: a client knows only its address.
pub const META_NODE: NodeId = NodeId(1);
/// The cluster id hosts present in their handshake unless configured otherwise.
pub const DEFAULT_CLUSTER_ID: &str = "shale";
/// Pauses between drop attempts while the table's disable is still unloading.
const DROP_RETRY_PAUSE_MIN: Duration = Duration::from_millis(50);
const DROP_RETRY_PAUSE_MAX: Duration = Duration::from_millis(500);

#[derive(Clone, Debug)]
pub struct ClientOptions {
    pub meta_addr: SocketAddr,
    pub meta_node: NodeId,
    pub cluster_id: String,
    /// A whole call (with the core's retries) is abandoned after this long.
    pub op_timeout: Duration,
    /// A table found enabled is not asked about again for this long.
    pub table_check_ttl: Duration,
    /// The core's settings (request timeout, retries, backoff, cache size, limits).
    pub core: ClientConfig,
}

impl ClientOptions {
    pub fn new(meta_addr: SocketAddr) -> Self {
        Self {
            meta_addr,
            meta_node: META_NODE,
            cluster_id: DEFAULT_CLUSTER_ID.into(),
            op_timeout: Duration::from_secs(30),
            table_check_ttl: Duration::from_secs(5),
            core: ClientConfig::new(META_NODE),
        }
    }
}

/// What a scan reads.
#[derive(Clone, Debug)]
pub struct ScanOptions {
    /// Inclusive; empty = the table's start.
    pub start: Vec<u8>,
    /// Exclusive; empty = the table's end.
    pub end: Vec<u8>,
    pub reverse: bool,
    pub limit: u32,
    pub filter: ReadFilter,
}

impl Default for ScanOptions {
    fn default() -> Self {
        Self {
            start: Vec::new(),
            end: Vec::new(),
            reverse: false,
            limit: 1_000,
            filter: ReadFilter::default(),
        }
    }
}

/// What a delete removes from a row.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DeleteTarget {
    Row,
    Family(String),
    Column { family: String, qualifier: Vec<u8> },
}

/// An async connection to a Shale cluster. Cheap to share behind an `Arc`; calls may run
/// concurrently (each is one operation of the core, pipelined on the connections).
pub struct ShaleClient {
    handle: HostHandle<ClusterMsg>,
    invoker: Invoker<ClientActor>,
    task: Mutex<Option<JoinHandle<ClientActor>>>,
    opts: ClientOptions,
    /// Tables seen enabled, and when.
    enabled: Arc<Mutex<HashMap<String, Instant>>>,
}

impl ShaleClient {
    /// Start the client's host. Nothing is dialed until the first call.
    pub async fn connect(opts: ClientOptions) -> Result<Self> {
        // A random identity in the upper half: servers reply over the connection it opens,
        // and two clients must never share an id.
        let me = NodeId(rand::Rng::gen::<u64>(&mut rand::rngs::OsRng) | (1 << 63));
        let epoch = Epoch(unix_millis());
        let mut cfg = HostConfig::new(ClusterId(opts.cluster_id.clone()), me, epoch);
        cfg.peers.insert(opts.meta_node, opts.meta_addr);
        let mut core = opts.core.clone();
        core.meta = opts.meta_node;
        // The actor needs the handle, which exists only once the host has started: build
        // the host, then run it with the actor.
        let (host, handle) = shale_net::Host::<ClientActor>::start(cfg)
            .await
            .map_err(|e| Error::Start(e.to_string()))?;
        let invoker = host.invoker();
        let actor = ClientActor::new(core, handle.clone());
        let task = tokio::spawn(host.run(actor));
        Ok(Self {
            handle,
            invoker,
            task: Mutex::new(Some(task)),
            opts,
            enabled: Arc::new(Mutex::new(HashMap::new())),
        })
    }

    pub fn options(&self) -> &ClientOptions {
        &self.opts
    }

    /// Stop the host and close its connections.
    pub async fn shutdown(&self) {
        self.handle.stop();
        let task = self.task.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(t) = task {
            let _ = t.await;
        }
    }

    /// Run one operation of the core and wait for its result.
    pub async fn run(&self, input: OpInput) -> Result<OpOutput> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let mutation = input.is_mutation();
        self.invoker
            .invoke(move |a: &mut ClientActor, ctx| a.start(input, tx, ctx))
            .map_err(|e| match e {
                shale_net::InjectError::Full => Error::TooManyOps(self.opts.core.ops_in_flight_max),
                shale_net::InjectError::Stopped => Error::Stopped,
            })?;
        let result = match tokio::time::timeout(self.opts.op_timeout, rx).await {
            Ok(Ok(r)) => r,
            Ok(Err(_)) => return Err(Error::Stopped),
            Err(_) if mutation => {
                return Err(Error::OutcomeUnknown(format!(
                    "no answer within {:?}",
                    self.opts.op_timeout
                )))
            }
            Err(_) => return Err(Error::Timeout(self.opts.op_timeout)),
        };
        match result {
            OpResult::Done(out) => Ok(out),
            OpResult::Failed(e) => Err(Error::from_core(e, false)),
            OpResult::Unknown(e) => Err(Error::from_core(e, true)),
        }
    }

    async fn admin(&self, call: AdminCall) -> Result<AdminReply> {
        match self.run(OpInput::Admin(call)).await? {
            OpOutput::Admin(r) => Ok(r),
            other => Err(unexpected(&other)),
        }
    }

    /// Make sure `table` exists and is enabled (remembered for `table_check_ttl`).
    async fn check_table(&self, table: &str) -> Result<()> {
        shale_actors::proto::limits::check_name("table", table)?;
        {
            let seen = self.enabled.lock().unwrap_or_else(|p| p.into_inner());
            if seen
                .get(table)
                .is_some_and(|at| at.elapsed() < self.opts.table_check_ttl)
            {
                return Ok(());
            }
        }
        let (info, _) = self.describe_table(table).await?;
        if info.status != TableStatus::Enabled {
            return Err(Error::TableNotEnabled {
                name: table.into(),
                status: info.status,
            });
        }
        let mut seen = self.enabled.lock().unwrap_or_else(|p| p.into_inner());
        // Bounded: forget everything when it grows past what a caller plausibly uses.
        if seen.len() >= TABLES_REMEMBERED_MAX {
            seen.clear();
        }
        seen.insert(table.into(), Instant::now());
        Ok(())
    }

    async fn data(&self, input: OpInput) -> Result<OpOutput> {
        if let Some(t) = input.table() {
            self.check_table(t).await?;
        }
        self.run(input).await
    }

    // ---- data ----

    pub async fn put(
        &self,
        table: &str,
        row: &[u8],
        family: &str,
        qualifier: &[u8],
        value: &[u8],
    ) -> Result<()> {
        let m = Mutation::Put {
            family: family.into(),
            qualifier: qualifier.to_vec(),
            ts: None,
            value: value.to_vec(),
        };
        self.write(
            table,
            vec![RowMutation {
                row: row.to_vec(),
                mutations: vec![m],
            }],
        )
        .await
    }

    /// A batch: each row atomic, rows grouped by tablet and sent in parallel.
    pub async fn write(&self, table: &str, rows: Vec<RowMutation>) -> Result<()> {
        match self
            .data(OpInput::Write {
                table: table.into(),
                rows,
            })
            .await?
        {
            OpOutput::Written => Ok(()),
            other => Err(unexpected(&other)),
        }
    }

    pub async fn delete(&self, table: &str, row: &[u8], what: DeleteTarget) -> Result<()> {
        let m = match what {
            DeleteTarget::Row => Mutation::DeleteRow,
            DeleteTarget::Family(family) => Mutation::DeleteFamily { family },
            DeleteTarget::Column { family, qualifier } => {
                Mutation::DeleteColumn { family, qualifier }
            }
        };
        self.write(
            table,
            vec![RowMutation {
                row: row.to_vec(),
                mutations: vec![m],
            }],
        )
        .await
    }

    /// The row's cells that pass `filter`; `None` when there are none.
    pub async fn get(&self, table: &str, row: &[u8], filter: ReadFilter) -> Result<Option<RowOut>> {
        let input = OpInput::Get {
            table: table.into(),
            row: row.to_vec(),
            filter,
        };
        match self.data(input).await? {
            OpOutput::Row(r) if r.cells.is_empty() => Ok(None),
            OpOutput::Row(r) => Ok(Some(r)),
            other => Err(unexpected(&other)),
        }
    }

    /// Rows of `[start, end)` across tablets, in key order (or reverse), up to `limit`.
    pub async fn scan(&self, table: &str, scan: ScanOptions) -> Result<Vec<RowOut>> {
        let input = OpInput::Scan {
            table: table.into(),
            start: scan.start,
            end: scan.end,
            reverse: scan.reverse,
            limit: scan.limit,
            filter: scan.filter,
        };
        match self.data(input).await? {
            OpOutput::Rows(rows) => Ok(rows),
            other => Err(unexpected(&other)),
        }
    }

    /// Atomically: if `check` holds on the row apply `on_match`, else `on_miss`. Returns
    /// whether it held.
    pub async fn check_and_mutate(
        &self,
        table: &str,
        row: &[u8],
        check: Condition,
        on_match: Vec<Mutation>,
        on_miss: Vec<Mutation>,
    ) -> Result<bool> {
        let input = OpInput::CheckAndMutate {
            table: table.into(),
            row: row.to_vec(),
            check,
            on_match,
            on_miss,
        };
        match self.data(input).await? {
            OpOutput::Checked(matched) => Ok(matched),
            other => Err(unexpected(&other)),
        }
    }

    /// Add `delta` to a 64-bit big-endian counter cell; returns the new value.
    pub async fn increment(
        &self,
        table: &str,
        row: &[u8],
        family: &str,
        qualifier: &[u8],
        delta: i64,
    ) -> Result<i64> {
        let input = OpInput::Increment {
            table: table.into(),
            row: row.to_vec(),
            family: family.into(),
            qualifier: qualifier.to_vec(),
            delta,
        };
        match self.data(input).await? {
            OpOutput::Counter(v) => Ok(v),
            other => Err(unexpected(&other)),
        }
    }

    /// Append bytes to a cell; returns the new value.
    pub async fn append(
        &self,
        table: &str,
        row: &[u8],
        family: &str,
        qualifier: &[u8],
        suffix: &[u8],
    ) -> Result<Vec<u8>> {
        let input = OpInput::Append {
            table: table.into(),
            row: row.to_vec(),
            family: family.into(),
            qualifier: qualifier.to_vec(),
            suffix: suffix.to_vec(),
        };
        match self.data(input).await? {
            OpOutput::Appended(v) => Ok(v),
            other => Err(unexpected(&other)),
        }
    }

    // ---- admin ----

    pub async fn create_table(
        &self,
        name: &str,
        schema: Schema,
        split_keys: Vec<Vec<u8>>,
    ) -> Result<()> {
        shale_actors::proto::limits::check_name("table", name)?;
        let call = AdminCall::CreateTable {
            name: name.into(),
            schema,
            split_keys,
        };
        self.admin(call).await.map(|_| ())
    }

    pub async fn disable_table(&self, name: &str) -> Result<()> {
        self.forget(name);
        self.admin(AdminCall::DisableTable { name: name.into() })
            .await
            .map(|_| ())
    }

    pub async fn enable_table(&self, name: &str) -> Result<()> {
        self.admin(AdminCall::EnableTable { name: name.into() })
            .await
            .map(|_| ())
    }

    /// Drop a disabled table. A disable answers once it is durable and unloads the tablets
    /// afterwards; until those unloads end the master refuses a drop ("another table
    /// procedure is running", a `WrongTableStatus` carrying `Disabled`). That refusal is
    /// retried with backoff for at most `op_timeout`, so disable-then-drop just works; every
    /// other refusal (the table is enabled, or gone) returns at once.
    pub async fn drop_table(&self, name: &str) -> Result<()> {
        self.forget(name);
        let t0 = Instant::now();
        let mut pause = DROP_RETRY_PAUSE_MIN;
        loop {
            match self.admin(AdminCall::DropTable { name: name.into() }).await {
                Err(Error::Admin(AdminError::WrongTableStatus {
                    status: TableStatus::Disabled,
                    ..
                })) if t0.elapsed() + pause < self.opts.op_timeout => {
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(DROP_RETRY_PAUSE_MAX);
                }
                r => return r.map(|_| ()),
            }
        }
    }

    pub async fn alter_table(&self, name: &str, schema: Schema) -> Result<()> {
        self.admin(AdminCall::AlterTable {
            name: name.into(),
            schema,
        })
        .await
        .map(|_| ())
    }

    pub async fn list_tables(&self) -> Result<Vec<TableInfo>> {
        match self.admin(AdminCall::ListTables).await? {
            AdminReply::Tables(t) => Ok(t),
            other => Err(unexpected_admin(&other)),
        }
    }

    pub async fn describe_table(&self, name: &str) -> Result<(TableInfo, Vec<TabletInfo>)> {
        shale_actors::proto::limits::check_name("table", name)?;
        match self
            .admin(AdminCall::DescribeTable { name: name.into() })
            .await?
        {
            AdminReply::Table { table, tablets } => Ok((table, tablets)),
            other => Err(unexpected_admin(&other)),
        }
    }

    pub async fn list_tablets(&self, table: Option<&str>) -> Result<Vec<TabletInfo>> {
        let call = AdminCall::ListTablets {
            table: table.map(str::to_string),
        };
        match self.admin(call).await? {
            AdminReply::Tablets(t) => Ok(t),
            other => Err(unexpected_admin(&other)),
        }
    }

    /// Start a split (at `key`, or where the node halves the data); returns the procedure id.
    pub async fn split_tablet(&self, tablet: TabletId, key: Option<Vec<u8>>) -> Result<u64> {
        started(self.admin(AdminCall::SplitTablet { tablet, key }).await?)
    }

    pub async fn merge_tablets(&self, a: TabletId, b: TabletId) -> Result<u64> {
        started(self.admin(AdminCall::MergeTablets { a, b }).await?)
    }

    pub async fn move_tablet(&self, tablet: TabletId, node: NodeId) -> Result<u64> {
        started(self.admin(AdminCall::MoveTablet { tablet, node }).await?)
    }

    pub async fn list_nodes(&self) -> Result<Vec<NodeInfo>> {
        match self.admin(AdminCall::ListNodes).await? {
            AdminReply::Nodes(n) => Ok(n),
            other => Err(unexpected_admin(&other)),
        }
    }

    pub async fn status(&self) -> Result<ClusterStatus> {
        match self.admin(AdminCall::Status).await? {
            AdminReply::Status(s) => Ok(s),
            other => Err(unexpected_admin(&other)),
        }
    }

    fn forget(&self, table: &str) {
        self.enabled
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(table);
    }
}

impl Drop for ShaleClient {
    fn drop(&mut self) {
        self.handle.stop();
    }
}

/// Tables whose enabled status is remembered at once.
const TABLES_REMEMBERED_MAX: usize = 1_024;

fn started(reply: AdminReply) -> Result<u64> {
    match reply {
        AdminReply::Started { procedure } => Ok(procedure),
        AdminReply::Done => Ok(0),
        other => Err(unexpected_admin(&other)),
    }
}

fn unexpected(out: &OpOutput) -> Error {
    Error::UnexpectedReply(format!("{out:?}").chars().take(200).collect())
}

fn unexpected_admin(r: &AdminReply) -> Error {
    Error::UnexpectedReply(format!("{r:?}").chars().take(200).collect())
}

fn unix_millis() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(1, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}
