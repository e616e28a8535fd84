//! Rows: reading the whole meta state out of MySQL and writing the rows a batch touched.
//!
//! Owns: the column mapping of every record kind, and the `shale_state` row holding the meta
//! format version (`format_version`, ASCII decimal rather than bincode so that every build,
//! whatever its encoding, can read it). Must not: decide anything about the records (the
//! mirror `MetaState` in `lib.rs` has already applied them) or about the format version
//! (`lib.rs` checks it).

use crate::sql;
use mysql::prelude::Queryable;
use shale_actors::kernel::{NodeId, Time};
use shale_actors::meta::catalog::PartitionKey;
use shale_actors::meta::{
    BackendError, ColumnInfo, DedupEntry, IdMarks, MasterLease, MetaSnapshot, NodeRecord,
    NodeStatus, Origin, PartitionRecord, RecordKey, StorageReport, TsTableInfo, Versioned,
};
use shale_storage::ts::ColumnType;
use std::collections::BTreeSet;

pub const ALL_TABLES: [&str; 11] = [
    "id_mapping",
    "table_info",
    "column_info",
    "partition_info",
    "worker_node_info",
    "node_storage_info",
    "shale_tables",
    "shale_tablets",
    "shale_procedures",
    "shale_stats",
    "shale_dedup",
];

/// What a batch of records changed, by key.
#[derive(Debug, Default)]
pub struct Touched {
    /// The first revision of the batch: retry entries from it on are written.
    pub first_revision: Option<u64>,
    pub state: bool,
    pub dedup: bool,
    pub records: BTreeSet<RecordKey>,
    pub nodes: BTreeSet<NodeId>,
    pub ids: BTreeSet<String>,
    pub ts_tables: BTreeSet<String>,
    pub partitions: BTreeSet<PartitionKey>,
    pub storage: BTreeSet<NodeId>,
}

/// The `shale_state` key of the meta format version row.
pub const FORMAT_VERSION_KEY: &str = "format_version";

/// The meta format version the database records; None if it records none (a database from
/// before format versions, or an empty one).
pub fn read_format_version<Q: Queryable>(q: &mut Q) -> Result<Option<u32>, BackendError> {
    let v: Option<Vec<u8>> = q
        .exec_first(
            "SELECT v FROM shale_state WHERE k = ?",
            (FORMAT_VERSION_KEY,),
        )
        .map_err(sql)?;
    v.map(|b| {
        std::str::from_utf8(&b)
            .ok()
            .and_then(|s| s.trim().parse::<u32>().ok())
            .ok_or_else(|| {
                corrupt(
                    "shale_state",
                    format!(
                        "{FORMAT_VERSION_KEY} {:?} is not a number",
                        String::from_utf8_lossy(&b)
                    ),
                )
            })
    })
    .transpose()
}

/// Record the meta format version, unless a row is already there.
pub fn write_format_version<Q: Queryable>(q: &mut Q, version: u32) -> Result<(), BackendError> {
    q.exec_drop(
        "INSERT IGNORE INTO shale_state (k, v) VALUES (?, ?)",
        (FORMAT_VERSION_KEY, version.to_string().into_bytes()),
    )
    .map_err(sql)
}

fn enc<T: serde::Serialize>(v: &T) -> Result<Vec<u8>, BackendError> {
    bincode::serialize(v).map_err(|e| BackendError::Encode(e.to_string()))
}

fn dec<T: serde::de::DeserializeOwned>(what: &'static str, b: &[u8]) -> Result<T, BackendError> {
    bincode::deserialize(b).map_err(|e| BackendError::Corrupt {
        what,
        offset: 0,
        reason: e.to_string(),
    })
}

fn corrupt(what: &'static str, reason: String) -> BackendError {
    BackendError::Corrupt {
        what,
        offset: 0,
        reason,
    }
}

fn status_code(s: NodeStatus) -> i32 {
    match s {
        NodeStatus::Down => 0,
        NodeStatus::Up => 1,
        NodeStatus::Decommissioned => 2,
    }
}

fn record_table(key: &RecordKey) -> &'static str {
    match key {
        RecordKey::Table(_) => "shale_tables",
        RecordKey::Tablet(_) => "shale_tablets",
        RecordKey::Procedure(_) => "shale_procedures",
        RecordKey::Stat(_) => "shale_stats",
        RecordKey::Node(_) => "worker_node_info",
    }
}

