//! The TCP transport: a peer table, one outbound link per known peer (reconnecting with bounded,
//! jittered exponential backoff), an accept loop, and replies to unknown peers (clients) over the
//! connection they opened.
//!
//! Written against `tokio::net`, which `madsim-tokio` replaces with madsim's simulated network
//! under `--cfg madsim`: the same code is production TCP and simulated TCP.
//!
//! Delivery is best effort and per-connection FIFO: a full queue, a refused handshake or a
//! broken connection loses messages (logged and counted), exactly as actors already expect.
//!
//! Owns: connections, the peer table, routing, per-peer queues, transport statistics.
//! Must not: interpret actor messages, block the caller of [`Transport::send`], or panic on
//! anything a peer sends.

mod conn;
mod link;

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use shale_actors::{Epoch, NodeId};
use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch, Semaphore};
use tokio::task::JoinHandle;
use tracing::{debug, info, warn};

use crate::wire::{ClusterId, Envelope, Hello, NetConfig};

/// Who this transport speaks for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Identity {
    pub cluster: ClusterId,
    pub node: NodeId,
    pub epoch: Epoch,
}

impl Identity {
    pub(crate) fn hello(&self) -> Hello {
        Hello::new(self.cluster.clone(), self.node, self.epoch)
    }
}

/// Why [`Transport::send`] dropped a message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    #[error("no address for {0} and no open connection from it")]
    UnknownPeer(NodeId),
    #[error("outbound queue to {0} is full (outbound_queue_len_max)")]
    QueueFull(NodeId),
    #[error("connection to {0} is closed")]
    Closed(NodeId),
    #[error("the transport is shut down")]
    ShutDown,
}

/// Why [`Transport::add_peer`] refused an entry.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PeerError {
    #[error("peer table is full (peers_len_max = {0})")]
    TableFull(usize),
    #[error("{0} is this node")]
    SelfPeer(NodeId),
}

/// Counters, for logs and for tests that prove a path ran.
#[derive(Debug, Default)]
struct Counters {
    frames_sent: AtomicU64,
    frames_received: AtomicU64,
    messages_dropped: AtomicU64,
    connections_dialed: AtomicU64,
    connections_accepted: AtomicU64,
    handshakes_refused: AtomicU64,
    bad_frames: AtomicU64,
}

/// A snapshot of the transport's counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NetStats {
    pub frames_sent: u64,
    pub frames_received: u64,
    /// Messages dropped by `send` (full queue, unknown peer) or lost with a broken connection.
    pub messages_dropped: u64,
    /// Outbound connections that completed the handshake.
    pub connections_dialed: u64,
    /// Inbound connections that completed the handshake.
    pub connections_accepted: u64,
    /// Handshakes refused, by us or by the peer.
    pub handshakes_refused: u64,
    /// Connections closed because a frame failed its checks.
    pub bad_frames: u64,
}

/// A connection someone else opened to us, usable for replies.
struct Route<M> {
    conn: u64,
    tx: mpsc::Sender<M>,
}

pub(crate) struct Shared<M> {
    me: Identity,
    cfg: NetConfig,
    peers: Mutex<BTreeMap<NodeId, SocketAddr>>,
    links: Mutex<HashMap<NodeId, mpsc::Sender<M>>>,
    routes: Mutex<HashMap<NodeId, Route<M>>>,
    /// Newest epoch seen per node; an older incarnation is refused.
    epochs: Mutex<HashMap<NodeId, Epoch>>,
    inbox: mpsc::Sender<Envelope<M>>,
    shutdown: watch::Sender<bool>,
    tasks: Mutex<Vec<JoinHandle<()>>>,
    inbound_permits: Arc<Semaphore>,
    next_conn: AtomicU64,
    seed: u64,
    counters: Counters,
}

/// Lock a mutex; a panic elsewhere while holding it does not make the data unusable here.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn bump(c: &AtomicU64) {
    c.fetch_add(1, Ordering::Relaxed);
}

impl<M> Shared<M>
where
    M: serde::Serialize + serde::de::DeserializeOwned + Send + 'static,
{
    fn spawn(&self, fut: impl std::future::Future<Output = ()> + Send + 'static) {
        let handle = tokio::spawn(fut);
        let mut tasks = lock(&self.tasks);
        tasks.retain(|t| !t.is_finished());
        tasks.push(handle);
    }

    fn is_shut_down(&self) -> bool {
        *self.shutdown.borrow()
    }

    fn peer_addr(&self, node: NodeId) -> Option<SocketAddr> {
        lock(&self.peers).get(&node).copied()
    }

    /// Record `epoch` for `node`; false if an equal-or-newer incarnation was already seen.
    fn note_epoch(&self, node: NodeId, epoch: Epoch) -> bool {
        let mut epochs = lock(&self.epochs);
        let seen = epochs.entry(node).or_insert(epoch);
        if epoch < *seen {
            return false;
        }
        *seen = epoch;
        true
    }

    fn derived_rng(&self, salt: u64) -> ChaCha8Rng {
        ChaCha8Rng::seed_from_u64(self.seed ^ salt.wrapping_mul(0x9E37_79B9_7F4A_7C15))
    }
}

/// The transport of one host. Cheap to clone; all clones share one set of connections.
pub struct Transport<M> {
    shared: Arc<Shared<M>>,
}

impl<M> Clone for Transport<M> {
    fn clone(&self) -> Self {
        Self {
            shared: self.shared.clone(),
        }
    }
}

