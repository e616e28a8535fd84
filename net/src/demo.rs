//! A ping/pong demo actor and a local loopback cluster of them: what `shale dev` runs until the
//! real cluster exists, and a small end-to-end check of the host and transport.
//!
//! Every node pings every peer each `ping_interval`; a ping is answered by a pong carrying the
//! ping's send time, so the pinger measures the round trip on its own clock. Messages carry the
//! sender's epoch, so a restarted peer is visible in the stats.
//!
//! Owns: the demo protocol and its statistics, `run_local_cluster`.
//! Must not: be used by real roles (it is a demo), or do I/O outside the host.

use serde::{Deserialize, Serialize};
use shale_actors::{Actor, Ctx, Epoch, JobError, JobId, NodeId, Time, TimerId};
use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tracing::info;

use crate::host::{spawn_host, HostConfig, HostError};
use crate::wire::ClusterId;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum DemoMsg {
    Ping {
        seq: u64,
        sent_at: Time,
        epoch: Epoch,
    },
    Pong {
        seq: u64,
        sent_at: Time,
        epoch: Epoch,
    },
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DemoTimer {
    Tick,
    Report,
}

/// What one demo node has seen of one peer.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PeerStats {
    pub pings_sent: u64,
    pub pings_received: u64,
    /// Highest ping sequence number received from this peer (sequences start at 0).
    pub ping_seq_max: Option<u64>,
    pub pongs_received: u64,
    /// The peer's epoch on the last pong: shows which incarnation answered.
    pub pong_epoch_last: Option<Epoch>,
    pub rtt_total_ns: u64,
    pub rtt_max_ns: u64,
}

impl PeerStats {
    pub fn rtt_mean(&self) -> Option<Duration> {
        self.rtt_total_ns
            .checked_div(self.pongs_received)
            .map(Duration::from_nanos)
    }
}

/// A demo node's statistics, shared so a test or the command line can watch them live.
pub type SharedStats = Arc<Mutex<BTreeMap<NodeId, PeerStats>>>;

fn lock_stats(stats: &SharedStats) -> MutexGuard<'_, BTreeMap<NodeId, PeerStats>> {
    stats
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// A snapshot of `stats`.
pub fn stats_snapshot(stats: &SharedStats) -> BTreeMap<NodeId, PeerStats> {
    lock_stats(stats).clone()
}

/// The demo actor.
pub struct PingPong {
    epoch: Epoch,
    peers: Vec<NodeId>,
    ping_interval: Duration,
    report_interval: Duration,
    next_seq: BTreeMap<NodeId, u64>,
    stats: SharedStats,
}

impl PingPong {
    pub fn new(
        epoch: Epoch,
        peers: Vec<NodeId>,
        ping_interval: Duration,
        report_interval: Duration,
    ) -> Self {
        Self {
            epoch,
            peers,
            ping_interval,
            report_interval,
            next_seq: BTreeMap::new(),
            stats: SharedStats::default(),
        }
    }

    /// A handle on this node's live statistics.
    pub fn stats(&self) -> SharedStats {
        self.stats.clone()
    }
}

impl Actor for PingPong {
    type Msg = DemoMsg;
    type Timer = DemoTimer;
    type JobOutput = ();

    fn on_start(&mut self, ctx: &mut Ctx<'_, Self>) {
        info!(node = %ctx.me(), epoch = %self.epoch, peers = self.peers.len(), "demo node up");
        ctx.set_timer(self.ping_interval, DemoTimer::Tick);
        ctx.set_timer(self.report_interval, DemoTimer::Report);
    }

    fn on_msg(&mut self, from: NodeId, msg: DemoMsg, ctx: &mut Ctx<'_, Self>) {
        let mut stats = lock_stats(&self.stats);
        let peer = stats.entry(from).or_default();
        match msg {
            DemoMsg::Ping { seq, sent_at, .. } => {
                peer.pings_received += 1;
                peer.ping_seq_max = Some(peer.ping_seq_max.map_or(seq, |m| m.max(seq)));
                ctx.send(
                    from,
                    DemoMsg::Pong {
                        seq,
                        sent_at,
                        epoch: self.epoch,
                    },
                );
            }
            DemoMsg::Pong { sent_at, epoch, .. } => {
                let rtt = ctx.now().since(sent_at);
                let rtt_ns = u64::try_from(rtt.as_nanos()).unwrap_or(u64::MAX);
                peer.pongs_received += 1;
                peer.pong_epoch_last = Some(epoch);
                peer.rtt_total_ns = peer.rtt_total_ns.saturating_add(rtt_ns);
                peer.rtt_max_ns = peer.rtt_max_ns.max(rtt_ns);
            }
        }
    }

    fn on_timer(&mut self, _id: TimerId, timer: DemoTimer, ctx: &mut Ctx<'_, Self>) {
        match timer {
            DemoTimer::Tick => {
                let now = ctx.now();
                let mut stats = lock_stats(&self.stats);
                for &peer in &self.peers {
                    let seq = self.next_seq.entry(peer).or_insert(0);
                    ctx.send(
                        peer,
                        DemoMsg::Ping {
                            seq: *seq,
                            sent_at: now,
                            epoch: self.epoch,
                        },
                    );
                    *seq += 1;
                    stats.entry(peer).or_default().pings_sent += 1;
                }
                ctx.set_timer(self.ping_interval, DemoTimer::Tick);
            }
            DemoTimer::Report => {
                for (peer, s) in lock_stats(&self.stats).iter() {
                    info!(
                        node = %ctx.me(),
                        %peer,
                        pings_sent = s.pings_sent,
                        pongs = s.pongs_received,
                        rtt_mean = ?s.rtt_mean(),
                        rtt_max = ?Duration::from_nanos(s.rtt_max_ns),
                        "round trips"
                    );
                }
                ctx.set_timer(self.report_interval, DemoTimer::Report);
            }
        }
    }