/// Read every table into a snapshot.
pub fn read_all<Q: Queryable>(q: &mut Q) -> Result<MetaSnapshot, BackendError> {
    let mut s = MetaSnapshot::default();
    let state: Vec<(String, Vec<u8>)> = q.query("SELECT k, v FROM shale_state").map_err(sql)?;
    for (k, v) in state {
        match k.as_str() {
            "revision" => s.revision = dec("revision", &v)?,
            "marks" => s.marks = dec::<IdMarks>("marks", &v)?,
            "lease" => s.master_lease = dec::<Option<MasterLease>>("lease", &v)?,
            // Checked by `load` before anything is read.
            FORMAT_VERSION_KEY => {}
            other => return Err(corrupt("shale_state", format!("unknown key {other:?}"))),
        }
    }
    let ids: Vec<(u32, String)> = q
        .query("SELECT key_id, key_str FROM id_mapping")
        .map_err(sql)?;
    s.ids = ids.into_iter().map(|(id, k)| (k, id)).collect();
    let tables: Vec<(u32, String, u32)> = q
        .query("SELECT id, table_name, partition_count_per_day FROM table_info")
        .map_err(sql)?;
    for (id, name, count) in tables {
        s.ts_tables.insert(
            name.clone(),
            TsTableInfo {
                id,
                name,
                partition_count_per_day: count,
                columns: Vec::new(),
            },
        );
    }
    let cols: Vec<(String, String, String, u32, u32, String)> = q
        .query(
            "SELECT table_name, column_name, column_type, column_index, column_id, column_comment
             FROM column_info ORDER BY table_name, column_index",
        )
        .map_err(sql)?;
    for (table, name, ty, index, id, comment) in cols {
        let column_type = ColumnType::parse(&ty)
            .ok_or_else(|| corrupt("column_info", format!("unknown type {ty:?}")))?;
        let t = s
            .ts_tables
            .get_mut(&table)
            .ok_or_else(|| corrupt("column_info", format!("column of missing table {table:?}")))?;
        t.columns.push(ColumnInfo {
            name,
            column_type,
            index,
            id,
            comment,
        });
    }
    let parts: Vec<(u32, String, u32, u32, u64, u64, u32)> = q
        .query(
            "SELECT id, table_name, partition_date, partition_index, node_id, created_at_ns, moves
             FROM partition_info",
        )
        .map_err(sql)?;
    for (id, table, date, index, node, at, moves) in parts {
        let p = PartitionRecord {
            id,
            table,
            date,
            index,
            node: NodeId(node),
            created_at: Time(at),
            moves,
        };
        s.partitions.insert(p.key(), p);
    }
    let nodes: Vec<(u64, u64, Vec<u8>)> = q
        .query("SELECT id, version, body FROM worker_node_info")
        .map_err(sql)?;
    for (id, version, body) in nodes {
        let value: NodeRecord = dec("worker_node_info", &body)?;
        if value.id.0 != id {
            return Err(corrupt(
                "worker_node_info",
                format!("row {id} holds node {}", value.id),
            ));
        }
        s.nodes.insert(value.id, Versioned { version, value });
    }
    let reports: Vec<(u64, u64, u64)> = q
        .query("SELECT node_id, used_disk_size, at_ns FROM node_storage_info ORDER BY node_id, seq")
        .map_err(sql)?;
    for (node, used, at) in reports {
        s.storage
            .entry(NodeId(node))
            .or_default()
            .push(StorageReport {
                at: Time(at),
                used_disk_bytes: used,
            });
    }
    for table in [
        "shale_tables",
        "shale_tablets",
        "shale_procedures",
        "shale_stats",
    ] {
        let rows: Vec<(Vec<u8>, u64, Vec<u8>)> = q
            .query(format!("SELECT record_key, version, body FROM {table}"))
            .map_err(sql)?;
        for (key, version, body) in rows {
            match dec::<RecordKey>(table, &key)? {
                RecordKey::Table(k) => {
                    s.tables.insert(
                        k,
                        Versioned {
                            version,
                            value: dec(table, &body)?,
                        },
                    );
                }
                RecordKey::Tablet(k) => {
                    s.tablets.insert(
                        k,
                        Versioned {
                            version,
                            value: dec(table, &body)?,
                        },
                    );
                }
                RecordKey::Procedure(k) => {
                    s.procedures.insert(
                        k,
                        Versioned {
                            version,
                            value: dec(table, &body)?,
                        },
                    );
                }
                RecordKey::Stat(k) => {
                    s.stats.insert(
                        k,
                        Versioned {
                            version,
                            value: dec(table, &body)?,
                        },
                    );
                }
                RecordKey::Node(n) => {
                    return Err(corrupt(
                        "shale records",
                        format!("node {n} outside worker_node_info"),
                    ))
                }
            }
        }
    }
    let dedup: Vec<(Vec<u8>, Vec<u8>)> = q
        .query("SELECT origin, body FROM shale_dedup")
        .map_err(sql)?;
    for (origin, body) in dedup {
        s.dedup.insert(
            dec::<Origin>("shale_dedup", &origin)?,
            dec::<DedupEntry>("shale_dedup", &body)?,
        );
    }
    Ok(s)
}

