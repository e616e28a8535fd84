//! Leases: the master lease (acquire, renew, release) and the node registry (register,
//! heartbeat, marking expired nodes Down).
//!
//! Grants and releases of the master lease, registrations and Down marks are logged;
//! renewals and heartbeats only move an expiry in memory, because after a restart the store
//! grants every holder a full fresh lease anyway (see `NodeRecord::lease_expiry`). Expiries
//! are on the meta store's clock; a holder counts its lease from when it sent the request, on
//! its own clock, which can only make it stop early.
//!
//! Must not: decide what a master or node does when its lease ends.

use super::actor::MetaStore;
use super::catalog::CATALOG_NAME_BYTES_MAX;
use super::model::{MasterLease, NodeRecord, NodeStatus, Record};
use super::msg::MetaReply;
use super::state::{Change, DedupRecord, Origin};
use super::txn::Write;
use super::MetaError;
use crate::kernel::{Addr, Ctx, Epoch, NodeId};
use std::time::Duration;
use tracing::{info, warn};

impl MetaStore {
    /// Grant the lease to `from` if it is free, expired, or already `from`'s (then it is
    /// renewed, same term). A new holder gets the next term.
    pub(super) fn acquire_master_lease(
        &mut self,
        from: NodeId,
        addr: Addr,
        ctx: &mut Ctx<'_, Self>,
    ) -> Result<MetaReply, MetaError> {
        let now = ctx.now();
        let expiry = now.plus(self.config.master_lease);
        let duration_ms = duration_ms(self.config.master_lease);
        if let Some(l) = self.state.master_lease().filter(|l| now < l.expiry) {
            if l.holder != from {
                return Err(MetaError::LeaseTaken {
                    holder: l.holder,
                    term: l.term,
                });
            }
            if l.addr == addr {
                // A retry, or a master that lost track of its term: renew in place.
                let mut lease = l.clone();
                lease.expiry = expiry;
                self.state.set_master_lease_expiry(expiry);
                return Ok(MetaReply::Lease { lease, duration_ms });
            }
        }
        let term = self.state.marks().lease_term + 1;
        let lease = MasterLease {
            holder: from,
            addr,
            term,
            expiry,
        };
        info!(%from, term, "master lease granted");
        self.commit(Change::Lease(Some(lease.clone())), None, ctx);
        Ok(MetaReply::Lease { lease, duration_ms })
    }

    pub(super) fn renew_master_lease(
        &mut self,
        from: NodeId,
        term: u64,
        ctx: &mut Ctx<'_, Self>,
    ) -> Result<MetaReply, MetaError> {
        let now = ctx.now();
        if !self.state.lease_held(from, term, now) {
            return Err(self.lease_not_held(from, term));
        }
        let expiry = now.plus(self.config.master_lease);
        self.state.set_master_lease_expiry(expiry);
        let lease = self
            .state
            .master_lease()
            .cloned()
            .ok_or_else(|| self.lease_not_held(from, term))?;
        Ok(MetaReply::Lease {
            lease,
            duration_ms: duration_ms(self.config.master_lease),
        })
    }

    /// Release the lease if `from` holds it in `term`. Idempotent: releasing a lease one no
    /// longer holds is a success (that is what a retry after a lost reply looks like).
    pub(super) fn release_master_lease(
        &mut self,
        from: NodeId,
        term: u64,
        ctx: &mut Ctx<'_, Self>,
    ) -> Result<MetaReply, MetaError> {
        let held = self
            .state
            .master_lease()
            .is_some_and(|l| l.holder == from && l.term == term);
        if held {
            info!(%from, term, "master lease released");
            self.commit(Change::Lease(None), None, ctx);
        }
        Ok(MetaReply::Released)
    }

    fn lease_not_held(&self, holder: NodeId, term: u64) -> MetaError {
        MetaError::LeaseNotHeld {
            holder,
            term,
            current_holder: self.state.master_lease().map(|l| l.holder),
            current_term: self.state.marks().lease_term,
        }
    }

