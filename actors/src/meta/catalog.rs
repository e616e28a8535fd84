//! The time-series catalog the meta store keeps beside tables and tablets (seed 004): the
//! global id mapping, typed table schemas, day partitions and their placement, and each
//! node's storage reports.
//!
//! Owns: the catalog's records, the one apply path for [`CatalogOp`]s (shared by live
//! commits and replay) and the catalog's invariants. Must not: read a clock, choose where a
//! partition goes (`placement.rs`) or validate requests (the handlers in `idmap.rs`,
//! `schema.rs`, `partition.rs` and `registry.rs` do, before they commit).

use super::state::MetaState;
use crate::kernel::{NodeId, Time};
use serde::{Deserialize, Serialize};
use shale_storage::ts::{ColumnType, PartitionSpec};

/// Storage reports kept per node, newest last. A constant, not a setting: apply must give
/// the same state on replay whatever the current configuration says.
pub const STORAGE_HISTORY_MAX: usize = 32;
/// The seed's `VARCHAR(255)`: id-mapping keys, table, column and node names.
pub const CATALOG_NAME_BYTES_MAX: usize = 255;
/// Columns in one table schema.
pub const COLUMNS_MAX: usize = 1_024;

/// One column of a time-series table.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ColumnInfo {
    pub name: String,
    pub column_type: ColumnType,
    /// Position in a row, 0-based and dense.
    pub index: u32,
    /// From the id mapping, keyed by [`column_key`]: unique across all tables.
    pub id: u32,
    pub comment: String,
}

/// What a caller gives for a column; the store assigns the id.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ColumnSpec {
    pub name: String,
    pub column_type: ColumnType,
    pub index: u32,
    pub comment: String,
}

/// A time-series table (`table_info` + `column_info`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TsTableInfo {
    /// From the id mapping, keyed by [`table_key`].
    pub id: u32,
    pub name: String,
    pub partition_count_per_day: u32,
    /// Sorted by index.
    pub columns: Vec<ColumnInfo>,
}

/// Where one partition lives. Created on first need, moved only by an explicit call.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartitionRecord {
    pub id: u32,
    pub table: String,
    /// YYYYMMDD (UTC).
    pub date: u32,
    pub index: u32,
    pub node: NodeId,
    pub created_at: Time,
    /// How many explicit moves it has had (zero for most; operators see it in listings).
    pub moves: u32,
}

/// The key partitions are stored under: (table, date, index).
pub type PartitionKey = (String, u32, u32);

impl PartitionRecord {
    pub fn key(&self) -> PartitionKey {
        (self.table.clone(), self.date, self.index)
    }
}

/// One storage report from a node.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StorageReport {
    /// On the meta store's clock.
    pub at: Time,
    pub used_disk_bytes: u64,
}

/// A worker node as callers see it (`worker_node_info` + the latest `node_storage_info`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeInfo {
    pub id: NodeId,
    pub name: String,
    pub ip: String,
    pub port: u16,
    pub status: super::model::NodeStatus,
    pub total_disk_bytes: u64,
    /// None until the node's first report.
    pub used_disk_bytes: Option<u64>,
    /// total - last used, saturating; total if the node never reported.
    pub free_disk_bytes: u64,
    /// Oldest first, at most [`STORAGE_HISTORY_MAX`].
    pub storage_history: Vec<StorageReport>,
}

/// One partition as callers see it (the seed's `PartitionInfo`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartitionInfo {
    pub id: u32,
    pub table: String,
    pub date: u32,
    pub index: u32,
    pub node: NodeId,
    pub worker_name: String,
    pub worker_ip: String,
    pub worker_port: u16,
    pub worker_status: super::model::NodeStatus,
    /// `[time_start_ms, time_end_ms)`, milliseconds since the Unix epoch.
    pub time_start_ms: u64,
    pub time_end_ms: u64,
}

/// One catalog change, as logged.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum CatalogOp {
    /// A new id mapping entry.
    Id {
        key: String,
        id: u32,
    },
    /// A new table (tables are immutable once created).
    Table(TsTableInfo),
    /// A partition created or explicitly moved.
    Partition(PartitionRecord),
    Storage {
        node: NodeId,
        report: StorageReport,
    },
}

