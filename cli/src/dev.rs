//! `shale dev`: a local cluster in one process, on loopback TCP, with data under one folder.
//!
//! Today the cluster is the ping/pong demo of `shale-net` (the real meta store, master and
//! tablet nodes replace it as they land); it proves the async host, framing, handshake and
//! reconnect on real sockets. Must not: contain actor logic.

use shale_net::demo::{run_local_cluster_blocking, LocalClusterConfig, LOCAL_CLUSTER_NODES_MAX};
use std::path::PathBuf;
use std::time::Duration;

pub struct DevOptions {
    pub data: PathBuf,
    pub nodes: usize,
    pub base_port: u16,
    pub run_for: Option<Duration>,
    pub seed: Option<u64>,
}

#[derive(Debug, thiserror::Error)]
pub enum DevError {
    #[error("cannot create the data folder {path}: {source}")]
    DataDir {
        path: String,
        source: std::io::Error,
    },
    #[error(transparent)]
    Demo(#[from] shale_net::demo::DemoError),
}

pub fn run(opts: DevOptions) -> Result<(), DevError> {
    if opts.nodes == 0 || opts.nodes > LOCAL_CLUSTER_NODES_MAX {
        return Err(shale_net::demo::DemoError::Nodes(opts.nodes).into());
    }
    std::fs::create_dir_all(&opts.data).map_err(|source| DevError::DataDir {
        path: opts.data.display().to_string(),
        source,
    })?;
    println!(
        "shale dev: {} demo nodes on 127.0.0.1 (data folder {}); Ctrl-C stops",
        opts.nodes,
        opts.data.display()
    );
    let cfg = LocalClusterConfig {
        nodes: opts.nodes,
        base_port: opts.base_port,
        run_for: opts.run_for,
        seed: opts.seed,
        ..LocalClusterConfig::default()
    };
    let report = run_local_cluster_blocking(cfg)?;
    for (node, peers) in &report {
        for (peer, stats) in peers {
            let rtt = stats
                .rtt_mean()
                .map_or_else(|| "-".to_string(), |d| format!("{d:?}"));
            println!(
                "{node} -> {peer}: {} pings sent, {} pongs received, mean rtt {rtt}",
                stats.pings_sent, stats.pongs_received
            );
        }
    }
    Ok(())
}
