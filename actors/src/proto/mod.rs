//! The cluster's wire protocol: every message the master, tablet nodes, the meta store and
//! clients exchange, as one [`ClusterMsg`] enum (an actor has one message type; the cluster
//! runs one enum actor wrapping the roles).
//!
//! Owns: message shapes, request/response matching, the typed errors a caller can act on, and
//! the input limits both clients and servers check ([`limits`]).
//! Must not: contain behaviour. Carrying messages is the host's job; answering them is the
//! roles'.
//!
//! Every request carries a sender-chosen [`RequestId`] (unique per sender incarnation; put the
//! epoch in the high bits after a restart). Requests to a tablet node carry the tablet version
//! and node epoch the sender believes in, so a stale sender is refused with a typed error
//! (fencing); requests from a master carry its lease term.

pub mod admin;
pub mod control;
pub mod data;
pub mod limits;

use crate::meta::MetaMsg;
pub use crate::meta::RequestId;
use serde::{Deserialize, Serialize};

/// Everything that crosses the network between Shale processes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ClusterMsg {
    /// To and from the meta store.
    Meta(MetaMsg),
    /// Master to tablet node, and the node's replies.
    Control(control::ControlMsg),
    /// Client to tablet node (the data path), and the node's replies.
    Data(data::DataMsg),
    /// Client to master (DDL and operator calls), and the master's replies.
    Admin(admin::AdminMsg),
}

#[cfg(test)]
mod tests;
