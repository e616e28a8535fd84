//! Environment faults as data: what a test or a scenario file can apply now
//! ([`crate::Sim::apply_fault`]) or at a given simulated time ([`crate::Sim::schedule`]).
//!
//! Owns the vocabulary only; the executor gives each fault its meaning. Must not refer to actor
//! types, so scenarios stay independent of what runs on the nodes.

use crate::{JobConfig, NetConfig, SimError};
use serde::{Deserialize, Serialize};
use shale_actors::NodeId;
use std::time::Duration;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Fault {
    /// Kill the node: its timers, jobs and the messages in flight to it are dropped, the crash
    /// hook runs (a simulated disk loses unsynced data), and the actor is dropped.
    Crash(NodeId),
    /// Rebuild a crashed node through its factory and call `on_start`.
    Restart(NodeId),
    /// Crash then restart at once.
    Reboot(NodeId),
    /// Crash (if running) and never allow a restart.
    Stop(NodeId),
    /// Messages between any node of `a` and any node of `b` are dropped, both ways.
    Partition {
        a: Vec<NodeId>,
        b: Vec<NodeId>,
    },
    /// Messages from any node of `from` to any node of `to` are dropped; the reverse flows.
    PartitionOneWay {
        from: Vec<NodeId>,
        to: Vec<NodeId>,
    },
    /// Remove every partition (clogs stay; see [`Fault::UnclogAll`]).
    Heal,
    /// Hold every message to or from the node until it is unclogged.
    Clog(NodeId),
    Unclog(NodeId),
    /// Hold messages on the directed link `from -> to` until it is unclogged.
    ClogLink {
        from: NodeId,
        to: NodeId,
    },
    UnclogLink {
        from: NodeId,
        to: NodeId,
    },
    /// Remove every node and link clog; held messages are sent on.
    UnclogAll,
    /// The node's clock reads true time plus `offset_ns` (saturating at zero).
    SetClockOffset {
        node: NodeId,
        offset_ns: i64,
    },
    /// The node processes nothing (messages, timers, jobs wait) for `duration`, as in a long GC
    /// pause or a stopped VM.
    Pause {
        node: NodeId,
        duration: Duration,
    },
    /// Replace the network model (latency, loss, duplication, reordering).
    SetNet(NetConfig),
    /// Replace the job model (duration jitter, failure probability).
    SetJobs(JobConfig),
    /// The node's jobs (flush, compaction, load: its disk work) take `factor` times their
    /// estimate: a slow disk. A factor of 1 restores normal speed. Appended last so the trace
    /// hashes of older faults stay the same.
    SlowJobs {
        node: NodeId,
        factor: u32,
    },
}

impl Fault {
    /// Checks what can be checked without the executor's state, so a scheduled fault cannot
    /// fail for a reason the caller could have been told about up front.
    pub fn validate(&self) -> Result<(), SimError> {
        match self {
            Fault::SetNet(net) => net.validate(),
            Fault::SetJobs(jobs) => jobs.validate(),
            Fault::SlowJobs { factor: 0, .. } => Err(SimError::InvalidConfig(
                "a slow-jobs factor must be at least 1".into(),
            )),
            _ => Ok(()),
        }
    }
}