    /// Register `from` as a tablet node under `name` at `addr`, with a new, larger epoch.
    pub(super) fn register_node(
        &mut self,
        from: NodeId,
        name: String,
        addr: Addr,
        total_disk_bytes: u64,
        (origin, fingerprint): (Origin, u64),
        ctx: &mut Ctx<'_, Self>,
    ) -> Result<MetaReply, MetaError> {
        let limits = &self.config.txn;
        if name.is_empty()
            || name.len() > limits.name_bytes_max.min(CATALOG_NAME_BYTES_MAX)
            || addr.0.len() > limits.name_bytes_max
        {
            return Err(MetaError::BadRequest("bad node name or address".into()));
        }
        if let Some(other) = self
            .state
            .node_by_name(&name)
            .filter(|n| n.value.id != from)
        {
            return Err(MetaError::NodeNameTaken {
                name,
                node: other.value.id,
            });
        }
        let addr_taken = self.state.snapshot().nodes.values().find(|n| {
            n.value.id != from && n.value.addr == addr && n.value.status == NodeStatus::Up
        });
        if let Some(other) = addr_taken {
            return Err(MetaError::NodeAddressTaken {
                addr: addr.0,
                node: other.value.id,
            });
        }
        let now = ctx.now();
        let epoch = self.state.next_epoch();
        let node = NodeRecord {
            id: from,
            name,
            addr,
            status: NodeStatus::Up,
            epoch,
            lease_expiry: now.plus(self.config.node_lease),
            registered_at: now,
            total_disk_bytes,
        };
        let reply = MetaReply::Registered {
            node: from,
            epoch,
            lease_ms: duration_ms(self.config.node_lease),
        };
        let dedup = DedupRecord {
            origin,
            fingerprint,
            reply: reply.clone(),
        };
        info!(node = %from, %epoch, name = %node.name, "node registered");
        let writes = vec![Write::Put(Record::Node(node))];
        self.commit(Change::Writes(writes), Some(dedup), ctx);
        Ok(reply)
    }

    /// Extend the lease of `from` if it is Up and registered with `epoch`. A heartbeat with
    /// status `Down` or `Decommissioned` is a node saying goodbye: the status is logged and
    /// the lease ends, so nothing waits for the timeout.
    pub(super) fn heartbeat(
        &mut self,
        from: NodeId,
        epoch: Epoch,
        status: NodeStatus,
        ctx: &mut Ctx<'_, Self>,
    ) -> Result<MetaReply, MetaError> {
        let node = self
            .state
            .snapshot()
            .nodes
            .get(&from)
            .filter(|n| n.value.epoch == epoch)
            .ok_or(MetaError::NodeUnknown { node: from, epoch })?;
        if node.value.status != NodeStatus::Up {
            return Err(MetaError::NodeDown(from));
        }
        if status != NodeStatus::Up {
            let mut rec = node.value.clone();
            rec.status = status;
            rec.lease_expiry = ctx.now();
            info!(node = %from, ?status, "node left by heartbeat");
            self.commit(
                Change::Writes(vec![Write::Put(Record::Node(rec))]),
                None,
                ctx,
            );
            return Ok(MetaReply::HeartbeatAck { lease_ms: 0 });
        }
        let expiry = ctx.now().plus(self.config.node_lease);
        self.state.set_node_lease_expiry(from, expiry);
        Ok(MetaReply::HeartbeatAck {
            lease_ms: duration_ms(self.config.node_lease),
        })
    }

    /// Mark Down every Up node whose lease expired more than the margin ago, in one record.
    pub(super) fn mark_expired_nodes_down(&mut self, ctx: &mut Ctx<'_, Self>) {
        let now = ctx.now();
        let margin = self.config.node_down_margin;
        let writes: Vec<Write> = self
            .state
            .snapshot()
            .nodes
            .values()
            .filter(|n| n.value.status == NodeStatus::Up && now > n.value.lease_expiry.plus(margin))
            .take(self.config.txn.ops_max.max(1))
            .map(|n| {
                let mut down = n.value.clone();
                down.status = NodeStatus::Down;
                warn!(node = %down.id, epoch = %down.epoch, "node lease expired; marking it down");
                Write::Put(Record::Node(down))
            })
            .collect();
        if writes.is_empty() {
            return;
        }
        self.counters.nodes_marked_down += writes.len() as u64;
        self.commit(Change::Writes(writes), None, ctx);
    }
}

/// Whole milliseconds, saturating.
fn duration_ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}