    fn on_job_done(&mut self, _id: JobId, _result: Result<(), JobError>, _ctx: &mut Ctx<'_, Self>) {
    }
}

/// Largest demo cluster `run_local_cluster` starts.
pub const LOCAL_CLUSTER_NODES_MAX: usize = 64;

/// A demo cluster on 127.0.0.1.
#[derive(Clone, Debug)]
pub struct LocalClusterConfig {
    pub nodes: usize,
    /// Node `i` (from 0) listens on `base_port + i`; 0 lets the OS pick every port.
    pub base_port: u16,
    pub ping_interval: Duration,
    pub report_interval: Duration,
    /// Stop after this long; `None` runs until ctrl-c (ctrl-c also stops a timed run).
    pub run_for: Option<Duration>,
    pub seed: Option<u64>,
}

impl Default for LocalClusterConfig {
    fn default() -> Self {
        Self {
            nodes: 3,
            base_port: 0,
            ping_interval: Duration::from_millis(200),
            report_interval: Duration::from_secs(1),
            run_for: None,
            seed: None,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    #[error("a demo cluster needs 1 to {LOCAL_CLUSTER_NODES_MAX} nodes, not {0}")]
    Nodes(usize),
    #[error("ports {base}..{base}+{nodes} do not fit in u16")]
    Ports { base: u16, nodes: usize },
    #[error(transparent)]
    Host(#[from] HostError),
    #[error("a host task failed: {0}")]
    Join(String),
    #[error("cannot start a runtime: {0}")]
    Runtime(std::io::Error),
}

/// What each node saw, by node.
pub type ClusterReport = BTreeMap<NodeId, BTreeMap<NodeId, PeerStats>>;

/// Run `cfg.nodes` demo nodes on loopback TCP, pinging each other and logging round trips,
/// until `run_for` passes or ctrl-c; then stop them and report what each saw.
pub async fn run_local_cluster(cfg: LocalClusterConfig) -> Result<ClusterReport, DemoError> {
    if cfg.nodes == 0 || cfg.nodes > LOCAL_CLUSTER_NODES_MAX {
        return Err(DemoError::Nodes(cfg.nodes));
    }
    let port_of = |i: usize| -> Result<u16, DemoError> {
        if cfg.base_port == 0 {
            return Ok(0);
        }
        u16::try_from(i)
            .ok()
            .and_then(|i| cfg.base_port.checked_add(i))
            .ok_or(DemoError::Ports {
                base: cfg.base_port,
                nodes: cfg.nodes,
            })
    };
    let cluster = ClusterId("shale-dev".into());
    let ids: Vec<NodeId> = (1..=cfg.nodes as u64).map(NodeId).collect();
    let mut planned = BTreeMap::new();
    for (i, id) in ids.iter().enumerate() {
        planned.insert(*id, SocketAddr::from((Ipv4Addr::LOCALHOST, port_of(i)?)));
    }
    let mut running = Vec::new();
    for id in &ids {
        let mut host = HostConfig::new(cluster.clone(), *id, Epoch(1));
        host.listen = planned.get(id).copied();
        if cfg.base_port != 0 {
            host.peers = planned.clone();
        }
        host.rng_seed = cfg.seed.map(|s| s ^ id.0);
        let peers = ids.iter().copied().filter(|p| p != id).collect();
        let actor = PingPong::new(Epoch(1), peers, cfg.ping_interval, cfg.report_interval);
        let stats = actor.stats();
        let (handle, task) = spawn_host(actor, host).await?;
        running.push((*id, handle, task, stats));
    }
    if cfg.base_port == 0 {
        // Ports were picked by the OS: tell every node where the others ended up.
        let addrs: Vec<_> = running
            .iter()
            .filter_map(|(id, h, _, _)| Some((*id, h.local_addr()?)))
            .collect();
        for (_, handle, _, _) in &running {
            for (id, addr) in &addrs {
                if *id != handle.node() {
                    // The table holds at most LOCAL_CLUSTER_NODES_MAX entries here.
                    let _ = handle.add_peer(*id, *addr);
                }
            }
        }
    }
    let addrs: Vec<String> = running
        .iter()
        .map(|(id, h, _, _)| {
            format!(
                "{id}@{}",
                h.local_addr().map_or("-".into(), |a| a.to_string())
            )
        })
        .collect();
    info!(nodes = ?addrs, "demo cluster running");
    let forever = Duration::from_secs(u64::from(u32::MAX));
    tokio::select! {
        _ = tokio::time::sleep(cfg.run_for.unwrap_or(forever)) => {}
        _ = tokio::signal::ctrl_c() => info!("ctrl-c: stopping the demo cluster"),
    }
    let mut report = ClusterReport::new();
    for (id, handle, task, stats) in running {
        handle.stop();
        task.await.map_err(|e| DemoError::Join(e.to_string()))?;
        report.insert(id, stats_snapshot(&stats));
    }
    Ok(report)
}

/// [`run_local_cluster`] on a runtime of its own, for a synchronous `main`.
#[cfg(not(madsim))]
pub fn run_local_cluster_blocking(cfg: LocalClusterConfig) -> Result<ClusterReport, DemoError> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(DemoError::Runtime)?;
    runtime.block_on(run_local_cluster(cfg))
}
