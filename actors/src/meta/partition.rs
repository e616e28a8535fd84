//! Day partitions of time-series tables: `get_partition_infos` (creating and placing a
//! day's partitions on first need) and `move_partition` (the only way one changes node).
//!
//! Owns: the mapping of a timestamp to its day's partitions and the rule that placement is
//! decided once, logged, and never changed silently: node death does not move a partition
//! (its files are on that node's disk); an operator or a future balancer moves it with
//! `MovePartition`, which is logged. Must not: choose nodes itself (`placement.rs`) or read
//! a clock other than `ctx.now()`.

use super::actor::MetaStore;
use super::catalog::{CatalogOp, PartitionInfo, PartitionRecord};
use super::model::NodeStatus;
use super::msg::MetaReply;
use super::placement::{place, Candidate};
use super::state::{Change, MetaState};
use super::MetaError;
use crate::kernel::{Ctx, NodeId};
use shale_storage::ts::{PartitionSlot, PartitionSpec, TimeError};
use std::collections::{BTreeMap, BTreeSet};
use tracing::{info, warn};

fn time_error(e: TimeError) -> MetaError {
    match e {
        TimeError::BadPartitionCount(n) => MetaError::BadPartitionCount(n),
        TimeError::TimestampOutOfRange(t) => MetaError::TimestampOutOfRange(t),
        other => MetaError::BadRequest(other.to_string()),
    }
}

impl MetaState {
    fn spec_of(&self, table: &str) -> Result<PartitionSpec, MetaError> {
        let t = self.ts_table(table)?;
        PartitionSpec::new(t.partition_count_per_day).map_err(time_error)
    }

    /// A partition as callers see it.
    pub fn partition_info(&self, p: &PartitionRecord) -> Result<PartitionInfo, MetaError> {
        let spec = self.spec_of(&p.table)?;
        let (start, end) = spec
            .range_ms(PartitionSlot {
                date: p.date,
                index: p.index,
            })
            .map_err(time_error)?;
        let node = self.node_info_by_id(p.node);
        // A partition's node may have been deleted by an operator; the partition still names
        // it, with an empty address, so the caller sees the problem instead of a wrong node.
        let (name, ip, port, status) = match node {
            Ok(n) => (n.name, n.ip, n.port, n.status),
            Err(_) => (String::new(), String::new(), 0, NodeStatus::Down),
        };
        Ok(PartitionInfo {
            id: p.id,
            table: p.table.clone(),
            date: p.date,
            index: p.index,
            node: p.node,
            worker_name: name,
            worker_ip: ip,
            worker_port: port,
            worker_status: status,
            time_start_ms: start,
            time_end_ms: end,
        })
    }

    /// The existing partitions of `table` on `date`, in index order.
    pub fn day_partitions(&self, table: &str, date: u32) -> Vec<&PartitionRecord> {
        let lo = (table.to_string(), date, 0);
        let hi = (table.to_string(), date, u32::MAX);
        self.snapshot()
            .partitions
            .range(lo..=hi)
            .map(|(_, p)| p)
            .collect()
    }

    /// Placement candidates for `date`: live nodes with their free disk and the partitions
    /// of that date (all tables) they already hold.
    fn candidates(&self, date: u32) -> Vec<Candidate> {
        let d = self.snapshot();
        let mut placed: BTreeMap<NodeId, u32> = BTreeMap::new();
        for p in d.partitions.values().filter(|p| p.date == date) {
            *placed.entry(p.node).or_insert(0) += 1;
        }
        d.nodes
            .values()
            .filter(|n| n.value.status == NodeStatus::Up)
            .map(|n| Candidate {
                node: n.value.id,
                free_disk_bytes: n
                    .value
                    .total_disk_bytes
                    .saturating_sub(self.last_used_disk(n.value.id).unwrap_or(0)),
                placed_today: placed.get(&n.value.id).copied().unwrap_or(0),
            })
            .collect()
    }
}

impl MetaStore {
    pub(super) fn get_partition_infos(
        &mut self,
        table: &str,
        timestamp_ms: u64,
        create: bool,
        ctx: &mut Ctx<'_, Self>,
    ) -> Result<MetaReply, MetaError> {
        let spec = self.state.spec_of(table)?;
        let slot = spec.slot_of(timestamp_ms).map_err(time_error)?;
        let existing = self.state.day_partitions(table, slot.date);
        if create && existing.len() < spec.count() as usize {
            let have: BTreeSet<u32> = existing.iter().map(|p| p.index).collect();
            let table_nodes: BTreeSet<NodeId> = existing.iter().map(|p| p.node).collect();
            let missing: Vec<u32> = (0..spec.count()).filter(|i| !have.contains(i)).collect();
            let nodes = place(
                &self.state.candidates(slot.date),
                &table_nodes,
                missing.len(),
                self.config.placement_spread_max,
            )
            .ok_or(MetaError::NoLiveNode)?;
            let mut next = self.state.marks().partition_next;
            let mut ops = Vec::with_capacity(missing.len());
            for (index, node) in missing.into_iter().zip(nodes) {
                ops.push(CatalogOp::Partition(PartitionRecord {
                    id: next,
                    table: table.to_string(),
                    date: slot.date,
                    index,
                    node,
                    created_at: ctx.now(),
                    moves: 0,
                }));
                next = next
                    .checked_add(1)
                    .ok_or_else(|| MetaError::IdsExhausted("partition".into()))?;
            }
            info!(
                table,
                date = slot.date,
                created = ops.len(),
                "partitions placed"
            );
            self.commit(Change::Catalog(ops), None, ctx);
        }
        let infos = self
            .state
            .day_partitions(table, slot.date)
            .into_iter()
            .map(|p| self.state.partition_info(p))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(MetaReply::Partitions(infos))
    }

    pub(super) fn move_partition(
        &mut self,
        table: &str,
        date: u32,
        index: u32,
        to: NodeId,
        ctx: &mut Ctx<'_, Self>,
    ) -> Result<MetaReply, MetaError> {
        self.state.spec_of(table)?;
        let unknown = || MetaError::UnknownPartition {
            table: table.to_string(),
            date,
            index,
        };
        let mut p = self
            .state
            .snapshot()
            .partitions
            .get(&(table.to_string(), date, index))
            .cloned()
            .ok_or_else(unknown)?;
        let target = self.state.node_info_by_id(to)?;
        if target.status != NodeStatus::Up {
            return Err(MetaError::NodeDown(to));
        }
        if p.node != to {
            // Moving the files is the caller's job (copy, publish with SUCCESS, then move);
            // this record is what makes readers go to the new node.
            warn!(table, date, index, from = %p.node, %to, "partition moved");
            p.node = to;
            p.moves = p.moves.saturating_add(1);
            self.commit(
                Change::Catalog(vec![CatalogOp::Partition(p.clone())]),
                None,
                ctx,
            );
        }
        Ok(MetaReply::Partitions(vec![self
            .state
            .partition_info(&p)?]))
    }
}
