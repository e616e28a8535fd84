//! Shale's Rust client.
//!
//! [`ShaleClient`] connects to a cluster through the meta store's address: it runs the
//! I/O-free client core (`shale_actors::client`: location cache, bounded retries with backoff
//! on NotServing / KeyNotInRange / StaleVersion / timeouts, batches and scans across tablets)
//! inside a dial-only `shale-net` host, learns node and master addresses from the meta store's
//! answers, and sends admin calls to the master named by the meta store's lease record.
//! [`BlockingClient`] wraps it for the command line.
//!
//! Map: `api.rs` the async API; `meta.rs` the meta store's registry and catalog calls;
//! `blocking.rs` (and `blocking/meta.rs`) the blocking wrapper; `actor.rs` the actor the
//! host runs; `peers.rs` address learning (also used by the server roles' hosts); `error.rs`
//! typed errors.
//!
//! Must not: hold cluster logic (routing, retries and limits live in the core) or unwrap data
//! from the network.
#![deny(clippy::unwrap_used, clippy::expect_used)]

mod actor;
mod api;
#[cfg(not(madsim))]
mod blocking;
mod error;
mod meta;
pub mod peers;

pub use actor::ClientActor;
pub use api::{
    ClientOptions, DeleteTarget, ScanOptions, ShaleClient, DEFAULT_CLUSTER_ID, META_NODE,
};
#[cfg(not(madsim))]
pub use blocking::BlockingClient;
pub use error::{Error, Result};
pub use shale_actors::client::ClientConfig;
pub use shale_actors::meta::{FamilyDesc, Schema, TableStatus, TabletId, TabletStatus};
pub use shale_actors::proto::admin::{ClusterStatus, NodeInfo, TableInfo, TabletInfo};
pub use shale_actors::proto::data::{
    CellOut, ColumnSpec, Condition, Mutation, ReadFilter, RowMutation, RowOut,
};
pub use shale_actors::NodeId;
/// The meta store's catalog types: registered nodes with disk figures, time-series tables
/// and partitions (named apart from the admin API's `NodeInfo` and the data `ColumnSpec`).
pub mod catalog {
    pub use shale_actors::meta::catalog::{
        ColumnInfo, ColumnSpec, NodeInfo, PartitionInfo, StorageReport, TsTableInfo,
    };
    pub use shale_actors::meta::NodeStatus;
    pub use shale_storage::ts::{ColumnType, Value};
}