fn put_record<Q: Queryable>(
    q: &mut Q,
    s: &MetaSnapshot,
    key: &RecordKey,
) -> Result<(), BackendError> {
    let table = record_table(key);
    let k = enc(key)?;
    fn body<T: serde::Serialize>(
        v: Option<&Versioned<T>>,
    ) -> Result<Option<(u64, Vec<u8>)>, BackendError> {
        v.map(|v| Ok((v.version, enc(&v.value)?))).transpose()
    }
    let row = match key {
        RecordKey::Table(x) => body(s.tables.get(x))?,
        RecordKey::Tablet(x) => body(s.tablets.get(x))?,
        RecordKey::Procedure(x) => body(s.procedures.get(x))?,
        RecordKey::Stat(x) => body(s.stats.get(x))?,
        RecordKey::Node(n) => return put_node(q, s, *n),
    };
    match row {
        Some((version, body)) => q.exec_drop(
            format!("REPLACE INTO {table} (record_key, version, body) VALUES (?, ?, ?)"),
            (k, version, body),
        ),
        None => q.exec_drop(format!("DELETE FROM {table} WHERE record_key = ?"), (k,)),
    }
    .map_err(sql)
}

fn put_node<Q: Queryable>(q: &mut Q, s: &MetaSnapshot, id: NodeId) -> Result<(), BackendError> {
    match s.nodes.get(&id) {
        Some(v) => {
            let n = &v.value;
            let (ip, port) = shale_actors::meta::catalog::split_addr(&n.addr.0);
            // A name moving to another id (an operator deleted and re-registered it) must
            // not trip the unique key: clear any other row holding the name first.
            q.exec_drop(
                "DELETE FROM worker_node_info WHERE node_name = ? AND id <> ?",
                (&n.name, id.0),
            )
            .map_err(sql)?;
            q.exec_drop(
                "REPLACE INTO worker_node_info
                 (id, node_name, node_ip, node_port, node_status, total_disk_size, version, body)
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    id.0,
                    &n.name,
                    ip,
                    port,
                    status_code(n.status),
                    n.total_disk_bytes,
                    v.version,
                    enc(n)?,
                ),
            )
        }
        None => q.exec_drop("DELETE FROM worker_node_info WHERE id = ?", (id.0,)),
    }
    .map_err(sql)
}

fn put_ts_table<Q: Queryable>(q: &mut Q, t: &TsTableInfo) -> Result<(), BackendError> {
    q.exec_drop(
        "REPLACE INTO table_info (id, table_name, partition_count_per_day) VALUES (?, ?, ?)",
        (t.id, &t.name, t.partition_count_per_day),
    )
    .map_err(sql)?;
    q.exec_drop("DELETE FROM column_info WHERE table_name = ?", (&t.name,))
        .map_err(sql)?;
    for c in &t.columns {
        q.exec_drop(
            "INSERT INTO column_info
             (table_name, column_name, column_type, column_index, column_id, column_comment)
             VALUES (?, ?, ?, ?, ?, ?)",
            (
                &t.name,
                &c.name,
                c.column_type.name(),
                c.index,
                c.id,
                &c.comment,
            ),
        )
        .map_err(sql)?;
    }
    Ok(())
}

fn put_partition<Q: Queryable>(q: &mut Q, p: &PartitionRecord) -> Result<(), BackendError> {
    q.exec_drop(
        "REPLACE INTO partition_info
         (id, table_name, partition_date, partition_index, node_id, created_at_ns, moves)
         VALUES (?, ?, ?, ?, ?, ?, ?)",
        (
            p.id,
            &p.table,
            p.date,
            p.index,
            p.node.0,
            p.created_at.0,
            p.moves,
        ),
    )
    .map_err(sql)
}

