//! Typed time-series table schemas: `insert_table_info` and `get_table_info`.
//!
//! Owns: the rules a schema must pass (identifier names, a valid partition count, dense and
//! unique column indexes, bounded sizes) and the ids it takes from the id mapping. Must not:
//! check row values (`shale_storage::ts::check_values` does, with the schema this returns)
//! or let a table change once created: partition layout and column types are baked into
//! files already written.

use super::actor::MetaStore;
use super::catalog::{
    column_key, is_identifier, table_key, CatalogOp, ColumnInfo, ColumnSpec, TsTableInfo,
    CATALOG_NAME_BYTES_MAX, COLUMNS_MAX,
};
use super::msg::MetaReply;
use super::state::{Change, MetaState};
use super::MetaError;
use crate::kernel::Ctx;
use shale_storage::ts::PartitionSpec;
use std::collections::BTreeSet;
use tracing::info;

impl MetaState {
    pub fn ts_table(&self, table: &str) -> Result<&TsTableInfo, MetaError> {
        self.snapshot()
            .ts_tables
            .get(table)
            .ok_or_else(|| MetaError::UnknownTable(table.to_string()))
    }
}

fn validate(table: &str, count: u32, columns: &[ColumnSpec]) -> Result<(), MetaError> {
    let bad = |why: String| Err(MetaError::BadSchema(why));
    if !is_identifier(table) {
        return bad(format!(
            "table name {table:?} must be 1..=255 of [A-Za-z0-9_-]"
        ));
    }
    PartitionSpec::new(count).map_err(|_| MetaError::BadPartitionCount(count))?;
    if columns.is_empty() || columns.len() > COLUMNS_MAX {
        return bad(format!("a table has 1..={COLUMNS_MAX} columns"));
    }
    let mut names = BTreeSet::new();
    let mut indexes = BTreeSet::new();
    for c in columns {
        if !is_identifier(&c.name) || column_key(table, &c.name).len() > CATALOG_NAME_BYTES_MAX {
            return bad(format!(
                "column name {:?} is not a short identifier",
                c.name
            ));
        }
        if c.comment.len() > CATALOG_NAME_BYTES_MAX {
            return bad(format!("comment of {:?} is over 255 bytes", c.name));
        }
        if !names.insert(c.name.as_str()) {
            return bad(format!("column {:?} appears twice", c.name));
        }
        if !indexes.insert(c.index) {
            return bad(format!("column index {} appears twice", c.index));
        }
    }
    // Indexes are positions in a row: they must be exactly 0..n.
    if indexes
        .last()
        .is_some_and(|&last| last as usize != columns.len() - 1)
    {
        return bad("column indexes must be 0..n without gaps".into());
    }
    Ok(())
}

impl MetaStore {
    /// Create a table. Asking again with the same definition answers the stored table (a
    /// retry after a lost reply); a different definition is `TableExists`.
    pub(super) fn insert_table_info(
        &mut self,
        table: String,
        partition_count_per_day: u32,
        mut columns: Vec<ColumnSpec>,
        ctx: &mut Ctx<'_, Self>,
    ) -> Result<MetaReply, MetaError> {
        validate(&table, partition_count_per_day, &columns)?;
        columns.sort_by_key(|c| c.index);
        if let Ok(existing) = self.state.ts_table(&table) {
            let same = existing.partition_count_per_day == partition_count_per_day
                && existing.columns.len() == columns.len()
                && existing.columns.iter().zip(&columns).all(|(a, b)| {
                    a.name == b.name
                        && a.column_type == b.column_type
                        && a.index == b.index
                        && a.comment == b.comment
                });
            return if same {
                Ok(MetaReply::Table(Box::new(existing.clone())))
            } else {
                Err(MetaError::TableExists(table))
            };
        }
        let mut keys = vec![table_key(&table)];
        keys.extend(columns.iter().map(|c| column_key(&table, &c.name)));
        let (ids, mut ops) = self.state.allocate_ids(&keys)?;
        let info = TsTableInfo {
            id: ids[0],
            name: table,
            partition_count_per_day,
            columns: columns
                .into_iter()
                .zip(&ids[1..])
                .map(|(c, &id)| ColumnInfo {
                    name: c.name,
                    column_type: c.column_type,
                    index: c.index,
                    id,
                    comment: c.comment,
                })
                .collect(),
        };
        info!(table = %info.name, partition_count_per_day, columns = info.columns.len(), "time-series table created");
        ops.push(CatalogOp::Table(info.clone()));
        self.commit(Change::Catalog(ops), None, ctx);
        Ok(MetaReply::Table(Box::new(info)))
    }

    pub(super) fn get_table_info(&self, table: &str) -> Result<MetaReply, MetaError> {
        Ok(MetaReply::Table(Box::new(
            self.state.ts_table(table)?.clone(),
        )))
    }
}
