//! Errors the executor's API returns. Only caller mistakes live here (unknown node, restarting
//! a running node, a bad config); faults inside a run are events, not errors.

use shale_actors::NodeId;

#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum SimError {
    #[error("node {0} is already in the simulation")]
    DuplicateNode(NodeId),
    #[error("no node {0} in the simulation")]
    UnknownNode(NodeId),
    #[error("node {0} is not running")]
    NodeNotUp(NodeId),
    #[error("node {0} is running; crash it before restarting it")]
    NodeUp(NodeId),
    #[error("node {0} was stopped for good")]
    NodeStopped(NodeId),
    #[error("invalid simulation config: {0}")]
    InvalidConfig(String),
}
