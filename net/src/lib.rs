//! Shale's framing, TCP transport and async host.
//!
//! - [`frame`]: the wire frame (`magic, version, length, crc32c, payload`) and its checks.
//! - [`wire`]: the handshake and packet types inside frames, and the transport's limits.
//! - [`transport`]: connections, the peer table, reconnect with backoff, routing of replies.
//! - [`host`]: the loop that runs any [`shale_actors::Actor`] on the transport.
//! - [`demo`]: a ping/pong actor and a local loopback cluster for `shale dev`.
//!
//! Everything is written against tokio's API through `madsim-tokio`: built normally this is
//! production TCP; built with `RUSTFLAGS="--cfg madsim"` the same code runs on madsim's simulated
//! network and clock, with link clogging and node kill/restart.
//!
//! Architecture invariant: this crate is generic over the actor's message type and knows
//! nothing of tablets, tables or storage; nothing here panics or unwraps on network input.
#![deny(clippy::unwrap_used, clippy::expect_used)]

pub mod demo;
pub mod frame;
pub mod host;
pub mod transport;
pub mod wire;

pub use frame::FrameError;
pub use host::{
    spawn_host, spawn_host_with_invoker, Host, HostConfig, HostError, HostHandle, InjectError,
    Invocation, Invoker,
};
pub use transport::{Identity, NetStats, PeerError, SendError, Transport};
pub use wire::{ClusterId, Envelope, Hello, NetConfig, Packet};
