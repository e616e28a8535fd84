//! The worker-node registry's read side and storage reports: node id by name, node info,
//! node listing, and `report_storage_info` with its bounded, timestamped history.
//!
//! Registration and heartbeats live in `lease.rs` (they carry the node's epoch and lease);
//! this file adds what the seed's meta server answers about nodes. Must not: decide where
//! partitions go (`placement.rs`) or touch a clock other than `ctx.now()`.

use super::actor::MetaStore;
use super::catalog::{split_addr, CatalogOp, NodeInfo, StorageReport};
use super::model::NodeRecord;
use super::msg::MetaReply;
use super::state::{Change, MetaState};
use super::MetaError;
use crate::kernel::{Ctx, NodeId};
use std::ops::Bound;
use tracing::debug;

impl MetaState {
    /// A node as callers see it, with its disk use.
    pub fn node_info(&self, n: &NodeRecord) -> NodeInfo {
        let (ip, port) = split_addr(&n.addr.0);
        let used = self.last_used_disk(n.id);
        NodeInfo {
            id: n.id,
            name: n.name.clone(),
            ip,
            port,
            status: n.status,
            total_disk_bytes: n.total_disk_bytes,
            used_disk_bytes: used,
            free_disk_bytes: n.total_disk_bytes.saturating_sub(used.unwrap_or(0)),
            storage_history: self
                .snapshot()
                .storage
                .get(&n.id)
                .cloned()
                .unwrap_or_default(),
        }
    }

    pub fn node_info_by_id(&self, node: NodeId) -> Result<NodeInfo, MetaError> {
        self.snapshot()
            .nodes
            .get(&node)
            .map(|n| self.node_info(&n.value))
            .ok_or(MetaError::UnknownNode(node))
    }
}

impl MetaStore {
    pub(super) fn get_node_id(&self, name: &str) -> Result<MetaReply, MetaError> {
        self.state
            .node_by_name(name)
            .map(|n| MetaReply::NodeIdIs(n.value.id))
            .ok_or_else(|| MetaError::UnknownNodeName(name.to_string()))
    }

    pub(super) fn get_node_info(&self, node: NodeId) -> Result<MetaReply, MetaError> {
        Ok(MetaReply::Node(Box::new(self.state.node_info_by_id(node)?)))
    }

    pub(super) fn list_nodes(&self, after: Option<NodeId>, limit: usize) -> MetaReply {
        let lower = after.map_or(Bound::Unbounded, Bound::Excluded);
        let mut it = self.state.snapshot().nodes.range((lower, Bound::Unbounded));
        let nodes: Vec<NodeInfo> = it
            .by_ref()
            .take(limit)
            .map(|(_, n)| self.state.node_info(&n.value))
            .collect();
        MetaReply::Nodes {
            nodes,
            more: it.next().is_some(),
        }
    }

    /// Record a node's used disk at the store's time. Any registered node may report, Down
    /// or not: a report is a fact about a disk, not a claim to be alive.
    pub(super) fn report_storage(
        &mut self,
        node: NodeId,
        used_disk_bytes: u64,
        ctx: &mut Ctx<'_, Self>,
    ) -> Result<MetaReply, MetaError> {
        if !self.state.snapshot().nodes.contains_key(&node) {
            return Err(MetaError::UnknownNode(node));
        }
        let report = StorageReport {
            at: ctx.now(),
            used_disk_bytes,
        };
        debug!(%node, used_disk_bytes, "storage reported");
        self.commit(
            Change::Catalog(vec![CatalogOp::Storage { node, report }]),
            None,
            ctx,
        );
        Ok(MetaReply::StorageReported)
    }
}
