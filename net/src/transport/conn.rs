//! One connection's life: the handshake on either side, the reader task that feeds the inbox,
//! and the writer loop that drains a queue. Also the accept loop.
//!
//! Must not: panic or unwrap on received bytes; every failure ends only the connection it
//! happened on, with a logged reason.

use shale_actors::NodeId;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::timeout;
use tracing::{debug, info, warn};

use super::{bump, lock, Route, Shared};
use crate::frame::{encode_into, read_frame, write_frame, FrameError, PROTOCOL_VERSION};
use crate::wire::{Envelope, Hello, Packet};

/// Why a connection ended.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ConnError {
    #[error("bad frame: {0}")]
    Frame(#[from] FrameError),
    #[error("refused by peer: {0}")]
    RefusedByPeer(String),
    #[error("refused: {0}")]
    Refused(String),
    #[error("handshake: expected {expected}, got another packet")]
    Unexpected { expected: &'static str },
    #[error("peer closed the connection")]
    Closed,
    #[error("timed out after {0} ms ({1})")]
    Timeout(u64, &'static str),
    #[error("connect: {0}")]
    Connect(std::io::Error),
    #[error("the inbox is closed (host stopped)")]
    InboxClosed,
    #[error("shutting down")]
    Shutdown,
}

impl ConnError {
    /// Whether the bytes the peer sent were malformed (as opposed to the link failing).
    pub(crate) fn is_bad_frame(&self) -> bool {
        match self {
            ConnError::Frame(e) => !matches!(e, FrameError::Io(_)),
            ConnError::Unexpected { .. } => true,
            _ => false,
        }
    }
}

/// Check a peer's hello (or welcome) against who we are and what we have seen.
fn check_hello<T>(s: &Shared<T>, hello: &Hello) -> Result<(), String>
where
    T: serde::Serialize + serde::de::DeserializeOwned + Send + 'static,
{
    if hello.cluster != s.me.cluster {
        return Err(format!(
            "cluster id {:?} is not ours ({:?})",
            hello.cluster.0, s.me.cluster.0
        ));
    }
    if hello.protocol_version != PROTOCOL_VERSION {
        return Err(format!(
            "protocol version {} (we speak {PROTOCOL_VERSION})",
            hello.protocol_version
        ));
    }
    if hello.node == s.me.node {
        return Err(format!("peer claims our own node id {}", hello.node));
    }
    if !s.note_epoch(hello.node, hello.epoch) {
        return Err(format!(
            "{} at {} is older than an incarnation already seen",
            hello.node, hello.epoch
        ));
    }
    Ok(())
}

/// Dial `addr`, expecting `peer` there, and complete the handshake.
pub(crate) async fn dial<T>(
    s: &Shared<T>,
    peer: NodeId,
    addr: SocketAddr,
) -> Result<TcpStream, ConnError>
where
    T: serde::Serialize + serde::de::DeserializeOwned + Send + 'static,
{
    let cfg = &s.cfg;
    let mut stream = match timeout(cfg.connect_timeout(), TcpStream::connect(addr)).await {
        Ok(Ok(stream)) => stream,
        Ok(Err(e)) => return Err(ConnError::Connect(e)),
        Err(_) => return Err(ConnError::Timeout(cfg.connect_timeout_ms, "connect")),
    };
    if let Err(e) = stream.set_nodelay(true) {
        debug!(%peer, "set_nodelay: {e}");
    }
    let exchange = async {
        write_frame(
            &mut stream,
            &Packet::<T>::Hello(s.me.hello()),
            cfg.handshake_frame_size_max_bytes,
        )
        .await?;
        read_frame::<Packet<T>, _>(&mut stream, cfg.handshake_frame_size_max_bytes).await
    };
    let reply = match timeout(cfg.handshake_timeout(), exchange).await {
        Ok(reply) => reply?,
        Err(_) => return Err(ConnError::Timeout(cfg.handshake_timeout_ms, "handshake")),
    };
    match reply {
        Some(Packet::Welcome(hello)) => {
            if hello.node != peer {
                return Err(ConnError::Refused(format!(
                    "{addr} is {} but the peer table says {peer}",
                    hello.node
                )));
            }
            check_hello(s, &hello).map_err(ConnError::Refused)?;
            Ok(stream)
        }
        Some(Packet::Refused { reason }) => Err(ConnError::RefusedByPeer(reason)),
        Some(_) => Err(ConnError::Unexpected {
            expected: "Welcome",
        }),
        None => Err(ConnError::Closed),
    }
}

/// Accept connections until shutdown. Each gets its own task; a bad one never stops the loop.
pub(crate) async fn accept_loop<T>(s: Arc<Shared<T>>, listener: TcpListener)
where
    T: serde::Serialize + serde::de::DeserializeOwned + Send + 'static,
{
    let mut shutdown = s.shutdown.subscribe();
    loop {
        let accepted = tokio::select! {
            biased;
            _ = shutdown.wait_for(|stop| *stop) => return,
            accepted = listener.accept() => accepted,
        };
        let (stream, remote) = match accepted {
            Ok(x) => x,
            Err(e) => {
                // Usually transient (out of file descriptors, a reset before accept). Pause
                // briefly so a persistent error cannot spin this loop.
                warn!(me = %s.me.node, "accept failed: {e}");
                tokio::time::sleep(std::time::Duration::from_millis(
                    s.cfg.reconnect_backoff_min_ms,
                ))
                .await;
                continue;
            }
        };
        let Ok(permit) = s.inbound_permits.clone().try_acquire_owned() else {
            warn!(me = %s.me.node, %remote, limit = s.cfg.inbound_connections_max, "too many inbound connections; closing");
            continue;
        };
        let s2 = s.clone();
        s.spawn(async move {
            let _permit = permit;
            serve_inbound(s2, stream, remote).await;
        });
    }
}

/// Handshake an accepted connection, register it as a route for replies, then serve it.
async fn serve_inbound<T>(s: Arc<Shared<T>>, mut stream: TcpStream, remote: SocketAddr)
where
    T: serde::Serialize + serde::de::DeserializeOwned + Send + 'static,
{
    let cfg = &s.cfg;
    if let Err(e) = stream.set_nodelay(true) {
        debug!(%remote, "set_nodelay: {e}");
    }
    let first = match timeout(
        cfg.handshake_timeout(),
        read_frame::<Packet<T>, _>(&mut stream, cfg.handshake_frame_size_max_bytes),
    )
    .await
    {
        Ok(first) => first.map_err(ConnError::from),
        Err(_) => Err(ConnError::Timeout(cfg.handshake_timeout_ms, "handshake")),
    };
    let hello = match first {
        Ok(Some(Packet::Hello(hello))) => hello,
        Ok(Some(_)) => {
            return end(
                &s,
                remote,
                None,
                ConnError::Unexpected { expected: "Hello" },
            )
        }
        Ok(None) => return end(&s, remote, None, ConnError::Closed),
        Err(e) => return end(&s, remote, None, e),
    };
    if let Err(reason) = check_hello(&s, &hello) {
        bump(&s.counters.handshakes_refused);
        warn!(me = %s.me.node, %remote, peer = %hello.node, "refusing handshake: {reason}");
        let refusal = Packet::<T>::Refused { reason };
        // Best effort: the peer learns why, then the connection closes either way.
        let _ = timeout(
            cfg.write_timeout(),
            write_frame(&mut stream, &refusal, cfg.handshake_frame_size_max_bytes),
        )
        .await;
        return;
    }
    let welcome = Packet::<T>::Welcome(s.me.hello());
    match timeout(
        cfg.write_timeout(),
        write_frame(&mut stream, &welcome, cfg.handshake_frame_size_max_bytes),
    )
    .await
    {
        Ok(Ok(())) => {}
        Ok(Err(e)) => return end(&s, remote, Some(hello.node), e.into()),
        Err(_) => {
            return end(
                &s,
                remote,
                Some(hello.node),
                ConnError::Timeout(cfg.write_timeout_ms, "welcome"),
            )
        }
    }
    bump(&s.counters.connections_accepted);
    let peer = hello.node;
    info!(me = %s.me.node, %peer, epoch = %hello.epoch, %remote, "accepted connection");
    let conn = s
        .next_conn
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let (tx, mut rx) = mpsc::channel(cfg.outbound_queue_len_max.max(1));
    lock(&s.routes).insert(peer, Route { conn, tx });
    let why = serve(&s, stream, peer, &mut rx).await;
    {
        let mut routes = lock(&s.routes);
        if routes.get(&peer).is_some_and(|r| r.conn == conn) {
            routes.remove(&peer);
        }
    }
    end(&s, remote, Some(peer), why);
}

/// Log (and count) why a connection ended.
fn end<T>(s: &Shared<T>, remote: SocketAddr, peer: Option<NodeId>, why: ConnError) {
    if why.is_bad_frame() {
        bump(&s.counters.bad_frames);
        warn!(me = %s.me.node, %remote, ?peer, "closing connection: {why}");
    } else if matches!(why, ConnError::Shutdown) {
        debug!(me = %s.me.node, %remote, ?peer, "connection closed: {why}");
    } else {
        info!(me = %s.me.node, %remote, ?peer, "connection closed: {why}");
    }
}

/// Queued messages are encoded into one buffer up to this size and written with one call.
const WRITE_BATCH_BYTES: usize = 256 * 1024;
/// A write buffer grown past this by a large message is given back afterwards.
const WRITE_BUFFER_KEEP_BYTES: usize = 4 * WRITE_BATCH_BYTES;
/// Bytes the reader asks the socket for at once: one system call usually brings whole frames.
const READ_BUFFER_BYTES: usize = 64 * 1024;

/// Serve an established connection: a reader task delivers frames from `peer` to the inbox
/// while this loop writes what arrives on `queue`. Returns when either side ends.
///
/// Whatever is queued when the writer wakes goes out in one write (and one flush, which is
/// when the simulated stream sends), so a burst of replies costs one system call, not one each.
pub(crate) async fn serve<T>(
    s: &Arc<Shared<T>>,
    stream: TcpStream,
    peer: NodeId,
    queue: &mut mpsc::Receiver<T>,
) -> ConnError
where
    T: serde::Serialize + serde::de::DeserializeOwned + Send + 'static,
{
    let (rd, mut wr) = split(stream);
    let rd = BufReader::with_capacity(READ_BUFFER_BYTES, rd);
    let mut reader: JoinHandle<ConnError> = tokio::spawn(read_loop(s.clone(), rd, peer));
    let mut shutdown = s.shutdown.subscribe();
    // Built once: a fresh one per message would register with the watch channel each time.
    let stopped = shutdown.wait_for(|stop| *stop);
    tokio::pin!(stopped);
    let mut out = Vec::new();
    let why = loop {
        let next = tokio::select! {
            biased;
            _ = &mut stopped => break ConnError::Shutdown,
            ended = &mut reader => break ended.unwrap_or(ConnError::Shutdown),
            next = queue.recv() => next,
        };
        let Some(msg) = next else {
            break ConnError::Shutdown;
        };
        out.clear();
        let mut batched = encode_msg(s, &mut out, msg);
        while out.len() < WRITE_BATCH_BYTES {
            match queue.try_recv() {
                Ok(msg) => batched += encode_msg(s, &mut out, msg),
                Err(_) => break,
            }
        }
        if let Err(e) = write_batch(s, &mut wr, &out, batched).await {
            break e;
        }
        if out.capacity() > WRITE_BUFFER_KEEP_BYTES {
            out = Vec::new();
        }
    };
    reader.abort();
    why
}

/// The two halves of a connection. Tokio's owned halves share no lock (the generic
/// `tokio::io::split` takes a mutex on every read and write, contended whenever the reader
/// and the writer run at once); madsim's simulated stream has only the generic split.
#[cfg(not(madsim))]
fn split(
    stream: TcpStream,
) -> (
    tokio::net::tcp::OwnedReadHalf,
    tokio::net::tcp::OwnedWriteHalf,
) {
    stream.into_split()
}

#[cfg(madsim)]
fn split(
    stream: TcpStream,
) -> (
    tokio::io::ReadHalf<TcpStream>,
    tokio::io::WriteHalf<TcpStream>,
) {
    tokio::io::split(stream)
}

/// Append `msg`'s frame to `out`; 1 if it was, 0 if it was dropped (too big, or does not
/// encode: our own bug, which must not cost the connection).
fn encode_msg<T>(s: &Shared<T>, out: &mut Vec<u8>, msg: T) -> u64
where
    T: serde::Serialize + serde::de::DeserializeOwned + Send + 'static,
{
    match encode_into(&Packet::Msg(msg), out, s.cfg.frame_size_max_bytes) {
        Ok(()) => 1,
        Err(FrameError::Oversize { len, max }) => {
            bump(&s.counters.messages_dropped);
            warn!(me = %s.me.node, "dropping outbound message of {len} bytes (frame_size_max_bytes = {max})");
            0
        }
        Err(e) => {
            bump(&s.counters.messages_dropped);
            warn!(me = %s.me.node, "dropping outbound message that does not encode: {e}");
            0
        }
    }
}

/// Write the `frames` frames in `bytes` and flush, within the write timeout.
async fn write_batch<T, W>(
    s: &Shared<T>,
    wr: &mut W,
    bytes: &[u8],
    frames: u64,
) -> Result<(), ConnError>
where
    W: AsyncWrite + Unpin,
{
    if frames == 0 {
        return Ok(());
    }
    let write = async {
        wr.write_all(bytes).await?;
        wr.flush().await
    };
    let failed = match timeout(s.cfg.write_timeout(), write).await {
        Ok(Ok(())) => {
            s.counters.frames_sent.fetch_add(frames, Ordering::Relaxed);
            return Ok(());
        }
        Ok(Err(e)) => ConnError::Frame(FrameError::Io(e)),
        Err(_) => ConnError::Timeout(s.cfg.write_timeout_ms, "write"),
    };
    s.counters
        .messages_dropped
        .fetch_add(frames, Ordering::Relaxed);
    Err(failed)
}

/// Read frames from `peer` into the inbox until the stream ends or misbehaves.
async fn read_loop<T, R>(s: Arc<Shared<T>>, mut rd: R, peer: NodeId) -> ConnError
where
    T: serde::Serialize + serde::de::DeserializeOwned + Send + 'static,
    R: AsyncRead + Unpin,
{
    loop {
        let packet = match read_frame::<Packet<T>, _>(&mut rd, s.cfg.frame_size_max_bytes).await {
            Ok(Some(p)) => p,
            Ok(None) => return ConnError::Closed,
            Err(e) => return e.into(),
        };
        let Packet::Msg(msg) = packet else {
            return ConnError::Unexpected { expected: "Msg" };
        };
        bump(&s.counters.frames_received);
        // Waiting here when the inbox is full pushes back on the peer through TCP.
        if s.inbox.send(Envelope { from: peer, msg }).await.is_err() {
            return ConnError::InboxClosed;
        }
    }
}
