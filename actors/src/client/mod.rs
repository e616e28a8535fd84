//! The client core: an I/O-free state machine that turns table operations into requests to
//! the meta store, tablet nodes and the master, and reports each operation's outcome as a
//! [`Completion`] event the embedding code drains (the simulated client role records them as
//! a history; a TCP host would hand them to callers).
//!
//! It caches tablet locations (filled by `Locate`, invalidated on stale answers), retries
//! refusals that mean "not applied here" (NotServing, KeyNotInRange, StaleVersion,
//! StaleEpoch, Busy, LeaseExpired) with bounded exponential backoff, splits batch writes by
//! tablet, continues scans across tablet boundaries in both directions, and checks input with
//! `proto::limits` before sending anything.
//!
//! A mutation whose answer never came (timeout) or whose node failed mid-way is reported
//! [`OpResult::Unknown`]: it may or may not have happened. It is never reported as failed, and
//! never retried, because a retry could apply it twice.
//!
//! Map: `cache.rs` the location cache; `core.rs` the [`Client`] actor (ops, requests, retries); `reply.rs` its answer handling;
//! `ops.rs` operation inputs, validation and results; `role.rs` the simulated client role.
//!
//! Must not: read a clock, sleep, or open a socket; time and randomness come through `Ctx`.

mod cache;
mod core;
mod ops;
mod reply;
mod role;
#[cfg(test)]
mod tests;

pub use self::core::{Client, ClientTimer};
pub use cache::LocationCache;
pub use ops::{ClientError, Completion, OpId, OpInput, OpOutput, OpResult};
pub use role::ClientRole;

use crate::kernel::NodeId;
use std::time::Duration;

#[derive(Clone, Debug)]
pub struct ClientConfig {
    /// The meta store.
    pub meta: NodeId,
    /// How long to wait for any answer.
    pub request_timeout: Duration,
    /// Retries of one operation after refusals before it fails.
    pub retries_max: u32,
    pub backoff_base: Duration,
    pub backoff_max: Duration,
    /// Tablets asked of one `Locate`.
    pub locate_batch: u32,
    pub cache_len_max: usize,
    /// Operations in flight at once; more are refused at the call.
    pub ops_in_flight_max: usize,
    /// Rows asked of one scan request.
    pub scan_batch_rows: u32,
    pub value_bytes_max: usize,
    /// Completions kept until drained; beyond it the oldest are dropped (and counted).
    pub completions_max: usize,
}

impl ClientConfig {
    pub fn new(meta: NodeId) -> Self {
        Self {
            meta,
            request_timeout: Duration::from_secs(2),
            retries_max: 20,
            backoff_base: Duration::from_millis(5),
            backoff_max: Duration::from_millis(500),
            locate_batch: 16,
            cache_len_max: 100_000,
            ops_in_flight_max: 1_024,
            scan_batch_rows: 1_000,
            value_bytes_max: crate::proto::limits::VALUE_BYTES_MAX_DEFAULT,
            completions_max: 100_000,
        }
    }
}