impl<M> Transport<M>
where
    M: serde::Serialize + serde::de::DeserializeOwned + Send + 'static,
{
    /// Start a transport. With `listen`, bind it and accept connections; without, this is a
    /// client that only dials. Delivered messages go to `inbox`. `seed` drives backoff jitter.
    pub async fn start(
        me: Identity,
        cfg: NetConfig,
        listen: Option<SocketAddr>,
        peers: BTreeMap<NodeId, SocketAddr>,
        inbox: mpsc::Sender<Envelope<M>>,
        seed: u64,
    ) -> std::io::Result<(Self, Option<SocketAddr>)> {
        let listener = match listen {
            Some(addr) => Some(TcpListener::bind(addr).await?),
            None => None,
        };
        let local_addr = match &listener {
            Some(l) => Some(l.local_addr()?),
            None => None,
        };
        let mut table = BTreeMap::new();
        for (node, addr) in peers.into_iter().filter(|(n, _)| *n != me.node) {
            if table.len() >= cfg.peers_len_max {
                warn!(%node, limit = cfg.peers_len_max, "peer table full; entry ignored");
                continue;
            }
            table.insert(node, addr);
        }
        let (shutdown, _) = watch::channel(false);
        let shared = Arc::new(Shared {
            inbound_permits: Arc::new(Semaphore::new(cfg.inbound_connections_max)),
            me,
            cfg,
            peers: Mutex::new(table),
            links: Mutex::new(HashMap::new()),
            routes: Mutex::new(HashMap::new()),
            epochs: Mutex::new(HashMap::new()),
            inbox,
            shutdown,
            tasks: Mutex::new(Vec::new()),
            next_conn: AtomicU64::new(0),
            seed,
            counters: Counters::default(),
        });
        if let Some(listener) = listener {
            info!(node = %shared.me.node, addr = ?local_addr, "listening");
            shared.spawn(conn::accept_loop(shared.clone(), listener));
        }
        Ok((Self { shared }, local_addr))
    }

    /// Queue `msg` for `to` without waiting. A node in the peer table is reached over our own
    /// link to it; any other node only over a connection it opened to us. Self-sends go straight
    /// to the inbox. Errors mean the message was dropped (and logged by the caller's choice).
    pub fn send(&self, to: NodeId, msg: M) -> Result<(), SendError> {
        let s = &self.shared;
        if s.is_shut_down() {
            return Err(SendError::ShutDown);
        }
        let result = if to == s.me.node {
            s.inbox
                .try_send(Envelope { from: to, msg })
                .map_err(|e| queue_error(to, &e))
        } else if let Some(tx) = self.link_queue(to) {
            tx.try_send(msg).map_err(|e| queue_error(to, &e))
        } else {
            match lock(&s.routes).get(&to) {
                Some(route) => route.tx.try_send(msg).map_err(|e| queue_error(to, &e)),
                None => Err(SendError::UnknownPeer(to)),
            }
        };
        if result.is_err() {
            bump(&s.counters.messages_dropped);
        }
        result
    }

    /// The queue of our outbound link to `to`, starting the link if `to` is in the peer table.
    fn link_queue(&self, to: NodeId) -> Option<mpsc::Sender<M>> {
        let s = &self.shared;
        let mut links = lock(&s.links);
        if let Some(tx) = links.get(&to) {
            if !tx.is_closed() {
                return Some(tx.clone());
            }
        }
        s.peer_addr(to)?;
        let (tx, rx) = mpsc::channel(s.cfg.outbound_queue_len_max.max(1));
        links.insert(to, tx.clone());
        debug!(me = %s.me.node, peer = %to, "starting link");
        s.spawn(link::run_link(s.clone(), to, rx, s.derived_rng(to.0)));
        Some(tx)
    }

    /// Add or change a peer's address. An existing link uses it from its next reconnect.
    pub fn add_peer(&self, node: NodeId, addr: SocketAddr) -> Result<(), PeerError> {
        let s = &self.shared;
        if node == s.me.node {
            return Err(PeerError::SelfPeer(node));
        }
        let mut peers = lock(&s.peers);
        if !peers.contains_key(&node) && peers.len() >= s.cfg.peers_len_max {
            return Err(PeerError::TableFull(s.cfg.peers_len_max));
        }
        peers.insert(node, addr);
        Ok(())
    }

    /// The peer table as it is now.
    pub fn peers(&self) -> BTreeMap<NodeId, SocketAddr> {
        lock(&self.shared.peers).clone()
    }

    pub fn identity(&self) -> &Identity {
        &self.shared.me
    }

    pub fn stats(&self) -> NetStats {
        let c = &self.shared.counters;
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        NetStats {
            frames_sent: get(&c.frames_sent),
            frames_received: get(&c.frames_received),
            messages_dropped: get(&c.messages_dropped),
            connections_dialed: get(&c.connections_dialed),
            connections_accepted: get(&c.connections_accepted),
            handshakes_refused: get(&c.handshakes_refused),
            bad_frames: get(&c.bad_frames),
        }
    }

    /// Close every connection and stop every task. Idempotent.
    pub fn shutdown(&self) {
        let s = &self.shared;
        s.shutdown.send_replace(true);
        let tasks = std::mem::take(&mut *lock(&s.tasks));
        for t in tasks {
            t.abort();
        }
        lock(&s.links).clear();
        lock(&s.routes).clear();
    }
}

fn queue_error<T>(to: NodeId, e: &mpsc::error::TrySendError<T>) -> SendError {
    match e {
        mpsc::error::TrySendError::Full(_) => SendError::QueueFull(to),
        mpsc::error::TrySendError::Closed(_) => SendError::Closed(to),
    }
}
