//! `shale ts`: time-series tables. `create`, `describe`, `partitions` and `move` are meta
//! store calls; `put` turns rows into published partitions and `scan` reads a time range
//! across them.
//!
//! Where partition files live: on the cluster's shared file store, under its data folder, at
//! `ts/<table>/<YYYYMMDD>/<index:04>/` (`part-NNNN.grid` files and `SUCCESS`). The meta store
//! says which partitions exist and which node each is placed on (`GetPartitionInfos`); the
//! placement accounts the partition's bytes to that node's disk, and since every node mounts
//! the same store, a move (`MovePartition`) changes the record, not the path.
//!
//! `put` groups rows by partition, checks every value against the schema and refuses the whole
//! input before writing anything if a row is bad or a target partition is already published
//! (partitions are immutable). The day's partitions are created in the meta store on first
//! need. `scan` reads only published partitions (those with `SUCCESS`), in time order.
//!
//! Must not: choose partitions or nodes (the meta store does) or write files other than
//! through `shale_storage::ts`.

use crate::args::Conn;
use crate::commands::{connect, CmdError};
use crate::ts_rows::{csv_row, json_row, parse_time, row_json, row_text, RowError};
use clap::Subcommand;
use serde_json::{json, Value as Json};
use shale_client::catalog::{ColumnSpec, ColumnType, PartitionInfo, TsTableInfo};
use shale_client::BlockingClient;
use shale_storage::fs::{FileStore, LocalFs};
use shale_storage::ts::civil::{date_of, MS_PER_DAY};
use shale_storage::ts::{
    is_published, partition_dir, read_partition, write_partition, IngestOptions, PartitionSlot,
    PartitionSpec, Row, TimeError, TsError,
};
use std::collections::BTreeMap;
use std::io::BufRead;
use std::path::PathBuf;

/// The folder under the data folder that holds every time-series table.
pub const TS_DIR: &str = "ts";
/// Days one scan walks at most (one meta call each): a wider range is almost surely a unit
/// mistake, and the caller can split it.
const SCAN_DAYS_MAX: u64 = 3_660;

#[derive(Subcommand, Debug)]
pub enum TsCmd {
    /// Define a time-series table: its day partitioning and typed columns.
    Create {
        table: String,
        /// Partitions per UTC day: 1..=1440 dividing 1440 (24 is hourly).
        #[arg(long)]
        partitions_per_day: u32,
        /// NAME:TYPE[:COMMENT], in column order; TYPE is bool, i32, i64, u32, u64, f32, f64,
        /// string, bytes or timestamp. Repeatable.
        #[arg(long = "column", required = true)]
        columns: Vec<String>,
    },
    /// A table's schema.
    Describe { table: String },
    /// The partitions of the UTC day holding time AT (ms or a UTC date/time).
    Partitions {
        table: String,
        #[arg(long)]
        at: String,
        /// Create the day's missing partitions first.
        #[arg(long)]
        create: bool,
    },
    /// Move one partition to another node: the partition of the UTC day holding AT with
    /// index INDEX (as `partitions` lists them) is placed on node TO from now on. Partitions
    /// never move on their own, not even when their node dies; this is how an operator moves
    /// them. The files stay where they are (every node mounts the same store).
    Move {
        table: String,
        #[arg(long)]
        at: String,
        #[arg(long)]
        index: u32,
        /// The node id to move it to (`shale node list`).
        #[arg(long)]
        to: u64,
    },
    /// Write rows as published partition files (`TIME,KEY,VALUE...` per CSV line, or JSON
    /// Lines with "timestamp", "key" and one field per column).
    Put {
        table: String,
        /// Rows from this file (.csv or .jsonl; `-` is stdin, read as CSV).
        #[arg(long)]
        file: Option<PathBuf>,
        /// One CSV row `TIME,KEY,VALUE...`; repeatable.
        #[arg(long)]
        row: Vec<String>,
        /// The cluster's data folder (partition files go under its `ts/`).
        #[arg(long, env = "SHALE_DATA", default_value = "./shale-data")]
        data: PathBuf,
    },
    /// Rows with FROM <= time < TO across partitions, in time order.
    Scan {
        table: String,
        #[arg(long)]
        from: String,
        #[arg(long)]
        to: String,
        #[arg(long, default_value_t = 1_000)]
        limit: usize,
        #[arg(long, env = "SHALE_DATA", default_value = "./shale-data")]
        data: PathBuf,
    },
}

