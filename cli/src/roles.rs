//! `shale meta|master|tabletnode`: one role per process, configured by a TOML file whose keys
//! flags and env override (documented in docs/operations.md). Runs until Ctrl-C. The file's
//! `[metastore]`, `[master]` and `[tabletnode]` tables tune the roles (`settings.rs`).
//!
//! Must not: contain role behaviour (`cluster.rs` starts the actors).

use crate::args::RoleArgs;
use crate::cluster::{self, ClusterError, RoleEnv, MASTER_NODE, TABLET_NODE_BASE};
use crate::meta_backend::MetaBackendChoice;
use crate::settings::{MasterSettings, MetaSettings, NodeSettings, Settings, SettingsError};
use serde::Deserialize;
use shale_actors::NodeId;
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::PathBuf;

/// The config file. Every key is optional; a flag or env variable wins over it.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoleFile {
    pub cluster_id: Option<String>,
    pub data: Option<PathBuf>,
    pub listen: Option<String>,
    pub advertise: Option<String>,
    pub meta: Option<String>,
    pub node_id: Option<u64>,
    pub name: Option<String>,
    /// Meta role: `embedded` (default) or `mysql://user:pass@host:port/db`.
    pub meta_backend: Option<String>,
    /// Tablet node: disk offered to time-series partitions.
    pub total_disk_bytes: Option<u64>,
    pub metastore: Option<MetaSettings>,
    pub master: Option<MasterSettings>,
    pub tabletnode: Option<NodeSettings>,
}

#[derive(Clone, Copy, Debug)]
pub enum Role {
    Meta,
    Master,
    TabletNode,
}

#[derive(Debug, thiserror::Error)]
pub enum RoleError {
    #[error("cannot read {path}: {why}")]
    Config { path: String, why: String },
    #[error("{0}")]
    Missing(String),
    #[error("bad address {0:?}: {1}")]
    Address(String, String),
    #[error("bad settings: {0}")]
    Settings(#[from] SettingsError),
    #[error(transparent)]
    Cluster(#[from] ClusterError),
    #[error("cannot start the runtime: {0}")]
    Runtime(std::io::Error),
}

fn resolve(addr: &str) -> Result<SocketAddr, RoleError> {
    addr.to_socket_addrs()
        .map_err(|e| RoleError::Address(addr.into(), e.to_string()))?
        .next()
        .ok_or_else(|| RoleError::Address(addr.into(), "resolves to nothing".into()))
}

/// Flags and env over the file.
fn merged(args: RoleArgs) -> Result<RoleFile, RoleError> {
    let file = match &args.config {
        None => RoleFile::default(),
        Some(path) => {
            let err = |why: String| RoleError::Config {
                path: path.display().to_string(),
                why,
            };
            let text = std::fs::read_to_string(path).map_err(|e| err(e.to_string()))?;
            toml::from_str(&text).map_err(|e| err(e.to_string()))?
        }
    };
    Ok(RoleFile {
        cluster_id: args.cluster_id.or(file.cluster_id),
        data: args.data.or(file.data),
        listen: args.listen.or(file.listen),
        advertise: args.advertise.or(file.advertise),
        meta: args.meta.or(file.meta),
        node_id: args.node_id.or(file.node_id),
        name: args.name.or(file.name),
        meta_backend: args.meta_backend.or(file.meta_backend),
        total_disk_bytes: args.total_disk_bytes.or(file.total_disk_bytes),
        metastore: file.metastore,
        master: file.master,
        tabletnode: file.tabletnode,
    })
}

pub fn run(role: Role, args: RoleArgs) -> Result<(), RoleError> {
    let mut cfg = merged(args)?;
    let settings = Settings {
        metastore: cfg.metastore.take().unwrap_or_default(),
        master: cfg.master.take().unwrap_or_default(),
        tabletnode: cfg.tabletnode.take().unwrap_or_default(),
    };
    settings.check()?;
    let cluster_id = cfg
        .cluster_id
        .clone()
        .unwrap_or_else(|| shale_client::DEFAULT_CLUSTER_ID.into());
    let data = cfg
        .data
        .clone()
        .unwrap_or_else(|| PathBuf::from("./shale-data"));
    let listen = resolve(cfg.listen.as_deref().unwrap_or(match role {
        Role::Meta => "127.0.0.1:7100",
        Role::Master => "127.0.0.1:7101",
        Role::TabletNode => "127.0.0.1:0",
    }))?;
    let meta_addr = match role {
        Role::Meta => listen,
        _ => resolve(cfg.meta.as_deref().ok_or_else(|| {
            RoleError::Missing(
                "the meta store's address is needed: `meta` in the config, --meta or SHALE_META"
                    .into(),
            )
        })?)?,
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(RoleError::Runtime)?;
    rt.block_on(async {
        let mut env = RoleEnv::open(&cluster_id, &data, meta_addr)?;
        env.settings = settings;
        env.meta_backend = MetaBackendChoice::parse(cfg.meta_backend.as_deref().unwrap_or(""))
            .map_err(ClusterError::from)?;
        if let Some(disk) = cfg.total_disk_bytes {
            env.node_disk_bytes = disk;
        }
        let running = match role {
            Role::Meta => cluster::start_meta(&env, listen).await?,
            Role::Master => {
                let node = NodeId(cfg.node_id.unwrap_or(MASTER_NODE.0));
                cluster::start_master(&env, node, listen, cfg.advertise.clone(), Default::default())
                    .await?
            }
            Role::TabletNode => {
                let id = cfg.node_id.ok_or_else(|| {
                    RoleError::Missing(format!(
                        "a tablet node needs `node_id` (>= {TABLET_NODE_BASE}) in the config, --node-id or SHALE_NODE_ID"
                    ))
                })?;
                if id < TABLET_NODE_BASE {
                    return Err(RoleError::Missing(format!(
                        "tablet node ids start at {TABLET_NODE_BASE}; {id} is reserved"
                    )));
                }
                let name = cfg.name.clone().unwrap_or_else(|| format!("node-{id}"));
                cluster::start_tablet_node(&env, NodeId(id), &name, listen, cfg.advertise.clone())
                    .await?
            }
        };
        println!("{} listening on {}", running.role, running.addr);
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::error!("cannot wait for Ctrl-C ({e}); stopping");
        }
        running.stop().await;
        Ok(())
    })
}
