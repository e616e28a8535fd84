//! The global id mapping (the seed's `id_mapping`): a string gets a unique u32 the first
//! time anyone asks, and keeps it for good (the mapping is in the durable state, so it
//! survives restarts and is the same after replay).
//!
//! Owns: key validation and id allocation. Must not: reuse or free an id; ids only grow.

use super::actor::MetaStore;
use super::catalog::{CatalogOp, CATALOG_NAME_BYTES_MAX};
use super::msg::MetaReply;
use super::state::{Change, MetaState};
use super::MetaError;
use crate::kernel::Ctx;
use tracing::debug;

impl MetaState {
    pub fn id_of(&self, key: &str) -> Option<u32> {
        self.snapshot().ids.get(key).copied()
    }

    /// The ids of `keys`, allocating the missing ones after the mark. Returns the ids and the
    /// ops that create the new ones (to be committed with whatever uses them).
    pub(super) fn allocate_ids(
        &self,
        keys: &[String],
    ) -> Result<(Vec<u32>, Vec<CatalogOp>), MetaError> {
        let mut next = self.marks().id_next;
        let mut ids = Vec::with_capacity(keys.len());
        let mut ops: Vec<CatalogOp> = Vec::new();
        for key in keys {
            if key.is_empty() || key.len() > CATALOG_NAME_BYTES_MAX {
                return Err(MetaError::BadRequest(format!(
                    "id mapping key must be 1..={CATALOG_NAME_BYTES_MAX} bytes"
                )));
            }
            let known = self.id_of(key).or_else(|| {
                ops.iter().find_map(|op| match op {
                    CatalogOp::Id { key: k, id } if k == key => Some(*id),
                    _ => None,
                })
            });
            let id = match known {
                Some(id) => id,
                None => {
                    let id = next;
                    next = next
                        .checked_add(1)
                        .ok_or_else(|| MetaError::IdsExhausted("mapping".into()))?;
                    ops.push(CatalogOp::Id {
                        key: key.clone(),
                        id,
                    });
                    id
                }
            };
            ids.push(id);
        }
        Ok((ids, ops))
    }
}

impl MetaStore {
    pub(super) fn id_of_or_create(
        &mut self,
        key: String,
        ctx: &mut Ctx<'_, Self>,
    ) -> Result<MetaReply, MetaError> {
        let (ids, ops) = self.state.allocate_ids(std::slice::from_ref(&key))?;
        let id = ids
            .first()
            .copied()
            .ok_or_else(|| MetaError::IdsExhausted("mapping".into()))?;
        if !ops.is_empty() {
            debug!(key, id, "id mapping entry created");
            self.commit(Change::Catalog(ops), None, ctx);
        }
        Ok(MetaReply::Id(id))
    }
}
