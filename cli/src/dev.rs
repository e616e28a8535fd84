//! `shale dev`: a meta store, a master and N tablet nodes in one process on loopback TCP, all
//! data under one folder, until Ctrl-C (or `--duration-secs`). Restarting on the same folder
//! brings every table back: the meta store replays its log, nodes reload their tablets.
//!
//! The ports are saved in `<data>/ports.toml` on first start and reused on every restart, so
//! clients and the meta store's node records stay valid across restarts.
//!
//! Must not: contain actor logic (see `cluster.rs` for the roles).

use crate::cluster::{ClusterError, LocalCluster, LocalPorts, DEV_NODES_MAX};
use crate::meta_backend::MetaBackendChoice;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The ports file inside the data folder.
pub const PORTS_FILE: &str = "ports.toml";
/// Where `shale dev` listens by default: the meta store on this port, the master on the next,
/// then one port per node. `--cluster` defaults to the meta store's address.
pub const DEFAULT_BASE_PORT: u16 = 7100;

pub struct DevOptions {
    pub data: PathBuf,
    pub nodes: usize,
    pub base_port: u16,
    pub run_for: Option<Duration>,
    pub cluster_id: String,
    pub meta_backend: String,
}

#[derive(Debug, thiserror::Error)]
pub enum DevError {
    #[error("--nodes must be between 1 and {DEV_NODES_MAX}, not {0}")]
    Nodes(usize),
    #[error("cannot use {path}: {why}")]
    Ports { path: String, why: String },
    #[error(transparent)]
    Cluster(#[from] ClusterError),
    #[error("cannot start the runtime: {0}")]
    Runtime(std::io::Error),
}

fn ports_error(path: &Path, why: impl ToString) -> DevError {
    DevError::Ports {
        path: path.display().to_string(),
        why: why.to_string(),
    }
}

/// The saved ports, extended or cut to `nodes`; or the ones from `base` on a first start.
fn load_ports(data: &Path, nodes: usize, base: u16) -> Result<LocalPorts, DevError> {
    let path = data.join(PORTS_FILE);
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Ok(LocalPorts::from_base(base, nodes))
        }
        Err(e) => return Err(ports_error(&path, e)),
    };
    let mut ports: LocalPorts = toml::from_str(&text).map_err(|e| ports_error(&path, e))?;
    // New nodes get a free port; removed ones simply do not start.
    ports.nodes.resize(nodes, 0);
    Ok(ports)
}

fn save_ports(data: &Path, ports: &LocalPorts) -> Result<(), DevError> {
    let path = data.join(PORTS_FILE);
    let text = toml::to_string(ports).map_err(|e| ports_error(&path, e))?;
    let tmp = data.join(format!("{PORTS_FILE}.tmp"));
    std::fs::write(&tmp, text).map_err(|e| ports_error(&tmp, e))?;
    std::fs::rename(&tmp, &path).map_err(|e| ports_error(&path, e))
}

pub fn run(opts: DevOptions) -> Result<(), DevError> {
    if opts.nodes == 0 || opts.nodes > DEV_NODES_MAX {
        return Err(DevError::Nodes(opts.nodes));
    }
    std::fs::create_dir_all(&opts.data).map_err(|e| ports_error(&opts.data, e))?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(DevError::Runtime)?;
    rt.block_on(async {
        let ports = load_ports(&opts.data, opts.nodes, opts.base_port)?;
        let backend = MetaBackendChoice::parse(&opts.meta_backend).map_err(ClusterError::from)?;
        let cluster =
            LocalCluster::start_with(&opts.cluster_id, &opts.data, &ports, backend).await?;
        save_ports(&opts.data, &cluster.ports())?;
        println!(
            "shale dev: meta store at {} (master {}, {} tablet nodes), data in {}; Ctrl-C stops",
            cluster.meta.addr,
            cluster.master.addr,
            cluster.nodes.len(),
            opts.data.display()
        );
        println!("meta address: {}", cluster.meta.addr);
        // Best effort: a closed stdout must not stop the cluster.
        let _ = std::io::stdout().flush();
        match opts.run_for {
            Some(d) => tokio::time::sleep(d).await,
            None => {
                if let Err(e) = tokio::signal::ctrl_c().await {
                    tracing::error!("cannot wait for Ctrl-C ({e}); stopping");
                }
            }
        }
        tracing::info!("stopping the local cluster");
        cluster.stop().await;
        Ok(())
    })
}
