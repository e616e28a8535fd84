//! Input limits and name rules, checked at the client and again at the server, so bad input
//! gets a clear typed error before it costs anything and a buggy client still cannot harm a
//! server.

use serde::{Deserialize, Serialize};

/// A row key's hard limit (Bigtable's is 64 KiB).
pub const ROW_KEY_BYTES_MAX: usize = 64 * 1024;
/// A qualifier's hard limit.
pub const QUALIFIER_BYTES_MAX: usize = 16 * 1024;
/// The default limit for one cell's value; configurable per cluster up to the frame limit.
pub const VALUE_BYTES_MAX_DEFAULT: usize = 32 * 1024 * 1024;
/// Table and family names: 1..=NAME_BYTES_MAX of `[A-Za-z0-9_.-]`, starting with a letter or
/// digit (they become path components and appear on command lines).
pub const NAME_BYTES_MAX: usize = 128;
/// A table's families.
pub const FAMILIES_PER_TABLE_MAX: usize = 256;
/// Pre-split keys when creating a table.
pub const PRESPLIT_KEYS_MAX: usize = 4096;
/// Rows one scan request may ask for.
pub const SCAN_ROWS_PER_REQUEST_MAX: u32 = 10_000;
/// Mutations in one request.
pub const MUTATIONS_PER_REQUEST_MAX: usize = 100_000;

/// Why an input was refused.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum InputError {
    #[error("{what} name {name:?} is invalid: {why}")]
    BadName {
        what: String,
        name: String,
        why: String,
    },
    #[error("row key of {len} bytes exceeds the limit of {max}")]
    RowTooLarge { len: usize, max: usize },
    #[error("row key must not be empty")]
    EmptyRow,
    #[error("qualifier of {len} bytes exceeds the limit of {max}")]
    QualifierTooLarge { len: usize, max: usize },
    #[error("value of {len} bytes exceeds the limit of {max}")]
    ValueTooLarge { len: usize, max: usize },
    #[error("{what}: {count} exceeds the limit of {max}")]
    TooMany {
        what: String,
        count: usize,
        max: usize,
    },
    #[error("{0}")]
    Invalid(String),
}

/// Check a table or family name.
pub fn check_name(what: &str, name: &str) -> Result<(), InputError> {
    let bad = |why: &str| InputError::BadName {
        what: what.to_string(),
        name: name.to_string(),
        why: why.to_string(),
    };
    if name.is_empty() {
        return Err(bad("empty"));
    }
    if name.len() > NAME_BYTES_MAX {
        return Err(bad(&format!("longer than {NAME_BYTES_MAX} bytes")));
    }
    if !name.as_bytes()[0].is_ascii_alphanumeric() {
        return Err(bad("must start with a letter or digit"));
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.')))
    {
        return Err(bad(&format!(
            "character {c:?} not allowed (use A-Z a-z 0-9 _ - .)"
        )));
    }
    Ok(())
}

pub fn check_row(row: &[u8]) -> Result<(), InputError> {
    if row.is_empty() {
        return Err(InputError::EmptyRow);
    }
    if row.len() > ROW_KEY_BYTES_MAX {
        return Err(InputError::RowTooLarge {
            len: row.len(),
            max: ROW_KEY_BYTES_MAX,
        });
    }
    Ok(())
}

pub fn check_qualifier(q: &[u8]) -> Result<(), InputError> {
    if q.len() > QUALIFIER_BYTES_MAX {
        return Err(InputError::QualifierTooLarge {
            len: q.len(),
            max: QUALIFIER_BYTES_MAX,
        });
    }
    Ok(())
}

pub fn check_value(v: &[u8], max: usize) -> Result<(), InputError> {
    if v.len() > max {
        return Err(InputError::ValueTooLarge { len: v.len(), max });
    }
    Ok(())
}

pub fn check_count(what: &str, count: usize, max: usize) -> Result<(), InputError> {
    if count > max {
        return Err(InputError::TooMany {
            what: what.to_string(),
            count,
            max,
        });
    }
    Ok(())
}
