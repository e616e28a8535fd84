//! The server roles on real TCP: a meta store (log and snapshot through `FsBackend` on a
//! `LocalFs`, or MySQL with `--meta-backend`), a master and tablet nodes, each one [`ClusterNode`] on its own `shale-net` host,
//! wrapped in [`Learning`] so it dials the peers the meta store's answers name. `shale dev`
//! starts all of them in one process; `shale meta|master|tabletnode` start one each.
//!
//! Node ids are fixed by role: the meta store is [`META_NODE`], the master [`MASTER_NODE`],
//! tablet nodes are numbered from [`TABLET_NODE_BASE`]. Host epochs are the start time in
//! milliseconds, so a restarted process always presents a larger one.
//!
//! Must not: contain role behaviour (the actors own it) or read flags and env (callers do).

use crate::meta_backend::MetaBackendChoice;
use crate::settings::Settings;
use shale_actors::cluster::ClusterNode;
use shale_actors::master::{Master, MasterConfig};
use shale_actors::meta::MetaStore;
use shale_actors::node::{NodeConfig, TabletNode};
use shale_actors::proto::ClusterMsg;
use shale_actors::{Addr, Epoch, NodeId};
use shale_client::peers::Learning;
use shale_client::META_NODE;
use shale_net::{ClusterId, Host, HostConfig, HostHandle};
use shale_storage::fs::{FileStore, LocalFs};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use tokio::task::JoinHandle;

pub const MASTER_NODE: NodeId = NodeId(2);
pub const TABLET_NODE_BASE: u64 = 100;
/// Tablet nodes one `shale dev` process runs at most.
pub const DEV_NODES_MAX: usize = 64;
/// Disk a tablet node offers to time-series partitions unless configured
/// (`total_disk_bytes`): a budget the placement divides, not a measurement of the disk.
pub const DEFAULT_NODE_DISK_BYTES: u64 = 100 << 30;
/// The meta store's folder inside the data folder.
pub const META_DIR: &str = "meta";

#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    #[error("cannot open the data folder {path}: {why}")]
    Data { path: String, why: String },
    #[error("cannot start the {role} on {addr}: {why}")]
    Start {
        role: String,
        addr: SocketAddr,
        why: String,
    },
    #[error(transparent)]
    MetaBackend(#[from] crate::meta_backend::MetaBackendError),
}

/// One running role.
pub struct Running {
    pub role: String,
    pub node: NodeId,
    pub addr: SocketAddr,
    pub handle: HostHandle<ClusterMsg>,
    pub task: JoinHandle<Learning<ClusterNode>>,
}

impl Running {
    /// Stop the host and wait for its loop to end.
    pub async fn stop(self) {
        self.handle.stop();
        if let Err(e) = self.task.await {
            tracing::warn!(role = %self.role, "host task ended badly: {e}");
        }
    }
}

/// What every role needs to know about its cluster.
#[derive(Clone)]
pub struct RoleEnv {
    pub cluster_id: String,
    /// The shared file store's root (tablet files, meta log, trash).
    pub fs: Arc<dyn FileStore>,
    pub meta_addr: SocketAddr,
    /// Where the meta store keeps its state (meta role only).
    pub meta_backend: MetaBackendChoice,
    /// Disk each tablet node started with this environment offers to partitions.
    pub node_disk_bytes: u64,
    /// Role settings over the actors' defaults (the config file's tables; empty for dev).
    pub settings: Settings,
}

impl RoleEnv {
    pub fn open(
        cluster_id: &str,
        data: &Path,
        meta_addr: SocketAddr,
    ) -> Result<Self, ClusterError> {
        let fs = LocalFs::new(data).map_err(|e| ClusterError::Data {
            path: data.display().to_string(),
            why: e.to_string(),
        })?;
        Ok(Self {
            cluster_id: cluster_id.into(),
            fs: Arc::new(fs),
            meta_addr,
            meta_backend: MetaBackendChoice::Embedded,
            node_disk_bytes: DEFAULT_NODE_DISK_BYTES,
            settings: Settings::default(),
        })
    }
}

