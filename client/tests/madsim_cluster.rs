//! A small Shale cluster on the real async host inside madsim's simulated network and clock
//! (issue 5, item 7): a meta store, a master and three tablet nodes, each a `ClusterNode`
//! wrapped in `Learning` on its own `shale-net` host and simulated machine (as `shale dev`
//! wires them over TCP), and a `ShaleClient` on a fifth machine. Rows acknowledged before the
//! faults — a tablet node killed, a clogged link between another node and the meta store, the
//! killed node restarted as a new incarnation — must all read back afterwards, and every
//! tablet must come back Ready.
//!
//! Run with: `RUSTFLAGS="--cfg madsim" cargo test -p shale-client --test madsim_cluster`
//! (use a separate CARGO_TARGET_DIR: the cfg rebuilds everything).
#![cfg(madsim)]
#![allow(clippy::expect_used)]

use madsim::net::NetSim;
use madsim::runtime::Handle;
use shale_actors::cluster::ClusterNode;
use shale_actors::master::{Master, MasterConfig};
use shale_actors::meta::{MemBackend, MetaConfig, MetaStore};
use shale_actors::node::{NodeConfig, TabletNode};
use shale_actors::{Addr, Epoch, NodeId};
use shale_client::peers::Learning;
use shale_client::{
    ClientOptions, FamilyDesc, ReadFilter, Schema, ShaleClient, TabletStatus, DEFAULT_CLUSTER_ID,
    META_NODE,
};
use shale_net::{ClusterId, Host, HostConfig};
use shale_storage::fs::{FileStore, SimFs, SimFsConfig};
use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

const PORT: u16 = 7000;
const MASTER_NODE: NodeId = NodeId(2);
const TABLET_NODES: u64 = 3;
const ROWS: usize = 60;
const TABLE: &str = "t";

fn addr(last: u8) -> SocketAddr {
    SocketAddr::new(IpAddr::V4(Ipv4Addr::new(10, 0, 0, last)), PORT)
}
const META_IP: u8 = 1;
const MASTER_IP: u8 = 2;
const CLIENT_IP: u8 = 99;
fn node_id(i: u64) -> NodeId {
    NodeId(100 + i)
}
fn node_ip(i: u64) -> u8 {
    10 + i as u8
}

/// Run one role until its machine is killed: the same wiring as `shale dev` (a `Learning`
/// wrapper dials the peers the meta store's answers name).
async fn run_role(
    me: NodeId,
    ip: u8,
    epoch: u64,
    peers: BTreeMap<NodeId, SocketAddr>,
    actor: ClusterNode,
) {
    let mut cfg = HostConfig::new(ClusterId(DEFAULT_CLUSTER_ID.into()), me, Epoch(epoch));
    cfg.listen = Some(addr(ip));
    cfg.peers = peers;
    cfg.rng_seed = Some(me.0 ^ (epoch << 32));
    let (host, handle) = Host::<Learning<ClusterNode>>::start(cfg)
        .await
        .unwrap_or_else(|e| panic!("{me} did not start: {e}"));
    host.run(Learning::new(actor, handle)).await;
}

fn row(i: usize) -> Vec<u8> {
    format!("k{i:04}").into_bytes()
}

