//! Conversions between wire shapes (`proto::data`, `meta::Schema`) and engine shapes
//! (`WriteBatch`, `ReadOptions`, `read::Schema`), and the input checks a node repeats after
//! the client (limits.rs, families, ranges).
//!
//! Must not: touch a tablet or decide fencing; it only reshapes and validates values.

use crate::meta::Schema as MetaSchema;
use crate::proto::data::{CellOut, Condition, DataError, Mutation, ReadFilter, RowOut};
use crate::proto::limits::{self, InputError};
use shale_storage::read::{Cell, ColumnFilter, FamilyRules, ReadOptions, Schema};
use shale_storage::tablet::WriteBatch;

/// The engine schema of a table schema.
pub fn engine_schema(s: &MetaSchema) -> Schema {
    let mut out = Schema::default();
    for f in &s.families {
        out.families.insert(
            f.name.as_bytes().to_vec(),
            FamilyRules {
                max_versions: f.max_versions,
                min_versions: f.min_versions,
                ttl_secs: (f.ttl_secs > 0).then_some(f.ttl_secs),
                locality_group: if f.locality_group.is_empty() {
                    shale_storage::read::DEFAULT_LOCALITY_GROUP.to_string()
                } else {
                    f.locality_group.clone()
                },
            },
        );
    }
    out
}

/// Is `row` in `[start, end)` (empty end = +inf)?
pub fn in_range(start: &[u8], end: &[u8], row: &[u8]) -> bool {
    row >= start && (end.is_empty() || row < end)
}

pub fn check_family(schema: &Schema, family: &str) -> Result<(), DataError> {
    if schema.families.contains_key(family.as_bytes()) {
        Ok(())
    } else {
        Err(DataError::NoSuchFamily(family.to_string()))
    }
}

/// Check one mutation's names and sizes against the limits and the schema.
pub fn check_mutation(schema: &Schema, m: &Mutation, value_max: usize) -> Result<(), DataError> {
    match m {
        Mutation::Put {
            family,
            qualifier,
            value,
            ..
        } => {
            check_family(schema, family)?;
            limits::check_qualifier(qualifier)?;
            limits::check_value(value, value_max)?;
        }
        Mutation::DeleteRow => {}
        Mutation::DeleteFamily { family } => check_family(schema, family)?,
        Mutation::DeleteColumn { family, qualifier }
        | Mutation::DeleteVersion {
            family, qualifier, ..
        } => {
            check_family(schema, family)?;
            limits::check_qualifier(qualifier)?;
        }
    }
    Ok(())
}

pub fn check_condition(schema: &Schema, c: &Condition, value_max: usize) -> Result<(), DataError> {
    match c {
        Condition::Absent { family, qualifier } => {
            check_family(schema, family)?;
            limits::check_qualifier(qualifier)?;
        }
        Condition::Equals {
            family,
            qualifier,
            value,
        } => {
            check_family(schema, family)?;
            limits::check_qualifier(qualifier)?;
            limits::check_value(value, value_max)?;
        }
    }
    Ok(())
}

pub fn check_filter(schema: &Schema, f: &ReadFilter) -> Result<(), DataError> {
    limits::check_count(
        "read columns",
        f.columns.len(),
        limits::FAMILIES_PER_TABLE_MAX * 16,
    )?;
    for c in &f.columns {
        check_family(schema, &c.family)?;
        if let Some(q) = &c.qualifier {
            limits::check_qualifier(q)?;
        }
    }
    if let Some((lo, hi)) = f.time_range {
        if lo >= hi {
            return Err(InputError::Invalid("empty time range".into()).into());
        }
    }
    if f.max_versions == Some(0) {
        return Err(InputError::Invalid("max_versions must be at least 1".into()).into());
    }
    Ok(())
}

/// Append one row's mutations to `batch`; `ts` is the server timestamp for cells without one
/// and for deletes.
pub fn add_row(batch: &mut WriteBatch, row: &[u8], mutations: &[Mutation], ts: u64) {
    for m in mutations {
        match m {
            Mutation::Put {
                family,
                qualifier,
                ts: cell_ts,
                value,
            } => batch.put(
                row,
                family.as_bytes(),
                qualifier,
                cell_ts.unwrap_or(ts),
                value,
            ),
            Mutation::DeleteRow => batch.delete_row(row, ts),
            Mutation::DeleteFamily { family } => batch.delete_family(row, family.as_bytes(), ts),
            Mutation::DeleteColumn { family, qualifier } => {
                batch.delete_column(row, family.as_bytes(), qualifier, ts)
            }
            Mutation::DeleteVersion {
                family,
                qualifier,
                ts: v,
            } => batch.delete_version(row, family.as_bytes(), qualifier, *v),
        }
    }
}

pub fn read_options(f: &ReadFilter, now_micros: u64) -> ReadOptions {
    ReadOptions {
        columns: f
            .columns
            .iter()
            .map(|c| match &c.qualifier {
                None => ColumnFilter::Family(c.family.as_bytes().to_vec()),
                Some(q) => ColumnFilter::Column(c.family.as_bytes().to_vec(), q.clone()),
            })
            .collect(),
        time_range: f.time_range.unwrap_or((0, u64::MAX)),
        max_versions: f.max_versions,
        now_micros,
        snapshot_seq: u64::MAX,
    }
}

/// Options that read only the newest version of one column.
pub fn column_options(family: &str, qualifier: &[u8], now_micros: u64) -> ReadOptions {
    ReadOptions {
        columns: vec![ColumnFilter::Column(
            family.as_bytes().to_vec(),
            qualifier.to_vec(),
        )],
        max_versions: Some(1),
        now_micros,
        ..ReadOptions::default()
    }
}

pub fn row_out(row: Vec<u8>, cells: Vec<Cell>) -> RowOut {
    RowOut {
        row,
        cells: cells
            .into_iter()
            .map(|c| CellOut {
                family: String::from_utf8_lossy(&c.family).into_owned(),
                qualifier: c.qualifier,
                ts: c.ts,
                value: c.value,
            })
            .collect(),
    }
}
