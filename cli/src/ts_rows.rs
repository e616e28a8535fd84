//! Input and output forms of time-series rows for `shale ts`: times (milliseconds or UTC
//! dates), CSV and JSON Lines rows checked against a table's column types, and rows as text
//! or JSON.
//!
//! Owns: the text forms only. Must not: talk to the cluster or touch partition files
//! (`ts.rs` does).

use serde_json::{json, Map, Value as Json};
use shale_client::catalog::{ColumnType, TsTableInfo, Value};
use shale_storage::ts::civil::{days_from_civil, MS_PER_DAY};
use shale_storage::ts::{Row, ValueError};

#[derive(Debug, thiserror::Error)]
pub enum RowError {
    #[error("bad time {0:?}: use milliseconds since the epoch, YYYY-MM-DD or YYYY-MM-DDTHH:MM:SS[.mmm]Z")]
    Time(String),
    #[error("line {line}: {why}")]
    Line { line: usize, why: String },
    #[error("line {line}: {err}")]
    Value { line: usize, err: ValueError },
}

/// Milliseconds since the epoch, or a UTC date or date-time (`2024-05-01`,
/// `2024-05-01T12:30:00Z`, `2024-05-01T12:30:00.250Z`).
pub fn parse_time(s: &str) -> Result<u64, RowError> {
    let bad = || RowError::Time(s.to_string());
    if let Ok(ms) = s.parse::<u64>() {
        return Ok(ms);
    }
    let (date, time) = match s.split_once('T') {
        Some((d, t)) => (d, Some(t.strip_suffix('Z').ok_or_else(bad)?)),
        None => (s, None),
    };
    let mut d = date.splitn(3, '-');
    let mut num = |max: u32| -> Result<u32, RowError> {
        let v: u32 = d.next().ok_or_else(bad)?.parse().map_err(|_| bad())?;
        (v <= max).then_some(v).ok_or_else(bad)
    };
    let (y, m, day) = (num(9999)?, num(12)?, num(31)?);
    if y < 1970 || m == 0 || day == 0 {
        return Err(bad());
    }
    let days = u64::try_from(days_from_civil(i64::from(y), m, day)).map_err(|_| bad())?;
    let mut ms = days * MS_PER_DAY;
    if let Some(t) = time {
        let (hms, frac) = t.split_once('.').unwrap_or((t, "0"));
        let parts: Vec<&str> = hms.split(':').collect();
        let [h, mi, sec] = parts[..] else {
            return Err(bad());
        };
        let field = |v: &str, max: u64| -> Result<u64, RowError> {
            let n: u64 = v.parse().map_err(|_| bad())?;
            (n <= max).then_some(n).ok_or_else(bad)
        };
        if frac.is_empty() || frac.len() > 3 {
            return Err(bad());
        }
        // ".25" is 250 ms: pad the fraction to three digits.
        let frac_ms = field(&format!("{frac:0<3}"), 999)?;
        ms += ((field(h, 23)? * 60 + field(mi, 59)?) * 60 + field(sec, 59)?) * 1_000 + frac_ms;
    }
    Ok(ms)
}

/// One CSV record: fields split on commas; a field in double quotes may hold commas, and
/// `""` inside it is one quote.
pub fn csv_fields(line: &str) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut chars = line.chars().peekable();
    let mut quoted = false;
    let mut was_quoted = false;
    while let Some(c) = chars.next() {
        match (quoted, c) {
            (true, '"') if chars.peek() == Some(&'"') => {
                chars.next();
                cur.push('"');
            }
            (true, '"') => quoted = false,
            (true, c) => cur.push(c),
            (false, '"') if cur.is_empty() && !was_quoted => {
                quoted = true;
                was_quoted = true;
            }
            (false, ',') => {
                out.push(std::mem::take(&mut cur));
                was_quoted = false;
            }
            (false, c) => cur.push(c),
        }
    }
    if quoted {
        return Err("unterminated quoted field".into());
    }
    out.push(cur);
    Ok(out)
}

fn value_err(line: usize) -> impl Fn(ValueError) -> RowError {
    move |err| RowError::Value { line, err }
}