fn put_storage<Q: Queryable>(
    q: &mut Q,
    s: &MetaSnapshot,
    node: NodeId,
) -> Result<(), BackendError> {
    q.exec_drop("DELETE FROM node_storage_info WHERE node_id = ?", (node.0,))
        .map_err(sql)?;
    for (seq, r) in s.storage.get(&node).into_iter().flatten().enumerate() {
        q.exec_drop(
            "INSERT INTO node_storage_info (node_id, used_disk_size, at_ns, seq) VALUES (?, ?, ?, ?)",
            (node.0, r.used_disk_bytes, r.at.0, seq as u32),
        )
        .map_err(sql)?;
    }
    Ok(())
}

fn put_state<Q: Queryable>(q: &mut Q, s: &MetaSnapshot) -> Result<(), BackendError> {
    for (k, v) in [
        ("revision", enc(&s.revision)?),
        ("marks", enc(&s.marks)?),
        ("lease", enc(&s.master_lease)?),
    ] {
        q.exec_drop("REPLACE INTO shale_state (k, v) VALUES (?, ?)", (k, v))
            .map_err(sql)?;
    }
    Ok(())
}

/// Rewrite the retry table: drop entries the mirror evicted, upsert the rest that changed.
fn put_dedup<Q: Queryable>(q: &mut Q, s: &MetaSnapshot, since: u64) -> Result<(), BackendError> {
    let oldest = s
        .dedup
        .values()
        .map(|e| e.revision)
        .min()
        .unwrap_or(u64::MAX);
    q.exec_drop("DELETE FROM shale_dedup WHERE revision < ?", (oldest,))
        .map_err(sql)?;
    for (origin, e) in s.dedup.iter().filter(|(_, e)| e.revision >= since) {
        q.exec_drop(
            "REPLACE INTO shale_dedup (origin, revision, body) VALUES (?, ?, ?)",
            (enc(origin)?, e.revision, enc(e)?),
        )
        .map_err(sql)?;
    }
    Ok(())
}

/// Write the rows `t` names from the mirror `s`; `since` is the first revision of the batch.
pub fn write_touched<Q: Queryable>(
    q: &mut Q,
    s: &MetaSnapshot,
    t: &Touched,
) -> Result<(), BackendError> {
    let since = t.first_revision.unwrap_or(0);
    for key in &t.records {
        put_record(q, s, key)?;
    }
    for id in &t.nodes {
        put_node(q, s, *id)?;
    }
    for key in &t.ids {
        if let Some(id) = s.ids.get(key) {
            q.exec_drop(
                "REPLACE INTO id_mapping (key_id, key_str) VALUES (?, ?)",
                (id, key),
            )
            .map_err(sql)?;
        }
    }
    for name in &t.ts_tables {
        if let Some(table) = s.ts_tables.get(name) {
            put_ts_table(q, table)?;
        }
    }
    for key in &t.partitions {
        if let Some(p) = s.partitions.get(key) {
            put_partition(q, p)?;
        }
    }
    for node in &t.storage {
        put_storage(q, s, *node)?;
    }
    if t.dedup {
        put_dedup(q, s, since)?;
    }
    if t.state {
        put_state(q, s)?;
    }
    Ok(())
}

/// Replace every table's contents with `s`.
pub fn write_all<Q: Queryable>(q: &mut Q, s: &MetaSnapshot) -> Result<(), BackendError> {
    for t in ALL_TABLES {
        q.query_drop(format!("DELETE FROM {t}")).map_err(sql)?;
    }
    let mut all = Touched {
        state: true,
        dedup: true,
        nodes: s.nodes.keys().copied().collect(),
        ids: s.ids.keys().cloned().collect(),
        ts_tables: s.ts_tables.keys().cloned().collect(),
        partitions: s.partitions.keys().cloned().collect(),
        storage: s.storage.keys().copied().collect(),
        ..Touched::default()
    };
    all.records
        .extend(s.tables.keys().cloned().map(RecordKey::Table));
    all.records
        .extend(s.tablets.keys().copied().map(RecordKey::Tablet));
    all.records
        .extend(s.procedures.keys().copied().map(RecordKey::Procedure));
    all.records
        .extend(s.stats.keys().copied().map(RecordKey::Stat));
    write_touched(q, s, &all)
}