/// Table and column names are identifiers (`[A-Za-z0-9_-]`): a table name is also a
/// directory name in partition paths, and with no `:` or `.` in names the id-mapping keys
/// below cannot collide.
pub fn is_identifier(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= CATALOG_NAME_BYTES_MAX
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// The id-mapping key of a table.
pub fn table_key(table: &str) -> String {
    format!("table:{table}")
}

/// The id-mapping key of a column of a table.
pub fn column_key(table: &str, column: &str) -> String {
    format!("column:{table}.{column}")
}

/// Split "host:port" into its parts; a missing or bad port reads as 0. IPv6 hosts come in
/// brackets ("[::1]:7000") and lose them here.
pub fn split_addr(addr: &str) -> (String, u16) {
    match addr.rsplit_once(':') {
        Some((host, port)) => (
            host.trim_start_matches('[')
                .trim_end_matches(']')
                .to_string(),
            port.parse().unwrap_or(0),
        ),
        None => (addr.to_string(), 0),
    }
}

/// "host:port", bracketing an IPv6 host.
pub fn join_addr(ip: &str, port: u16) -> String {
    if ip.contains(':') {
        format!("[{ip}]:{port}")
    } else {
        format!("{ip}:{port}")
    }
}

impl MetaState {
    pub(super) fn apply_catalog(&mut self, op: &CatalogOp) {
        let d = &mut self.data;
        match op {
            CatalogOp::Id { key, id } => {
                d.ids.insert(key.clone(), *id);
                d.marks.id_next = d.marks.id_next.max(id.saturating_add(1));
            }
            CatalogOp::Table(t) => {
                d.ts_tables.insert(t.name.clone(), t.clone());
            }
            CatalogOp::Partition(p) => {
                d.marks.partition_next = d.marks.partition_next.max(p.id.saturating_add(1));
                d.partitions.insert(p.key(), p.clone());
            }
            CatalogOp::Storage { node, report } => {
                let h = d.storage.entry(*node).or_default();
                h.push(*report);
                if h.len() > STORAGE_HISTORY_MAX {
                    let excess = h.len() - STORAGE_HISTORY_MAX;
                    h.drain(..excess);
                }
            }
        }
    }

    /// The latest used-disk report of a node.
    pub fn last_used_disk(&self, node: NodeId) -> Option<u64> {
        self.data
            .storage
            .get(&node)
            .and_then(|h| h.last())
            .map(|r| r.used_disk_bytes)
    }

    pub(super) fn check_catalog_invariants(&self) -> Result<(), String> {
        let d = &self.data;
        let mut seen = std::collections::BTreeSet::new();
        for (key, id) in &d.ids {
            if *id == 0 || *id >= d.marks.id_next {
                return Err(format!("id {id} of {key:?} is zero or above the mark"));
            }
            if !seen.insert(*id) {
                return Err(format!("id {id} is mapped twice"));
            }
        }
        for t in d.ts_tables.values() {
            PartitionSpec::new(t.partition_count_per_day).map_err(|e| e.to_string())?;
            for (i, c) in t.columns.iter().enumerate() {
                if c.index as usize != i || d.ids.get(&column_key(&t.name, &c.name)) != Some(&c.id)
                {
                    return Err(format!(
                        "column {:?} of {:?} is inconsistent",
                        c.name, t.name
                    ));
                }
            }
        }
        let mut ids = std::collections::BTreeSet::new();
        for (key, p) in &d.partitions {
            let table = d
                .ts_tables
                .get(&p.table)
                .ok_or_else(|| format!("partition {} of missing table {:?}", p.id, p.table))?;
            if *key != p.key() || p.index >= table.partition_count_per_day {
                return Err(format!("partition {} has a bad key or index", p.id));
            }
            if p.id == 0 || p.id >= d.marks.partition_next || !ids.insert(p.id) {
                return Err(format!(
                    "partition id {} is zero, reused or above the mark",
                    p.id
                ));
            }
        }
        if d.storage.values().any(|h| h.len() > STORAGE_HISTORY_MAX) {
            return Err("a storage history exceeds its bound".into());
        }
        Ok(())
    }
}