/// A CSV row `TIME,KEY,VALUE...` with one value per column in index order.
pub fn csv_row(table: &TsTableInfo, text: &str, line: usize) -> Result<Row, RowError> {
    let fields = csv_fields(text).map_err(|why| RowError::Line { line, why })?;
    if fields.len() != table.columns.len() + 2 {
        return Err(RowError::Value {
            line,
            err: ValueError::WrongArity {
                expected: table.columns.len(),
                got: fields.len().saturating_sub(2),
            },
        });
    }
    let timestamp_ms = parse_time(&fields[0]).map_err(|e| RowError::Line {
        line,
        why: e.to_string(),
    })?;
    let values = table
        .columns
        .iter()
        .zip(&fields[2..])
        .map(|(c, f)| Value::parse(c.column_type, f))
        .collect::<Result<Vec<_>, _>>()
        .map_err(value_err(line))?;
    Ok(Row {
        timestamp_ms,
        key: fields[1].as_bytes().to_vec(),
        values,
    })
}

/// A JSON value as a column's value; a JSON type that does not fit is a type error.
fn json_value(ty: ColumnType, v: &Json) -> Result<Value, ValueError> {
    let mismatch = || ValueError::Unparsable {
        text: v.to_string(),
        ty,
    };
    let int = |v: &Json| v.as_i64().ok_or_else(mismatch);
    let uint = |v: &Json| v.as_u64().ok_or_else(mismatch);
    Ok(match (ty, v) {
        (_, Json::Null) => Value::Null,
        (ColumnType::Bool, Json::Bool(b)) => Value::Bool(*b),
        (ColumnType::I32, n @ Json::Number(_)) => {
            Value::I32(i32::try_from(int(n)?).map_err(|_| mismatch())?)
        }
        (ColumnType::I64, n @ Json::Number(_)) => Value::I64(int(n)?),
        (ColumnType::U32, n @ Json::Number(_)) => {
            Value::U32(u32::try_from(uint(n)?).map_err(|_| mismatch())?)
        }
        (ColumnType::U64, n @ Json::Number(_)) => Value::U64(uint(n)?),
        // f32 has no exact form of most f64s: the nearest is what the column can hold.
        (ColumnType::F32, Json::Number(n)) => Value::F32(n.as_f64().ok_or_else(mismatch)? as f32),
        (ColumnType::F64, Json::Number(n)) => Value::F64(n.as_f64().ok_or_else(mismatch)?),
        (ColumnType::String, Json::String(s)) => Value::String(s.clone()),
        (ColumnType::Bytes, Json::String(s)) => Value::Bytes(s.as_bytes().to_vec()),
        (ColumnType::Timestamp, n @ Json::Number(_)) => Value::Timestamp(uint(n)?),
        (ColumnType::Timestamp, Json::String(s)) => {
            Value::Timestamp(parse_time(s).map_err(|_| mismatch())?)
        }
        _ => return Err(mismatch()),
    })
}

/// A JSON Lines row `{"timestamp": T, "key": "K", "<column>": value, ...}`; absent columns
/// are null, unknown ones are refused.
pub fn json_row(table: &TsTableInfo, text: &str, line: usize) -> Result<Row, RowError> {
    let bad = |why: String| RowError::Line { line, why };
    let obj: Map<String, Json> = serde_json::from_str(text).map_err(|e| bad(e.to_string()))?;
    let timestamp_ms = match obj.get("timestamp") {
        Some(Json::Number(n)) => n
            .as_u64()
            .ok_or_else(|| bad(format!("timestamp {n} is not a u64")))?,
        Some(Json::String(s)) => parse_time(s).map_err(|e| bad(e.to_string()))?,
        _ => return Err(bad("a row needs \"timestamp\" (ms or a UTC time)".into())),
    };
    let key = match obj.get("key") {
        None | Some(Json::Null) => Vec::new(),
        Some(Json::String(s)) => s.as_bytes().to_vec(),
        Some(other) => return Err(bad(format!("\"key\" must be a string, not {other}"))),
    };
    if let Some(unknown) = obj
        .keys()
        .find(|k| *k != "timestamp" && *k != "key" && !table.columns.iter().any(|c| &c.name == *k))
    {
        return Err(bad(format!(
            "table {:?} has no column {unknown:?}",
            table.name
        )));
    }
    let values = table
        .columns
        .iter()
        .map(|c| json_value(c.column_type, obj.get(&c.name).unwrap_or(&Json::Null)))
        .collect::<Result<Vec<_>, _>>()
        .map_err(value_err(line))?;
    Ok(Row {
        timestamp_ms,
        key,
        values,
    })
}

