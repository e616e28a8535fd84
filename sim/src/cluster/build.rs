//! Building the executor for a cluster: one factory per process (so a restart builds a fresh
//! incarnation over the same durable state) and the crash hooks that say what a crash loses.
//!
//! Owns: node ids to roles, factories, crash hooks. Must not: run the simulation or check
//! anything (the runner does).

use super::disk::{DiskControl, NodeDisk};
use super::{client_id, master_id, node_id, ClusterConfig, ADMIN, META};
use crate::Sim;
use crate::{SimConfig, SimError};
use shale_actors::client::{ClientConfig, ClientRole};
use shale_actors::cluster::ClusterNode;
use shale_actors::master::Master;
use shale_actors::meta::{MemBackend, MetaStore};
use shale_actors::node::TabletNode;
use shale_actors::Addr;
use shale_storage::fs::{SimFs, SimFsConfig};
use std::collections::BTreeMap;
use std::sync::Arc;

/// Completions a client keeps; the runner drains them as they come, so this only bounds a
/// runaway.
const CLIENT_HISTORY_LEN_MAX: usize = 1 << 20;

pub(super) struct Built {
    pub sim: Sim<ClusterNode>,
    pub fs: SimFs,
    pub meta_disk: MemBackend,
    pub disks: BTreeMap<shale_actors::NodeId, DiskControl>,
}

pub(super) fn build(cfg: &ClusterConfig) -> Result<Built, SimError> {
    let mut sc = SimConfig::new(cfg.seed).with_net(cfg.net.clone());
    if cfg.buggify {
        sc = sc.with_buggify();
    }
    if cfg.trace_lines {
        sc = sc.with_trace_lines();
        // A trace is asked for in full: never truncate it.
        sc.trace.lines_max = usize::MAX;
    }
    let mut sim: Sim<ClusterNode> = Sim::new(sc)?;
    let fs = SimFs::new(SimFsConfig {
        seed: cfg.seed,
        ..SimFsConfig::default()
    });
    let meta_disk = MemBackend::new();
    let mut disks = BTreeMap::new();
    // Each master and tablet node reaches the shared store through its own faultable view.
    let mut disk_of = |id| {
        let control = DiskControl::new(cfg.seed, id);
        disks.insert(id, control.clone());
        NodeDisk {
            fs: fs.clone(),
            control,
        }
    };

    let (mc, disk) = (cfg.meta.clone(), meta_disk.clone());
    sim.add_node(META, move |_| {
        ClusterNode::Meta(MetaStore::new(mc.clone(), Arc::new(disk.clone())))
    })?;
    // The meta store's disk forgets what it never synced (and so never acknowledged).
    let disk = meta_disk.clone();
    sim.set_crash_hook(META, move |_, _| disk.crash())?;

    for i in 0..cfg.shape.masters {
        let mut mcfg = cfg.master.clone();
        mcfg.addr = Addr(format!("master{i}"));
        let disk = disk_of(master_id(i));
        sim.add_node(master_id(i), move |_| {
            ClusterNode::Master(Master::new(mcfg.clone(), Arc::new(disk.clone())))
        })?;
    }
    for i in 0..cfg.shape.nodes {
        let mut ncfg = cfg.node.clone();
        ncfg.name = format!("node{i}");
        ncfg.addr = Addr(format!("10.0.0.{}:7000", i + 1));
        let disk = disk_of(node_id(i));
        // A tablet node crash is a process crash: the shared store keeps what it was handed.
        sim.add_node(node_id(i), move |_| {
            ClusterNode::Node(TabletNode::new(ncfg.clone(), Arc::new(disk.clone())))
        })?;
    }
    let client = |_| {
        ClusterNode::Client(ClientRole::new(
            ClientConfig::new(META),
            CLIENT_HISTORY_LEN_MAX,
        ))
    };
    sim.add_node(ADMIN, client)?;
    for i in 0..cfg.shape.clients {
        sim.add_node(client_id(i), client)?;
    }
    Ok(Built {
        sim,
        fs,
        meta_disk,
        disks,
    })
}
