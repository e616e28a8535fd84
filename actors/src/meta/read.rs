//! Read paths over [`MetaState`]: get, scan, tablet location lookup.
//!
//! Owns: how reads walk the state and how they are bounded. Must not: change the state.

use super::model::{
    Record, RecordKey, RecordKind, StatSubject, TabletId, TabletLocation, Versioned,
};
use super::state::MetaState;
use super::MetaError;
use crate::kernel::NodeId;
use std::collections::BTreeMap;
use std::ops::Bound;

impl MetaState {
    /// A record and its version.
    pub fn get(&self, key: &RecordKey) -> Option<Versioned<Record>> {
        let d = self.snapshot();
        match key {
            RecordKey::Table(k) => d.tables.get(k).map(|v| wrap(v, Record::Table)),
            RecordKey::Tablet(k) => d.tablets.get(k).map(|v| wrap(v, Record::Tablet)),
            RecordKey::Node(k) => d.nodes.get(k).map(|v| wrap(v, Record::Node)),
            RecordKey::Procedure(k) => d.procedures.get(k).map(|v| wrap(v, Record::Procedure)),
            RecordKey::Stat(k) => d.stats.get(k).map(|v| wrap(v, Record::Stat)),
        }
    }

    /// Up to `limit` records of `kind` in key order, strictly after `after`; and whether
    /// more follow.
    pub fn scan(
        &self,
        kind: RecordKind,
        after: Option<&RecordKey>,
        limit: usize,
    ) -> Result<(Vec<Versioned<Record>>, bool), MetaError> {
        if let Some(k) = after {
            if k.kind() != kind {
                return Err(MetaError::BadRequest(format!(
                    "scan of {kind:?} cannot start after {k}"
                )));
            }
        }
        let d = self.snapshot();
        Ok(match (kind, after) {
            (RecordKind::Table, Some(RecordKey::Table(k))) => {
                page(&d.tables, Some(k), limit, Record::Table)
            }
            (RecordKind::Table, _) => page(&d.tables, None, limit, Record::Table),
            (RecordKind::Tablet, Some(RecordKey::Tablet(k))) => {
                page(&d.tablets, Some(k), limit, Record::Tablet)
            }
            (RecordKind::Tablet, _) => page(&d.tablets, None, limit, Record::Tablet),
            (RecordKind::Node, Some(RecordKey::Node(k))) => {
                page(&d.nodes, Some(k), limit, Record::Node)
            }
            (RecordKind::Node, _) => page(&d.nodes, None, limit, Record::Node),
            (RecordKind::Procedure, Some(RecordKey::Procedure(k))) => {
                page(&d.procedures, Some(k), limit, Record::Procedure)
            }
            (RecordKind::Procedure, _) => page(&d.procedures, None, limit, Record::Procedure),
            (RecordKind::Stat, Some(RecordKey::Stat(k))) => {
                page(&d.stats, Some(k), limit, Record::Stat)
            }
            (RecordKind::Stat, _) => page(&d.stats, None::<&StatSubject>, limit, Record::Stat),
        })
    }

    /// The tablet of `table` that holds `row`, then the tablets after it in key order, up to
    /// `limit` in all. Stops at a gap (a row no tablet covers ends the run) so a client never
    /// caches a range as covered when it is not.
    pub fn locate(
        &self,
        table: &str,
        row: &[u8],
        limit: usize,
    ) -> Result<Vec<TabletLocation>, MetaError> {
        let d = self.snapshot();
        if !d.tables.contains_key(table) {
            return Err(MetaError::NotFound(RecordKey::Table(table.to_string())));
        }
        let index = self.tablet_index();
        let key = (table.to_string(), row.to_vec());
        let first = index
            .range(..=key.clone())
            .next_back()
            .filter(|((t, _), _)| t == table)
            .map(|(_, id)| *id)
            .and_then(|id| d.tablets.get(&id))
            .filter(|t| t.value.contains(row))
            .ok_or_else(|| {
                MetaError::BadRequest(format!("no tablet of {table:?} covers the row"))
            })?;
        let mut out = vec![self.location(first)];
        let mut end = first.value.end.clone();
        let following = index.range((Bound::Excluded(key), Bound::Unbounded));
        for ((t, start), id) in following {
            if out.len() >= limit || t != table || end.is_empty() || *start != end {
                break;
            }
            let Some(tablet) = d.tablets.get(id) else {
                break;
            };
            out.push(self.location(tablet));
            end = tablet.value.end.clone();
        }
        Ok(out)
    }

    fn location(&self, t: &Versioned<super::model::TabletRecord>) -> TabletLocation {
        let addr = t
            .value
            .assigned
            .and_then(|a| self.snapshot().nodes.get(&a.node))
            .map(|n| n.value.addr.clone());
        TabletLocation {
            tablet: t.value.id,
            start: t.value.start.clone(),
            end: t.value.end.clone(),
            status: t.value.status,
            version: t.value.version,
            record_version: t.version,
            assigned: t.value.assigned,
            addr,
        }
    }

    /// Tablets assigned to a node (the master uses this when the node dies).
    pub fn tablets_on(&self, node: NodeId) -> Vec<TabletId> {
        self.snapshot()
            .tablets
            .values()
            .filter(|t| t.value.assigned.is_some_and(|a| a.node == node))
            .map(|t| t.value.id)
            .collect()
    }
}

fn wrap<T: Clone>(v: &Versioned<T>, f: impl Fn(T) -> Record) -> Versioned<Record> {
    Versioned {
        version: v.version,
        value: f(v.value.clone()),
    }
}

fn page<K: Ord, T: Clone>(
    map: &BTreeMap<K, Versioned<T>>,
    after: Option<&K>,
    limit: usize,
    f: impl Fn(T) -> Record,
) -> (Vec<Versioned<Record>>, bool) {
    let lower = match after {
        Some(k) => Bound::Excluded(k),
        None => Bound::Unbounded,
    };
    let mut iter = map.range((lower, Bound::Unbounded));
    let records: Vec<_> = iter
        .by_ref()
        .take(limit)
        .map(|(_, v)| wrap(v, &f))
        .collect();
    let more = iter.next().is_some();
    (records, more)
}