fn value_json(v: &Value) -> Json {
    match v {
        Value::Null => Json::Null,
        Value::Bool(b) => json!(b),
        Value::I32(n) => json!(n),
        Value::I64(n) => json!(n),
        Value::U32(n) => json!(n),
        Value::U64(n) => json!(n),
        Value::F32(n) => json!(n),
        Value::F64(n) => json!(n),
        Value::String(s) => json!(s),
        Value::Bytes(b) => json!(String::from_utf8_lossy(b)),
        Value::Timestamp(t) => json!(t),
    }
}

/// A row as the JSON Lines form `json_row` reads back.
pub fn row_json(table: &TsTableInfo, r: &Row) -> Json {
    let mut obj = Map::new();
    obj.insert("timestamp".into(), json!(r.timestamp_ms));
    obj.insert("key".into(), json!(String::from_utf8_lossy(&r.key)));
    for (c, v) in table.columns.iter().zip(&r.values) {
        obj.insert(c.name.clone(), value_json(v));
    }
    Json::Object(obj)
}

/// A row as tab-separated text: time, key, then the values.
pub fn row_text(r: &Row) -> String {
    let mut s = format!("{}\t{}", r.timestamp_ms, String::from_utf8_lossy(&r.key));
    for v in &r.values {
        s.push('\t');
        s.push_str(&v.to_string());
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use shale_client::catalog::ColumnInfo;

    fn table() -> TsTableInfo {
        let col = |name: &str, t, index| ColumnInfo {
            name: name.into(),
            column_type: t,
            index,
            id: index + 10,
            comment: String::new(),
        };
        TsTableInfo {
            id: 1,
            name: "m".into(),
            partition_count_per_day: 24,
            columns: vec![
                col("v", ColumnType::F64, 0),
                col("host", ColumnType::String, 1),
            ],
        }
    }

    #[test]
    fn times_parse_as_utc() {
        assert_eq!(parse_time("1700000000000").unwrap(), 1_700_000_000_000);
        assert_eq!(parse_time("1970-01-02").unwrap(), MS_PER_DAY);
        assert_eq!(
            parse_time("2024-02-29T01:02:03.25Z").unwrap(),
            1_709_168_523_250
        );
        for bad in [
            "2024-13-01",
            "1969-12-31",
            "2024-01-01T25:00:00Z",
            "x",
            "2024-01-01T1:2Z",
        ] {
            assert!(parse_time(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn csv_and_json_rows_are_checked_against_the_schema() {
        let t = table();
        let r = csv_row(&t, "1000,k1,1.5,\"a,b\"", 1).unwrap();
        assert_eq!(r.values, vec![Value::F64(1.5), Value::String("a,b".into())]);
        assert!(matches!(
            csv_row(&t, "1000,k1,notanumber,x", 2),
            Err(RowError::Value {
                line: 2,
                err: ValueError::Unparsable { .. }
            })
        ));
        assert!(matches!(
            csv_row(&t, "1000,k1,1.5", 3),
            Err(RowError::Value {
                err: ValueError::WrongArity {
                    expected: 2,
                    got: 1
                },
                ..
            })
        ));
        let j = json_row(
            &t,
            r#"{"timestamp":1000,"key":"k1","v":1.5,"host":"a,b"}"#,
            1,
        )
        .unwrap();
        assert_eq!(j, r);
        assert_eq!(json_row(&t, &row_json(&t, &r).to_string(), 1).unwrap(), r);
        assert!(matches!(
            json_row(&t, r#"{"timestamp":1000,"v":"1.5"}"#, 4),
            Err(RowError::Value { line: 4, .. })
        ));
        assert!(json_row(&t, r#"{"timestamp":1000,"nope":1}"#, 5).is_err());
        assert_eq!(row_text(&r), "1000\tk1\t1.5\t\"a,b\"");
    }
}
