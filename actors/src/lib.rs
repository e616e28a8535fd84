//! Shale's actors: the I/O-free kernel every role is written against, and (in later modules)
//! the master, tablet node and meta store state machines.
//!
//! Architecture invariant: nothing in this crate touches a socket, a clock, a thread or the
//! global RNG. Time and randomness come in through [`kernel::Ctx`]; effects go out through it.
//! The same code runs in the deterministic executor (`shale-sim`) and the async host
//! (`shale-net`).
#![deny(clippy::unwrap_used)]

pub mod client;
pub mod cluster;
pub mod kernel;
pub mod master;
pub mod meta;
pub mod node;
#[cfg(feature = "planted-bugs")]
pub mod planted;
pub mod proto;

pub use kernel::{
    Actor, Addr, Ctx, Effect, Epoch, JobError, JobId, JobSpec, NodeId, Time, TimerId,
};
