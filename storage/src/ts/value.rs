//! Column types and typed values of time-series tables, the value checker, and the byte
//! encoding of a row's values inside partition files.
//!
//! Owns: [`ColumnType`] (with the names schemas use), [`Value`], [`check_values`] and
//! [`encode_values`] / [`decode_values`]. Must not: know where a schema comes from (the meta
//! store) or where rows go (`files.rs`).

use serde::{Deserialize, Serialize};
use std::fmt;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ColumnType {
    Bool,
    I32,
    I64,
    U32,
    U64,
    F32,
    F64,
    String,
    Bytes,
    /// Milliseconds since the Unix epoch, UTC.
    Timestamp,
}

impl ColumnType {
    pub const ALL: [ColumnType; 10] = [
        ColumnType::Bool,
        ColumnType::I32,
        ColumnType::I64,
        ColumnType::U32,
        ColumnType::U64,
        ColumnType::F32,
        ColumnType::F64,
        ColumnType::String,
        ColumnType::Bytes,
        ColumnType::Timestamp,
    ];

    /// The name stored in `column_info.column_type`.
    pub fn name(self) -> &'static str {
        match self {
            ColumnType::Bool => "bool",
            ColumnType::I32 => "i32",
            ColumnType::I64 => "i64",
            ColumnType::U32 => "u32",
            ColumnType::U64 => "u64",
            ColumnType::F32 => "f32",
            ColumnType::F64 => "f64",
            ColumnType::String => "string",
            ColumnType::Bytes => "bytes",
            ColumnType::Timestamp => "timestamp",
        }
    }

    /// Parse a type name; also takes the protobuf-style spellings the seed's users know.
    pub fn parse(s: &str) -> Option<ColumnType> {
        Some(match s.to_ascii_lowercase().as_str() {
            "bool" | "boolean" => ColumnType::Bool,
            "i32" | "int32" => ColumnType::I32,
            "i64" | "int64" => ColumnType::I64,
            "u32" | "uint32" => ColumnType::U32,
            "u64" | "uint64" => ColumnType::U64,
            "f32" | "float" => ColumnType::F32,
            "f64" | "double" => ColumnType::F64,
            "string" | "str" => ColumnType::String,
            "bytes" => ColumnType::Bytes,
            "timestamp" => ColumnType::Timestamp,
            _ => return None,
        })
    }

    fn tag(self) -> u8 {
        match self {
            ColumnType::Bool => 1,
            ColumnType::I32 => 2,
            ColumnType::I64 => 3,
            ColumnType::U32 => 4,
            ColumnType::U64 => 5,
            ColumnType::F32 => 6,
            ColumnType::F64 => 7,
            ColumnType::String => 8,
            ColumnType::Bytes => 9,
            ColumnType::Timestamp => 10,
        }
    }

    fn from_tag(tag: u8) -> Option<ColumnType> {
        ColumnType::ALL.into_iter().find(|t| t.tag() == tag)
    }
}

impl fmt::Display for ColumnType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One typed value. Null is allowed in any column.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Value {
    Null,
    Bool(bool),
    I32(i32),
    I64(i64),
    U32(u32),
    U64(u64),
    F32(f32),
    F64(f64),
    String(String),
    Bytes(Vec<u8>),
    Timestamp(u64),
}

impl Value {
    /// The type this value has (None for null, which fits every column).
    pub fn column_type(&self) -> Option<ColumnType> {
        Some(match self {
            Value::Null => return None,
            Value::Bool(_) => ColumnType::Bool,
            Value::I32(_) => ColumnType::I32,
            Value::I64(_) => ColumnType::I64,
            Value::U32(_) => ColumnType::U32,
            Value::U64(_) => ColumnType::U64,
            Value::F32(_) => ColumnType::F32,
            Value::F64(_) => ColumnType::F64,
            Value::String(_) => ColumnType::String,
            Value::Bytes(_) => ColumnType::Bytes,
            Value::Timestamp(_) => ColumnType::Timestamp,
        })
    }

