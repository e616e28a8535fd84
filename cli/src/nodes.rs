//! `shale node list`: the master's view of tablet nodes (tablets served, bytes) joined with
//! the meta store's registry (status, total, used and free disk).
//!
//! Must not: talk to the cluster other than through `shale-client`.

use crate::commands::CmdError;
use serde_json::{json, Value};
use shale_client::catalog::NodeInfo as Registered;
use shale_client::{BlockingClient, NodeInfo};
use std::collections::BTreeMap;

fn disk(v: Option<u64>) -> String {
    v.map_or_else(|| "-".into(), |b| b.to_string())
}

pub fn list(c: &BlockingClient, as_json: bool) -> Result<(), CmdError> {
    let served: BTreeMap<_, NodeInfo> = c.list_nodes()?.into_iter().map(|n| (n.id, n)).collect();
    let registered = c.registered_nodes()?;
    if as_json {
        let all: Vec<Value> = registered
            .iter()
            .map(|r| node_json(r, served.get(&r.id)))
            .collect();
        println!("{}", Value::Array(all));
        return Ok(());
    }
    println!("ID\tNAME\tADDR\tSTATUS\tTABLETS\tBYTES\tTOTAL_DISK\tUSED_DISK\tFREE_DISK");
    for r in &registered {
        let s = served.get(&r.id);
        println!(
            "{}\t{}\t{}:{}\t{:?}\t{}\t{}\t{}\t{}\t{}",
            r.id.0,
            r.name,
            r.ip,
            r.port,
            r.status,
            s.map_or_else(|| "-".into(), |s| s.tablets.to_string()),
            disk(s.map(|s| s.size_bytes)),
            r.total_disk_bytes,
            disk(r.used_disk_bytes),
            r.free_disk_bytes
        );
    }
    Ok(())
}

fn node_json(r: &Registered, s: Option<&NodeInfo>) -> Value {
    json!({
        "id": r.id.0,
        "name": r.name,
        "addr": format!("{}:{}", r.ip, r.port),
        "status": format!("{:?}", r.status),
        "epoch": s.map(|s| s.epoch.0),
        "tablets": s.map(|s| s.tablets),
        "size_bytes": s.map(|s| s.size_bytes),
        "total_disk_bytes": r.total_disk_bytes,
        "used_disk_bytes": r.used_disk_bytes,
        "free_disk_bytes": r.free_disk_bytes,
        "storage_reports": r.storage_history.len(),
    })
}