#[madsim::test]
async fn acknowledged_writes_survive_kill_clog_and_restart() {
    let handle = Handle::current();
    // Durable state outlives every incarnation: the shared file store and the meta log.
    let fs: Arc<dyn FileStore> = Arc::new(SimFs::new(SimFsConfig::default()));
    let meta_disk = MemBackend::new();
    let meta_peers = || BTreeMap::from([(META_NODE, addr(META_IP))]);

    let disk = meta_disk.clone();
    let meta = handle
        .create_node()
        .name("meta")
        .ip(addr(META_IP).ip())
        .init(move || {
            let store = MetaStore::new(MetaConfig::default(), Arc::new(disk.clone()));
            run_role(
                META_NODE,
                META_IP,
                1,
                BTreeMap::new(),
                ClusterNode::Meta(store),
            )
        })
        .build();
    let master_fs = fs.clone();
    handle
        .create_node()
        .name("master")
        .ip(addr(MASTER_IP).ip())
        .init(move || {
            let cfg = MasterConfig::new(META_NODE, Addr(addr(MASTER_IP).to_string()));
            let m = Master::new(cfg, master_fs.clone());
            run_role(
                MASTER_NODE,
                MASTER_IP,
                1,
                meta_peers(),
                ClusterNode::Master(m),
            )
        })
        .build();
    let mut nodes = Vec::new();
    for i in 0..TABLET_NODES {
        let node_fs = fs.clone();
        let incarnations = Arc::new(AtomicU64::new(0));
        let n = handle
            .create_node()
            .name(format!("node{i}"))
            .ip(addr(node_ip(i)).ip())
            .init(move || {
                // A restart is a new incarnation: a larger host epoch.
                let epoch = incarnations.fetch_add(1, Ordering::SeqCst) + 1;
                let cfg = NodeConfig::new(
                    format!("node{i}"),
                    Addr(addr(node_ip(i)).to_string()),
                    META_NODE,
                );
                let t = TabletNode::new(cfg, node_fs.clone());
                run_role(
                    node_id(i),
                    node_ip(i),
                    epoch,
                    meta_peers(),
                    ClusterNode::Node(t),
                )
            })
            .build();
        nodes.push(n);
    }
    let client_machine = handle
        .create_node()
        .name("client")
        .ip(addr(CLIENT_IP).ip())
        .build();
    madsim::time::sleep(Duration::from_secs(5)).await;

    let client = client_machine
        .spawn(async {
            ShaleClient::connect(ClientOptions::new(addr(META_IP)))
                .await
                .expect("client connects")
        })
        .await
        .expect("client task");
    let client = Arc::new(client);

    // 1. A table over three tablets, and rows acknowledged before any fault.
    let c = client.clone();
    client_machine
        .spawn(async move {
            let schema = Schema {
                families: vec![FamilyDesc {
                    name: "f".into(),
                    locality_group: "default".into(),
                    max_versions: 1,
                    min_versions: 0,
                    ttl_secs: 0,
                }],
            };
            let splits = vec![row(ROWS / 3), row(2 * ROWS / 3)];
            c.create_table(TABLE, schema, splits)
                .await
                .expect("table created");
            for i in 0..ROWS {
                c.put(TABLE, &row(i), "f", b"q", &row(i))
                    .await
                    .expect("write acknowledged");
            }
        })
        .await
        .expect("writer task");

    // 2. Faults: kill node0; clog node1's link to the meta store past its lease; restart
    // node0 as a new incarnation.
    handle.kill(nodes[0].id());
    madsim::time::sleep(Duration::from_secs(2)).await;
    let net = NetSim::current();
    net.clog_link(nodes[1].id(), meta.id());
    net.clog_link(meta.id(), nodes[1].id());
    madsim::time::sleep(Duration::from_secs(10)).await;
    net.unclog_link(nodes[1].id(), meta.id());
    net.unclog_link(meta.id(), nodes[1].id());
    handle.restart(nodes[0].id());

    // 3. Every tablet Ready again, then every acknowledged row reads back.
    let c = client.clone();
    client_machine
        .spawn(async move {
            let deadline = madsim::time::Instant::now() + Duration::from_secs(120);
            loop {
                let tablets = c.list_tablets(Some(TABLE)).await.expect("tablets listed");
                let ready = tablets.iter().all(|t| t.status == TabletStatus::Ready);
                if ready && !tablets.is_empty() {
                    break;
                }
                assert!(
                    madsim::time::Instant::now() < deadline,
                    "tablets not Ready: {tablets:?}"
                );
                madsim::time::sleep(Duration::from_millis(500)).await;
            }
            for i in 0..ROWS {
                let got = c
                    .get(TABLE, &row(i), ReadFilter::default())
                    .await
                    .expect("read after the faults");
                let cell = got.and_then(|r| r.cells.into_iter().next());
                assert_eq!(
                    cell.map(|c| c.value),
                    Some(row(i)),
                    "row {i} lost after the faults"
                );
            }
        })
        .await
        .expect("reader task");
}
