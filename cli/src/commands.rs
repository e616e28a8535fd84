//! The client commands: parse the arguments into client calls, print the answers (text or
//! `--json`). Every failure becomes one [`CmdError`] line and a non-zero exit in `main.rs`.
//!
//! Must not: talk to the cluster other than through `shale-client`.

use crate::args::{Command, Conn, NodeCmd, TableCmd, TabletCmd};
use serde_json::{json, Value};
use shale_actors::proto::limits::InputError;
use shale_client::{
    BlockingClient, ClientOptions, ColumnSpec, DeleteTarget, FamilyDesc, NodeId, ReadFilter,
    RowOut, ScanOptions, Schema, TableInfo, TabletId, TabletInfo,
};
use std::net::{SocketAddr, ToSocketAddrs};
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum CmdError {
    #[error("{0}")]
    Client(#[from] shale_client::Error),
    #[error("bad --cluster address {0:?}: {1}")]
    Address(String, String),
    #[error("bad argument: {0}")]
    Arg(String),
    #[error("cannot read {path}: {why}")]
    ValueFile { path: String, why: String },
}

/// A value read from `path`. A file larger than the client accepts gets the client's own
/// typed error, decided from its length before reading, so a huge file is never loaded.
fn value_from_file(path: &std::path::Path, max: usize) -> Result<Vec<u8>, CmdError> {
    use std::io::Read;
    let io = |e: std::io::Error| CmdError::ValueFile {
        path: path.display().to_string(),
        why: e.to_string(),
    };
    let file = std::fs::File::open(path).map_err(io)?;
    let len = file.metadata().map_err(io)?.len();
    let max64 = u64::try_from(max).unwrap_or(u64::MAX);
    if len > max64 {
        let len = usize::try_from(len).unwrap_or(usize::MAX);
        return Err(shale_client::Error::Invalid(InputError::ValueTooLarge { len, max }).into());
    }
    let mut value = Vec::with_capacity(usize::try_from(len).unwrap_or(0));
    // One byte past the limit: a file that grew since is then refused by the client's check.
    file.take(max64.saturating_add(1))
        .read_to_end(&mut value)
        .map_err(io)?;
    Ok(value)
}

/// Locality group every family created from the command line goes in.
const DEFAULT_LOCALITY_GROUP: &str = "default";

fn resolve(addr: &str) -> Result<SocketAddr, CmdError> {
    let mut all = addr
        .to_socket_addrs()
        .map_err(|e| CmdError::Address(addr.into(), e.to_string()))?;
    all.next()
        .ok_or_else(|| CmdError::Address(addr.into(), "resolves to nothing".into()))
}

pub(crate) fn connect(conn: &Conn) -> Result<BlockingClient, CmdError> {
    let mut opts = ClientOptions::new(resolve(&conn.cluster)?);
    opts.op_timeout = Duration::from_secs(conn.timeout_secs.max(1));
    Ok(BlockingClient::connect(opts)?)
}

/// `FAMILY:QUALIFIER` (or just `FAMILY` when `family_only_ok`).
fn column(spec: &str, family_only_ok: bool) -> Result<(String, Option<Vec<u8>>), CmdError> {
    match spec.split_once(':') {
        Some((f, q)) => Ok((f.to_string(), Some(q.as_bytes().to_vec()))),
        None if family_only_ok => Ok((spec.to_string(), None)),
        None => Err(CmdError::Arg(format!(
            "column {spec:?} must be FAMILY:QUALIFIER"
        ))),
    }
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn row_json(r: &RowOut) -> Value {
    json!({
        "row": text(&r.row),
        "cells": r.cells.iter().map(|c| json!({
            "family": c.family,
            "qualifier": text(&c.qualifier),
            "ts": c.ts,
            "value": text(&c.value),
        })).collect::<Vec<_>>(),
    })
}

fn print_rows(rows: &[RowOut], as_json: bool) {
    if as_json {
        println!("{}", Value::Array(rows.iter().map(row_json).collect()));
        return;
    }
    for r in rows {
        for c in &r.cells {
            println!(
                "{}\t{}:{}\t{}\t{}",
                text(&r.row),
                c.family,
                text(&c.qualifier),
                c.ts,
                text(&c.value)
            );
        }
    }
}

fn table_json(t: &TableInfo) -> Value {
    json!({
        "name": t.name,
        "status": format!("{:?}", t.status),
        "tablets": t.tablets,
        "families": t.schema.families.iter().map(|f| json!({
            "name": f.name,
            "max_versions": f.max_versions,
            "ttl_secs": f.ttl_secs,
        })).collect::<Vec<_>>(),
    })
}

fn tablet_json(t: &TabletInfo) -> Value {
    json!({
        "id": t.id.0,
        "table": t.table,
        "start": text(&t.start),
        "end": text(&t.end),
        "status": format!("{:?}", t.status),
        "node": t.node.map(|n| n.0),
        "size_bytes": t.size_bytes,
        "version": t.version,
    })
}

fn print_tablets(ts: &[TabletInfo], as_json: bool) {
    if as_json {
        println!("{}", Value::Array(ts.iter().map(tablet_json).collect()));
        return;
    }
    println!("ID\tTABLE\tSTART\tEND\tSTATUS\tNODE\tBYTES");
    for t in ts {
        let node = t.node.map_or("-".to_string(), |n| n.0.to_string());
        println!(
            "{}\t{}\t{:?}\t{:?}\t{:?}\t{}\t{}",
            t.id.0,
            t.table,
            text(&t.start),
            text(&t.end),
            t.status,
            node,
            t.size_bytes
        );
    }
}

fn done(what: String, as_json: bool) {
    if as_json {
        println!("{}", json!({ "ok": true, "done": what }));
    } else {
        println!("{what}");
    }
}

fn started(what: String, procedure: u64, as_json: bool) {
    if as_json {
        println!(
            "{}",
            json!({ "ok": true, "done": what, "procedure": procedure })
        );
    } else {
        println!("{what} (procedure {procedure})");
    }
}

/// Run one client command. `cmd` must be one of the client commands.
pub fn run(cmd: Command) -> Result<(), CmdError> {
    match cmd {
        Command::Table { cmd, conn } => table(cmd, &conn),
        Command::Put {
            table,
            row,
            column: col,
            value,
            value_file,
            conn,
        } => {
            let (family, q) = column(&col, false)?;
            let q = q.unwrap_or_default();
            let client = connect(&conn)?;
            let value = match (value, value_file) {
                (_, Some(path)) => {
                    value_from_file(&path, client.inner().options().core.value_bytes_max)?
                }
                (Some(v), None) => v.into_bytes(),
                // clap requires one of the two.
                (None, None) => return Err(CmdError::Arg("a value or --value-file".into())),
            };
            client.put(&table, row.as_bytes(), &family, &q, &value)?;
            done(format!("put {row} {col}"), conn.json);
            Ok(())
        }
        Command::Get {
            table,
            row,
            column: cols,
            versions,
            conn,
        } => {
            let mut filter = ReadFilter {
                max_versions: versions,
                ..ReadFilter::default()
            };
            for c in &cols {
                let (family, qualifier) = column(c, true)?;
                filter.columns.push(ColumnSpec { family, qualifier });
            }
            let got = connect(&conn)?.get(&table, row.as_bytes(), filter)?;
            match (got, conn.json) {
                (Some(r), j) => print_rows(&[r], j),
                (None, true) => println!("null"),
                (None, false) => println!("(no such row)"),
            }
            Ok(())
        }
        Command::Delete {
            table,
            row,
            target,
            conn,
        } => {
            let what = match target.as_deref() {
                None => DeleteTarget::Row,
                Some(t) => match column(t, true)? {
                    (family, None) => DeleteTarget::Family(family),
                    (family, Some(qualifier)) => DeleteTarget::Column { family, qualifier },
                },
            };
            connect(&conn)?.delete(&table, row.as_bytes(), what)?;
            done(format!("deleted {row}"), conn.json);
            Ok(())
        }
        Command::Scan {
            table,
            start,
            end,
            limit,
            reverse,
            conn,
        } => {
            let scan = ScanOptions {
                start: start.into_bytes(),
                end: end.into_bytes(),
                reverse,
                limit,
                filter: ReadFilter::default(),
            };
            let rows = connect(&conn)?.scan(&table, scan)?;
            print_rows(&rows, conn.json);
            Ok(())
        }
        Command::Tablet { cmd, conn } => tablet(cmd, &conn),
        Command::Node {
            cmd: NodeCmd::List,
            conn,
        } => crate::nodes::list(&connect(&conn)?, conn.json),
        Command::Status { conn } => {
            let s = connect(&conn)?.status()?;
            if conn.json {
                println!(
                    "{}",
                    json!({
                        "master": s.master.0, "term": s.term,
                        "nodes_up": s.nodes_up, "nodes_down": s.nodes_down,
                        "tables": s.tables, "tablets": s.tablets,
                        "tablets_ready": s.tablets_ready,
                        "procedures_running": s.procedures_running,
                    })
                );
            } else {
                println!(
                    "master {} (term {}); nodes {} up, {} down; {} tables; tablets {}/{} ready; {} procedures running",
                    s.master.0, s.term, s.nodes_up, s.nodes_down, s.tables,
                    s.tablets_ready, s.tablets, s.procedures_running
                );
            }
            Ok(())
        }
        other => Err(CmdError::Arg(format!("not a client command: {other:?}"))),
    }
}

fn table(cmd: TableCmd, conn: &Conn) -> Result<(), CmdError> {
    let c = connect(conn)?;
    match cmd {
        TableCmd::Create {
            name,
            family,
            split,
            max_versions,
            ttl,
        } => {
            let schema = Schema {
                families: family
                    .iter()
                    .map(|f| FamilyDesc {
                        name: f.trim().to_string(),
                        locality_group: DEFAULT_LOCALITY_GROUP.into(),
                        max_versions,
                        min_versions: 0,
                        ttl_secs: ttl,
                    })
                    .collect(),
            };
            let splits = split.into_iter().map(String::into_bytes).collect();
            c.create_table(&name, schema, splits)?;
            done(format!("created table {name}"), conn.json);
        }
        TableCmd::List => {
            let tables = c.list_tables()?;
            if conn.json {
                println!("{}", Value::Array(tables.iter().map(table_json).collect()));
            } else {
                println!("NAME\tSTATUS\tTABLETS\tFAMILIES");
                for t in &tables {
                    let fams: Vec<&str> =
                        t.schema.families.iter().map(|f| f.name.as_str()).collect();
                    println!(
                        "{}\t{:?}\t{}\t{}",
                        t.name,
                        t.status,
                        t.tablets,
                        fams.join(",")
                    );
                }
            }
        }
        TableCmd::Describe { name } => {
            let (t, tablets) = c.describe_table(&name)?;
            if conn.json {
                let mut v = table_json(&t);
                v["tablet_list"] = Value::Array(tablets.iter().map(tablet_json).collect());
                println!("{v}");
            } else {
                println!("table {} ({:?}), {} tablets", t.name, t.status, t.tablets);
                for f in &t.schema.families {
                    println!(
                        "  family {}: max_versions {}, ttl {} s",
                        f.name, f.max_versions, f.ttl_secs
                    );
                }
                print_tablets(&tablets, false);
            }
        }
        TableCmd::Disable { name } => {
            c.disable_table(&name)?;
            done(format!("disabled table {name}"), conn.json);
        }
        TableCmd::Enable { name } => {
            c.enable_table(&name)?;
            done(format!("enabled table {name}"), conn.json);
        }
        TableCmd::Drop { name } => {
            c.drop_table(&name)?;
            done(format!("dropped table {name}"), conn.json);
        }
    }
    Ok(())
}

fn tablet(cmd: TabletCmd, conn: &Conn) -> Result<(), CmdError> {
    let c = connect(conn)?;
    match cmd {
        TabletCmd::List { table } => print_tablets(&c.list_tablets(table.as_deref())?, conn.json),
        TabletCmd::Split { id, key } => {
            let p = c.split_tablet(TabletId(id), key.map(String::into_bytes))?;
            started(format!("splitting tablet {id}"), p, conn.json);
        }
        TabletCmd::Merge { a, b } => {
            let p = c.merge_tablets(TabletId(a), TabletId(b))?;
            started(format!("merging tablets {a} and {b}"), p, conn.json);
        }
        TabletCmd::Move { id, node } => {
            let target = match node.parse::<u64>() {
                Ok(n) => NodeId(n),
                Err(_) => c
                    .list_nodes()?
                    .into_iter()
                    .find(|n| n.name == node)
                    .map(|n| n.id)
                    .ok_or_else(|| CmdError::Arg(format!("no node named {node:?}")))?,
            };
            let p = c.move_tablet(TabletId(id), target)?;
            started(
                format!("moving tablet {id} to node {}", target.0),
                p,
                conn.json,
            );
        }
    }
    Ok(())
}