#[derive(Debug, thiserror::Error)]
pub enum TsCmdError {
    #[error(transparent)]
    Cmd(#[from] CmdError),
    #[error("{0}")]
    Client(#[from] shale_client::Error),
    #[error(transparent)]
    Row(#[from] RowError),
    #[error("partition files: {0}")]
    Files(#[from] TsError),
    #[error(transparent)]
    Time(#[from] TimeError),
    #[error("bad column {0:?}: {1}")]
    Column(String, String),
    #[error("cannot read {path}: {why}")]
    Read { path: String, why: String },
    #[error("cannot open the data folder {path}: {why}")]
    Data { path: String, why: String },
    #[error("no rows given (use --file or --row)")]
    NoRows,
    #[error("the meta store has no partition {date}/{index} of {table:?} after creating the day's partitions")]
    MissingPartition {
        table: String,
        date: u32,
        index: u32,
    },
    #[error("partition {0} is already published; partitions are immutable, nothing was written")]
    Published(String),
    #[error("--from must be below --to")]
    EmptyRange,
    #[error("the range spans {0} days; at most {SCAN_DAYS_MAX} per scan")]
    RangeTooWide(u64),
}

pub fn run(cmd: TsCmd, conn: &Conn) -> Result<(), TsCmdError> {
    let c = connect(conn)?;
    match cmd {
        TsCmd::Create {
            table,
            partitions_per_day,
            columns,
        } => {
            let specs = columns
                .iter()
                .enumerate()
                .map(|(i, s)| column_spec(s, i))
                .collect::<Result<Vec<_>, _>>()?;
            let info = c.insert_table_info(&table, partitions_per_day, specs)?;
            print_table(&info, conn.json);
        }
        TsCmd::Describe { table } => print_table(&c.table_info(&table)?, conn.json),
        TsCmd::Partitions { table, at, create } => {
            let parts = c.partition_infos(&table, parse_time(&at)?, create)?;
            print_partitions(&parts, conn.json);
        }
        TsCmd::Move {
            table,
            at,
            index,
            to,
        } => {
            let date = date_of(parse_time(&at)?)?;
            let moved = c.move_partition(&table, date, index, shale_client::NodeId(to))?;
            print_partitions(&[moved], conn.json);
        }
        TsCmd::Put {
            table,
            file,
            row,
            data,
        } => {
            let info = c.table_info(&table)?;
            let mut rows = Vec::new();
            if let Some(path) = &file {
                rows.extend(read_rows(&info, path)?);
            }
            for (i, text) in row.iter().enumerate() {
                rows.push(csv_row(&info, text, i + 1)?);
            }
            let fs = open_data(&data)?;
            let written = put(&c, &*fs, &info, rows)?;
            if conn.json {
                println!(
                    "{}",
                    Json::Array(written.iter().map(written_json).collect())
                );
            } else {
                for w in &written {
                    println!(
                        "{}/{:04}\tnode {}\t{} rows\t{} parts\t{}",
                        w.date, w.index, w.node.0, w.rows, w.parts, w.dir
                    );
                }
            }
        }
        TsCmd::Scan {
            table,
            from,
            to,
            limit,
            data,
        } => {
            let info = c.table_info(&table)?;
            let fs = open_data(&data)?;
            let rows = scan(&c, &*fs, &info, parse_time(&from)?, parse_time(&to)?, limit)?;
            if conn.json {
                let all = rows.iter().map(|r| row_json(&info, r)).collect();
                println!("{}", Json::Array(all));
            } else {
                for r in &rows {
                    println!("{}", row_text(r));
                }
            }
        }
    }
    Ok(())
}

fn open_data(data: &std::path::Path) -> Result<Box<dyn FileStore>, TsCmdError> {
    let fs = LocalFs::new(data).map_err(|e| TsCmdError::Data {
        path: data.display().to_string(),
        why: e.to_string(),
    })?;
    Ok(Box::new(fs))
}

/// `NAME:TYPE[:COMMENT]` as the column at `index`.
fn column_spec(s: &str, index: usize) -> Result<ColumnSpec, TsCmdError> {
    let bad = |why: &str| TsCmdError::Column(s.to_string(), why.to_string());
    let mut it = s.splitn(3, ':');
    let name = it
        .next()
        .filter(|n| !n.is_empty())
        .ok_or_else(|| bad("no name"))?;
    let ty = it.next().ok_or_else(|| bad("no type (NAME:TYPE)"))?;
    let column_type = ColumnType::parse(ty).ok_or_else(|| bad("unknown type"))?;
    Ok(ColumnSpec {
        name: name.to_string(),
        column_type,
        index: u32::try_from(index).map_err(|_| bad("too many columns"))?,
        comment: it.next().unwrap_or_default().to_string(),
    })
}

/// Rows of a `.jsonl`/`.json` file as JSON Lines, anything else (and stdin) as CSV. Blank
/// lines are skipped; a first CSV line starting with `timestamp` is a header.
fn read_rows(table: &TsTableInfo, path: &PathBuf) -> Result<Vec<Row>, TsCmdError> {
    let err = |e: std::io::Error| TsCmdError::Read {
        path: path.display().to_string(),
        why: e.to_string(),
    };
    let reader: Box<dyn BufRead> = if path.as_os_str() == "-" {
        Box::new(std::io::stdin().lock())
    } else {
        Box::new(std::io::BufReader::new(
            std::fs::File::open(path).map_err(err)?,
        ))
    };
    let jsonl = path
        .extension()
        .is_some_and(|e| e == "jsonl" || e == "json");
    let mut rows = Vec::new();
    for (i, line) in reader.lines().enumerate() {
        let line = line.map_err(err)?;
        let text = line.trim();
        if text.is_empty() || (i == 0 && !jsonl && text.starts_with("timestamp")) {
            continue;
        }
        rows.push(if jsonl {
            json_row(table, text, i + 1)?
        } else {
            csv_row(table, text, i + 1)?
        });
    }
    Ok(rows)
}

/// One partition `put` published.
pub struct Written {
    pub date: u32,
    pub index: u32,
    pub node: shale_client::NodeId,
    pub dir: String,
    pub rows: u64,
    pub parts: usize,
}

fn written_json(w: &Written) -> Json {
    json!({"date": w.date, "index": w.index, "node": w.node.0, "dir": w.dir,
           "rows": w.rows, "parts": w.parts})
}

/// Group `rows` by partition, create the days' partitions in the meta store, and publish one
/// partition per group. Nothing is written unless every row is valid and no target partition
/// is published yet.
pub fn put(
    c: &BlockingClient,
    fs: &dyn FileStore,
    table: &TsTableInfo,
    rows: Vec<Row>,
) -> Result<Vec<Written>, TsCmdError> {
    if rows.is_empty() {
        return Err(TsCmdError::NoRows);
    }
    let spec = PartitionSpec::new(table.partition_count_per_day)?;
    let columns: Vec<(String, ColumnType)> = table
        .columns
        .iter()
        .map(|c| (c.name.clone(), c.column_type))
        .collect();
    let mut groups: BTreeMap<PartitionSlot, Vec<Row>> = BTreeMap::new();
    for (i, r) in rows.into_iter().enumerate() {
        shale_storage::ts::check_values(&columns, &r.values)
            .map_err(|err| RowError::Value { line: i + 1, err })?;
        groups
            .entry(spec.slot_of(r.timestamp_ms)?)
            .or_default()
            .push(r);
    }
    // One meta call per day creates (or finds) all of its partitions.
    let mut placed: BTreeMap<(u32, u32), PartitionInfo> = BTreeMap::new();
    for (slot, rs) in &groups {
        if !placed.contains_key(&(slot.date, slot.index)) {
            for p in c.partition_infos(&table.name, rs[0].timestamp_ms, true)? {
                placed.insert((p.date, p.index), p);
            }
        }
    }
    let mut plan = Vec::new();
    for (slot, rs) in groups {
        let p = placed
            .get(&(slot.date, slot.index))
            .ok_or(TsCmdError::MissingPartition {
                table: table.name.clone(),
                date: slot.date,
                index: slot.index,
            })?;
        let dir = partition_dir(TS_DIR, &table.name, p.date, p.index);
        if is_published(fs, &dir) {
            return Err(TsCmdError::Published(dir));
        }
        plan.push((p.clone(), dir, rs));
    }
    let opts = IngestOptions::default();
    let mut out = Vec::new();
    for (p, dir, rs) in plan {
        let range = (p.time_start_ms, p.time_end_ms);
        let published = write_partition(fs, &dir, range, &columns, rs, &opts)?;
        tracing::info!(table = %table.name, date = p.date, index = p.index, node = %p.node,
            rows = published.rows, "partition written");
        out.push(Written {
            date: p.date,
            index: p.index,
            node: p.node,
            dir,
            rows: published.rows,
            parts: published.parts.len(),
        });
    }
    Ok(out)
}

/// Rows with `from <= ts < to` from the published partitions the meta store lists, in time
/// order, at most `limit`.
pub fn scan(
    c: &BlockingClient,
    fs: &dyn FileStore,
    table: &TsTableInfo,
    from: u64,
    to: u64,
    limit: usize,
) -> Result<Vec<Row>, TsCmdError> {
    if from >= to {
        return Err(TsCmdError::EmptyRange);
    }
    let (first, last) = (from / MS_PER_DAY, (to - 1) / MS_PER_DAY);
    let days = last - first + 1;
    if days > SCAN_DAYS_MAX {
        return Err(TsCmdError::RangeTooWide(days));
    }
    let mut out = Vec::new();
    for day in first..=last {
        let mut parts = c.partition_infos(&table.name, day * MS_PER_DAY, false)?;
        parts.sort_by_key(|p| p.index);
        for p in parts {
            if out.len() >= limit {
                return Ok(out);
            }
            let (lo, hi) = (from.max(p.time_start_ms), to.min(p.time_end_ms));
            if lo >= hi {
                continue;
            }
            let dir = partition_dir(TS_DIR, &table.name, p.date, p.index);
            out.extend(read_partition(fs, &dir, lo, hi, limit - out.len())?);
        }
    }
    Ok(out)
}

fn print_table(t: &TsTableInfo, as_json: bool) {
    if as_json {
        let cols: Vec<Json> = t
            .columns
            .iter()
            .map(|c| {
                json!({"name": c.name, "type": c.column_type.name(), "index": c.index,
                            "id": c.id, "comment": c.comment})
            })
            .collect();
        println!(
            "{}",
            json!({"table": t.name, "id": t.id,
                   "partitions_per_day": t.partition_count_per_day, "columns": cols})
        );
        return;
    }
    println!(
        "table {} (id {}), {} partitions per day",
        t.name, t.id, t.partition_count_per_day
    );
    println!("INDEX\tNAME\tTYPE\tID\tCOMMENT");
    for c in &t.columns {
        println!(
            "{}\t{}\t{}\t{}\t{}",
            c.index,
            c.name,
            c.column_type.name(),
            c.id,
            c.comment
        );
    }
}

fn print_partitions(parts: &[PartitionInfo], as_json: bool) {
    if as_json {
        let all: Vec<Json> = parts
            .iter()
            .map(|p| {
                json!({"id": p.id, "date": p.date, "index": p.index, "node": p.node.0,
                "worker": p.worker_name, "ip": p.worker_ip, "port": p.worker_port,
                "status": format!("{:?}", p.worker_status),
                "start_ms": p.time_start_ms, "end_ms": p.time_end_ms})
            })
            .collect();
        println!("{}", Json::Array(all));
        return;
    }
    println!("ID\tDATE\tINDEX\tNODE\tWORKER\tADDR\tSTATUS\tSTART_MS\tEND_MS");
    for p in parts {
        println!(
            "{}\t{}\t{}\t{}\t{}\t{}:{}\t{:?}\t{}\t{}",
            p.id,
            p.date,
            p.index,
            p.node.0,
            p.worker_name,
            p.worker_ip,
            p.worker_port,
            p.worker_status,
            p.time_start_ms,
            p.time_end_ms
        );
    }
}