fn unix_millis() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(1, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// Bind `listen`, build the actor for the bound address, run it.
async fn start_role(
    env: &RoleEnv,
    role: &str,
    node: NodeId,
    listen: SocketAddr,
    peers: BTreeMap<NodeId, SocketAddr>,
    build: impl FnOnce(SocketAddr) -> ClusterNode,
) -> Result<Running, ClusterError> {
    let mut cfg = HostConfig::new(
        ClusterId(env.cluster_id.clone()),
        node,
        Epoch(unix_millis()),
    );
    cfg.listen = Some(listen);
    cfg.peers = peers;
    let fail = |why: String| ClusterError::Start {
        role: role.into(),
        addr: listen,
        why,
    };
    let (host, handle) = Host::<Learning<ClusterNode>>::start(cfg)
        .await
        .map_err(|e| fail(e.to_string()))?;
    let addr = handle
        .local_addr()
        .ok_or_else(|| fail("the host did not report its address".into()))?;
    let actor = Learning::new(build(addr), handle.clone());
    let task = tokio::spawn(host.run(actor));
    tracing::info!(role, %node, %addr, "started");
    Ok(Running {
        role: role.into(),
        node,
        addr,
        handle,
        task,
    })
}

pub async fn start_meta(env: &RoleEnv, listen: SocketAddr) -> Result<Running, ClusterError> {
    let config = env.settings.meta_config();
    let backend = env.meta_backend.open(env.fs.clone(), META_DIR, &config)?;
    tracing::info!(backend = %env.meta_backend.describe(), "meta store backend open");
    start_role(env, "meta", META_NODE, listen, BTreeMap::new(), |_| {
        ClusterNode::Meta(MetaStore::new(config, backend))
    })
    .await
}

/// A master. `advertise` is the address clients are told (default: the bound one).
pub async fn start_master(
    env: &RoleEnv,
    node: NodeId,
    listen: SocketAddr,
    advertise: Option<String>,
    peers: BTreeMap<NodeId, SocketAddr>,
) -> Result<Running, ClusterError> {
    let mut all = peers;
    all.insert(META_NODE, env.meta_addr);
    let fs = env.fs.clone();
    start_role(env, "master", node, listen, all, |bound| {
        let addr = Addr(advertise.unwrap_or_else(|| bound.to_string()));
        let cfg = env
            .settings
            .master_config(MasterConfig::new(META_NODE, addr));
        ClusterNode::Master(Master::new(cfg, fs))
    })
    .await
}

pub async fn start_tablet_node(
    env: &RoleEnv,
    node: NodeId,
    name: &str,
    listen: SocketAddr,
    advertise: Option<String>,
) -> Result<Running, ClusterError> {
    let peers = BTreeMap::from([(META_NODE, env.meta_addr)]);
    let fs = env.fs.clone();
    let disk = env.node_disk_bytes;
    start_role(env, "tabletnode", node, listen, peers, |bound| {
        let addr = Addr(advertise.unwrap_or_else(|| bound.to_string()));
        let mut config = env
            .settings
            .node_config(NodeConfig::new(name, addr, META_NODE));
        config.total_disk_bytes = disk;
        ClusterNode::Node(TabletNode::new(config, fs))
    })
    .await
}

/// The ports a local cluster listens on.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct LocalPorts {
    pub meta: u16,
    pub master: u16,
    pub nodes: Vec<u16>,
}

impl LocalPorts {
    /// `base`, `base + 1`, then one per node; all 0 (the OS chooses) when `base` is 0.
    pub fn from_base(base: u16, nodes: usize) -> Self {
        let at = |i: usize| {
            if base == 0 {
                0
            } else {
                base.saturating_add(u16::try_from(i).unwrap_or(u16::MAX))
            }
        };
        Self {
            meta: at(0),
            master: at(1),
            nodes: (0..nodes).map(|i| at(i + 2)).collect(),
        }
    }
}

/// A meta store, a master and tablet nodes in this process on 127.0.0.1.
pub struct LocalCluster {
    pub meta: Running,
    pub master: Running,
    pub nodes: Vec<Running>,
}

impl LocalCluster {
    pub async fn start(
        cluster_id: &str,
        data: &Path,
        ports: &LocalPorts,
    ) -> Result<Self, ClusterError> {
        Self::start_with(cluster_id, data, ports, MetaBackendChoice::Embedded).await
    }

    /// Like [`LocalCluster::start`], with the meta store on `meta_backend`.
    pub async fn start_with(
        cluster_id: &str,
        data: &Path,
        ports: &LocalPorts,
        meta_backend: MetaBackendChoice,
    ) -> Result<Self, ClusterError> {
        let loopback = |port: u16| SocketAddr::from(([127, 0, 0, 1], port));
        let mut probe = RoleEnv::open(cluster_id, data, loopback(ports.meta))?;
        probe.meta_backend = meta_backend;
        let meta = start_meta(&probe, loopback(ports.meta)).await?;
        let env = RoleEnv {
            meta_addr: meta.addr,
            ..probe
        };
        let mut nodes = Vec::new();
        for (i, port) in ports.nodes.iter().enumerate() {
            let id = NodeId(TABLET_NODE_BASE + i as u64);
            let name = format!("node-{i}");
            nodes.push(start_tablet_node(&env, id, &name, loopback(*port), None).await?);
        }
        let peers = nodes.iter().map(|n| (n.node, n.addr)).collect();
        let master = start_master(&env, MASTER_NODE, loopback(ports.master), None, peers).await?;
        Ok(Self {
            meta,
            master,
            nodes,
        })
    }

    /// The ports actually bound (what a restart must reuse).
    pub fn ports(&self) -> LocalPorts {
        LocalPorts {
            meta: self.meta.addr.port(),
            master: self.master.addr.port(),
            nodes: self.nodes.iter().map(|n| n.addr.port()).collect(),
        }
    }

    pub async fn stop(self) {
        for n in self.nodes {
            n.stop().await;
        }
        self.master.stop().await;
        self.meta.stop().await;
    }
}