    /// Parse text (from a command line or a file) as a value of type `ty`. Empty is null.
    pub fn parse(ty: ColumnType, s: &str) -> Result<Value, ValueError> {
        let bad = || ValueError::Unparsable {
            text: s.to_string(),
            ty,
        };
        if s.is_empty() && ty != ColumnType::String && ty != ColumnType::Bytes {
            return Ok(Value::Null);
        }
        Ok(match ty {
            ColumnType::Bool => Value::Bool(s.parse().map_err(|_| bad())?),
            ColumnType::I32 => Value::I32(s.parse().map_err(|_| bad())?),
            ColumnType::I64 => Value::I64(s.parse().map_err(|_| bad())?),
            ColumnType::U32 => Value::U32(s.parse().map_err(|_| bad())?),
            ColumnType::U64 => Value::U64(s.parse().map_err(|_| bad())?),
            ColumnType::F32 => Value::F32(s.parse().map_err(|_| bad())?),
            ColumnType::F64 => Value::F64(s.parse().map_err(|_| bad())?),
            ColumnType::String => Value::String(s.to_string()),
            ColumnType::Bytes => Value::Bytes(s.as_bytes().to_vec()),
            ColumnType::Timestamp => Value::Timestamp(s.parse().map_err(|_| bad())?),
        })
    }
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Null => f.write_str("null"),
            Value::Bool(v) => write!(f, "{v}"),
            Value::I32(v) => write!(f, "{v}"),
            Value::I64(v) => write!(f, "{v}"),
            Value::U32(v) => write!(f, "{v}"),
            Value::U64(v) => write!(f, "{v}"),
            Value::F32(v) => write!(f, "{v}"),
            Value::F64(v) => write!(f, "{v}"),
            Value::String(v) => write!(f, "{v:?}"),
            Value::Bytes(v) => write!(f, "{}", String::from_utf8_lossy(v)),
            Value::Timestamp(v) => write!(f, "{v}"),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
pub enum ValueError {
    /// A value's type differs from its column's.
    #[error("column {column:?} is {expected}, got {got}")]
    TypeMismatch {
        column: String,
        expected: ColumnType,
        got: ColumnType,
    },
    #[error("row has {got} values, the table has {expected} columns")]
    WrongArity { expected: usize, got: usize },
    #[error("{text:?} is not a {ty}")]
    Unparsable { text: String, ty: ColumnType },
    #[error("bad value encoding: {0}")]
    Corrupt(String),
}

/// Check a row's values against its columns `(name, type)`, in column-index order.
pub fn check_values(columns: &[(String, ColumnType)], values: &[Value]) -> Result<(), ValueError> {
    if columns.len() != values.len() {
        return Err(ValueError::WrongArity {
            expected: columns.len(),
            got: values.len(),
        });
    }
    for ((name, ty), v) in columns.iter().zip(values) {
        match v.column_type() {
            Some(got) if got != *ty => {
                return Err(ValueError::TypeMismatch {
                    column: name.clone(),
                    expected: *ty,
                    got,
                })
            }
            _ => {}
        }
    }
    Ok(())
}

/// Values as bytes: per value a tag (0 = null, else the type's tag) and its payload
/// (fixed-width little endian; strings and bytes with a u32 length).
pub fn encode_values(values: &[Value], out: &mut Vec<u8>) {
    for v in values {
        out.push(v.column_type().map_or(0, ColumnType::tag));
        match v {
            Value::Null => {}
            Value::Bool(b) => out.push(u8::from(*b)),
            Value::I32(x) => out.extend_from_slice(&x.to_le_bytes()),
            Value::I64(x) => out.extend_from_slice(&x.to_le_bytes()),
            Value::U32(x) => out.extend_from_slice(&x.to_le_bytes()),
            Value::U64(x) | Value::Timestamp(x) => out.extend_from_slice(&x.to_le_bytes()),
            Value::F32(x) => out.extend_from_slice(&x.to_le_bytes()),
            Value::F64(x) => out.extend_from_slice(&x.to_le_bytes()),
            Value::String(s) => put_bytes(out, s.as_bytes()),
            Value::Bytes(b) => put_bytes(out, b),
        }
    }
}

fn put_bytes(out: &mut Vec<u8>, b: &[u8]) {
    // A value over 4 GiB cannot reach here: the ingest limits rows far below that.
    out.extend_from_slice(&(b.len() as u32).to_le_bytes());
    out.extend_from_slice(b);
}

pub fn decode_values(mut b: &[u8]) -> Result<Vec<Value>, ValueError> {
    fn take<'a>(b: &mut &'a [u8], n: usize) -> Result<&'a [u8], ValueError> {
        if b.len() < n {
            return Err(ValueError::Corrupt(format!(
                "need {n} bytes, have {}",
                b.len()
            )));
        }
        let (head, rest) = b.split_at(n);
        *b = rest;
        Ok(head)
    }
    fn arr<const N: usize>(b: &mut &[u8]) -> Result<[u8; N], ValueError> {
        let mut a = [0u8; N];
        a.copy_from_slice(take(b, N)?);
        Ok(a)
    }
    let mut out = Vec::new();
    while let Some((&tag, rest)) = b.split_first() {
        b = rest;
        if tag == 0 {
            out.push(Value::Null);
            continue;
        }
        let ty = ColumnType::from_tag(tag)
            .ok_or_else(|| ValueError::Corrupt(format!("unknown type tag {tag}")))?;
        out.push(match ty {
            ColumnType::Bool => Value::Bool(arr::<1>(&mut b)?[0] != 0),
            ColumnType::I32 => Value::I32(i32::from_le_bytes(arr(&mut b)?)),
            ColumnType::I64 => Value::I64(i64::from_le_bytes(arr(&mut b)?)),
            ColumnType::U32 => Value::U32(u32::from_le_bytes(arr(&mut b)?)),
            ColumnType::U64 => Value::U64(u64::from_le_bytes(arr(&mut b)?)),
            ColumnType::F32 => Value::F32(f32::from_le_bytes(arr(&mut b)?)),
            ColumnType::F64 => Value::F64(f64::from_le_bytes(arr(&mut b)?)),
            ColumnType::Timestamp => Value::Timestamp(u64::from_le_bytes(arr(&mut b)?)),
            ColumnType::String | ColumnType::Bytes => {
                let n = u32::from_le_bytes(arr(&mut b)?) as usize;
                let bytes = take(&mut b, n)?.to_vec();
                if ty == ColumnType::Bytes {
                    Value::Bytes(bytes)
                } else {
                    Value::String(
                        String::from_utf8(bytes).map_err(|e| {
                            ValueError::Corrupt(format!("string is not UTF-8: {e}"))
                        })?,
                    )
                }
            }
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cols() -> Vec<(String, ColumnType)> {
        ColumnType::ALL
            .iter()
            .map(|t| (format!("c_{t}"), *t))
            .collect()
    }

    fn sample() -> Vec<Value> {
        vec![
            Value::Bool(true),
            Value::I32(-5),
            Value::I64(i64::MIN),
            Value::U32(7),
            Value::Null,
            Value::F32(1.5),
            Value::F64(-0.25),
            Value::String("héllo".into()),
            Value::Bytes(vec![0, 255]),
            Value::Timestamp(1_700_000_000_000),
        ]
    }

    #[test]
    fn every_type_round_trips_and_checks() {
        let v = sample();
        assert_eq!(check_values(&cols(), &v), Ok(()));
        let mut b = Vec::new();
        encode_values(&v, &mut b);
        assert_eq!(decode_values(&b), Ok(v));
        for t in ColumnType::ALL {
            assert_eq!(ColumnType::parse(t.name()), Some(t));
        }
        assert_eq!(ColumnType::parse("decimal"), None);
    }

    #[test]
    fn mismatches_are_typed() {
        let mut v = sample();
        v[1] = Value::I64(1);
        assert_eq!(
            check_values(&cols(), &v),
            Err(ValueError::TypeMismatch {
                column: "c_i32".into(),
                expected: ColumnType::I32,
                got: ColumnType::I64
            })
        );
        assert_eq!(
            check_values(&cols(), &v[..3]),
            Err(ValueError::WrongArity {
                expected: 10,
                got: 3
            })
        );
        assert!(matches!(
            Value::parse(ColumnType::U32, "-1"),
            Err(ValueError::Unparsable { .. })
        ));
        assert!(
            decode_values(&[8, 9, 0, 0, 0, b'x']).is_err(),
            "short string"
        );
        assert!(decode_values(&[42]).is_err(), "unknown tag");
    }
}
