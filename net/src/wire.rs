//! What travels inside frames: the handshake and the actor messages, plus the transport's
//! named limits.
//!
//! Every connection starts with the dialer's [`Packet::Hello`]; the acceptor answers with its own
//! [`Packet::Welcome`] or a [`Packet::Refused`] and closes. After that both directions carry only
//! [`Packet::Msg`], whose sender is the node the handshake named (a connection cannot speak for
//! another node).
//!
//! Owns: the packet and handshake types, the cluster id, the limits ([`NetConfig`]).
//! Must not: know what an actor message means (it is a type parameter) or touch sockets.

use serde::{Deserialize, Serialize};
use shale_actors::{Epoch, NodeId};
use std::fmt;
use std::time::Duration;

use crate::frame::{FRAME_SIZE_MAX_BYTES_DEFAULT, PROTOCOL_VERSION};

/// Names one Shale cluster. Connections between different clusters are refused.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ClusterId(pub String);

impl fmt::Display for ClusterId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Who is at one end of a connection. Members and clients alike have a node id; a client that
/// is in nobody's peer table is answered over the connection it opened.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hello {
    pub protocol_version: u16,
    pub cluster: ClusterId,
    pub node: NodeId,
    pub epoch: Epoch,
}

impl Hello {
    pub fn new(cluster: ClusterId, node: NodeId, epoch: Epoch) -> Self {
        Self {
            protocol_version: PROTOCOL_VERSION,
            cluster,
            node,
            epoch,
        }
    }
}

/// One frame's payload.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Packet<M> {
    /// The dialer introduces itself; always the first frame on a connection.
    Hello(Hello),
    /// The acceptor accepts and introduces itself.
    Welcome(Hello),
    /// The acceptor refuses; the connection closes after this frame.
    Refused { reason: String },
    /// An actor message from the node named in the handshake.
    Msg(M),
}

/// A message as delivered to a host: who sent it (as established by the handshake) and what.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Envelope<M> {
    pub from: NodeId,
    pub msg: M,
}

/// The transport's named limits. Every queue, wait and retry is bounded by one of these.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NetConfig {
    /// Largest frame payload accepted or sent.
    pub frame_size_max_bytes: u32,
    /// Largest handshake frame accepted: an unauthenticated peer cannot make us buffer more.
    pub handshake_frame_size_max_bytes: u32,
    /// Messages queued per peer connection; when full, new messages are dropped with a log.
    pub outbound_queue_len_max: usize,
    /// Messages received but not yet handled by the actor; readers wait when it is full.
    pub inbox_len_max: usize,
    /// First reconnect delay; doubles per failed attempt up to the maximum, with jitter.
    pub reconnect_backoff_min_ms: u64,
    pub reconnect_backoff_max_ms: u64,
    pub connect_timeout_ms: u64,
    pub handshake_timeout_ms: u64,
    /// A frame write that takes longer than this closes the connection (a stalled peer).
    pub write_timeout_ms: u64,
    /// Inbound connections open at once; more are closed on accept.
    pub inbound_connections_max: usize,
    /// Entries in the peer table.
    pub peers_len_max: usize,
}

impl Default for NetConfig {
    fn default() -> Self {
        Self {
            frame_size_max_bytes: FRAME_SIZE_MAX_BYTES_DEFAULT,
            handshake_frame_size_max_bytes: 64 * 1024,
            outbound_queue_len_max: 4096,
            inbox_len_max: 4096,
            reconnect_backoff_min_ms: 50,
            reconnect_backoff_max_ms: 5_000,
            connect_timeout_ms: 3_000,
            handshake_timeout_ms: 3_000,
            write_timeout_ms: 10_000,
            inbound_connections_max: 1024,
            peers_len_max: 4096,
        }
    }
}

impl NetConfig {
    pub(crate) fn connect_timeout(&self) -> Duration {
        Duration::from_millis(self.connect_timeout_ms)
    }
    pub(crate) fn handshake_timeout(&self) -> Duration {
        Duration::from_millis(self.handshake_timeout_ms)
    }
    pub(crate) fn write_timeout(&self) -> Duration {
        Duration::from_millis(self.write_timeout_ms)
    }
}
