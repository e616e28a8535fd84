//! Partition files of time-series tables: bulk ingest (rows in, sorted `part-NNNN.grid` SSTs
//! out, published by an empty `SUCCESS` file) and reads of a time range.
//!
//! Owns: the directory layout of one partition, the publish protocol and the sample-key
//! encoding. Must not: decide which partition a row belongs to or where it lives (the meta
//! store does), or read a clock.
//!
//! Publish protocol: every part file is written and synced (`SstWriter::finish` syncs), the
//! directory is synced so their names are durable, then `SUCCESS` is created, synced, and
//! the directory synced again. A reader opens a partition only if `SUCCESS` exists, so after
//! any crash it sees either no partition or every part file whole. A partition is immutable
//! once published; a writer refuses to overwrite it, and leftovers of an unpublished attempt
//! are deleted before a new attempt writes.
//!
//! Sample key: a row's SST row is the big-endian timestamp (8 bytes) followed by the sample's
//! key, so files sort by time first and a time-range read is one seek per file.

use super::value::{check_values, decode_values, encode_values, ColumnType, Value, ValueError};
use crate::error::StorageError;
use crate::fs::{join, FileStore, FsError};
use crate::key::{row_lower_bound, CellKey};
use crate::sst::{SstOptions, SstReader, SstWriter};
use tracing::{debug, info};

pub const SUCCESS_FILE: &str = "SUCCESS";

/// One sample.
#[derive(Clone, Debug, PartialEq)]
pub struct Row {
    pub timestamp_ms: u64,
    /// Distinguishes samples with the same timestamp (e.g. a series or device id).
    pub key: Vec<u8>,
    /// One per column, in column-index order.
    pub values: Vec<Value>,
}

#[derive(Clone, Debug)]
pub struct IngestOptions {
    /// A part file is cut once it reaches this size.
    pub part_size_bytes_max: u64,
    /// The most rows one ingest takes (bounds the sort's memory).
    pub rows_max: usize,
    /// The most part files one partition may hold (`part-9999.grid` is the last name).
    pub parts_max: u32,
    pub sst: SstOptions,
}

impl Default for IngestOptions {
    fn default() -> Self {
        Self {
            part_size_bytes_max: 64 << 20,
            rows_max: 10_000_000,
            parts_max: 10_000,
            sst: SstOptions::default(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum TsError {
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error(transparent)]
    Value(#[from] ValueError),
    #[error("partition {0} is already published (SUCCESS exists); partitions are immutable")]
    AlreadyPublished(String),
    #[error("row at {ts} ms is outside the partition's range [{start}, {end})")]
    OutOfPartition { ts: u64, start: u64, end: u64 },
    #[error("{what} exceeds its limit of {limit}")]
    TooLarge { what: &'static str, limit: u64 },
    #[error("corrupt partition {dir}: {reason}")]
    Corrupt { dir: String, reason: String },
}

impl From<FsError> for TsError {
    fn from(e: FsError) -> Self {
        TsError::Storage(StorageError::Fs(e))
    }
}

/// The directory of partition (date, index) of `table` under `root`.
pub fn partition_dir(root: &str, table: &str, date: u32, index: u32) -> String {
    join(
        &join(&join(root, table), &date.to_string()),
        &format!("{index:04}"),
    )
}

pub fn part_name(n: u32) -> String {
    format!("part-{n:04}.grid")
}

fn sample_row(ts: u64, key: &[u8]) -> Vec<u8> {
    let mut r = Vec::with_capacity(8 + key.len());
    r.extend_from_slice(&ts.to_be_bytes());
    r.extend_from_slice(key);
    r
}

/// What an ingest wrote.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Published {
    pub parts: Vec<String>,
    pub rows: u64,
    pub bytes: u64,
}

/// Write `rows` as the partition in `dir` covering `[range.0, range.1)` and publish it.
/// Rows are checked against `columns`, sorted by sample key; of rows with the same sample
/// key the last given wins.
pub fn write_partition(
    fs: &dyn FileStore,
    dir: &str,
    range: (u64, u64),
    columns: &[(String, ColumnType)],
    mut rows: Vec<Row>,
    opts: &IngestOptions,
) -> Result<Published, TsError> {
    if rows.len() > opts.rows_max {
        return Err(TsError::TooLarge {
            what: "rows in one ingest",
            limit: opts.rows_max as u64,
        });
    }
    for r in &rows {
        if r.timestamp_ms < range.0 || r.timestamp_ms >= range.1 {
            return Err(TsError::OutOfPartition {
                ts: r.timestamp_ms,
                start: range.0,
                end: range.1,
            });
        }
        check_values(columns, &r.values)?;
    }
    let success = join(dir, SUCCESS_FILE);
    if fs.exists(&success) {
        return Err(TsError::AlreadyPublished(dir.to_string()));
    }
    // Leftovers of an attempt that crashed before SUCCESS were never visible: drop them so
    // the new attempt's part numbering starts clean.
    for name in list_or_empty(fs, dir)? {
        fs.delete(&join(dir, &name))?;
    }
    // Stable sort, then keep the last of equal keys (the later write wins).
    rows.sort_by(|a, b| (a.timestamp_ms, &a.key).cmp(&(b.timestamp_ms, &b.key)));
    let mut deduped: Vec<Row> = Vec::with_capacity(rows.len());
    for r in rows {
        match deduped.last_mut() {
            Some(last) if last.timestamp_ms == r.timestamp_ms && last.key == r.key => *last = r,
            _ => deduped.push(r),
        }
    }
    let mut out = Published {
        parts: Vec::new(),
        rows: deduped.len() as u64,
        bytes: 0,
    };
    let mut writer: Option<SstWriter> = None;
    let mut value = Vec::new();
    for r in &deduped {
        if writer.is_none() {
            let n = out.parts.len() as u32;
            if n >= opts.parts_max {
                return Err(TsError::TooLarge {
                    what: "part files in one partition",
                    limit: u64::from(opts.parts_max),
                });
            }
            let path = join(dir, &part_name(n));
            let file = fs.create(&path)?;
            writer = Some(SstWriter::new(file, path.clone(), opts.sst.clone()));
            out.parts.push(path);
        }
        let Some(w) = writer.as_mut() else {
            unreachable!("a writer was opened above");
        };
        let key = CellKey::put(&sample_row(r.timestamp_ms, &r.key), b"", b"", 0, 0).encode();
        value.clear();
        encode_values(&r.values, &mut value);
        w.add(&key, &value)?;
        if w.estimated_size_bytes() >= opts.part_size_bytes_max {
            if let Some(w) = writer.take() {
                out.bytes += w.finish()?.file_size;
            }
        }
    }
    if let Some(w) = writer.take() {
        out.bytes += w.finish()?.file_size;
    }
    // The part files are synced; make their names durable before SUCCESS can be.
    fs.sync_dir(dir)?;
    let mut f = fs.create(&success)?;
    f.sync()?;
    fs.sync_dir(dir)?;
    info!(
        dir,
        parts = out.parts.len(),
        rows = out.rows,
        "partition published"
    );
    Ok(out)
}

fn list_or_empty(fs: &dyn FileStore, dir: &str) -> Result<Vec<String>, TsError> {
    match fs.list(dir) {
        Ok(names) => Ok(names),
        Err(FsError::NotFound(_)) => Ok(Vec::new()),
        Err(e) => Err(e.into()),
    }
}

/// Is the partition in `dir` published?
pub fn is_published(fs: &dyn FileStore, dir: &str) -> bool {
    fs.exists(&join(dir, SUCCESS_FILE))
}

/// Rows of the published partition in `dir` with `from <= ts < to`, in sample-key order, at
/// most `limit` of them. An unpublished partition reads as empty: it does not exist yet.
pub fn read_partition(
    fs: &dyn FileStore,
    dir: &str,
    from: u64,
    to: u64,
    limit: usize,
) -> Result<Vec<Row>, TsError> {
    let mut out = Vec::new();
    if !is_published(fs, dir) || from >= to {
        return Ok(out);
    }
    let mut parts: Vec<String> = list_or_empty(fs, dir)?
        .into_iter()
        .filter(|n| n.starts_with("part-") && n.ends_with(".grid"))
        .collect();
    parts.sort();
    for (i, name) in parts.iter().enumerate() {
        if *name != part_name(i as u32) {
            return Err(TsError::Corrupt {
                dir: dir.to_string(),
                reason: format!("part files are not numbered densely ({name} at {i})"),
            });
        }
    }
    let start = row_lower_bound(&from.to_be_bytes());
    for name in parts {
        let path = join(dir, &name);
        let reader = SstReader::open(fs.open(&path)?, path.clone(), 0, None)?;
        let mut it = reader.iter();
        it.seek(&start)?;
        while it.valid() && out.len() < limit {
            let key = CellKey::decode(it.key())?;
            let Some((ts, sample_key)) = key.row.split_first_chunk::<8>() else {
                return Err(TsError::Corrupt {
                    dir: dir.to_string(),
                    reason: format!("{path}: sample key shorter than a timestamp"),
                });
            };
            let ts = u64::from_be_bytes(*ts);
            if ts >= to {
                break;
            }
            out.push(Row {
                timestamp_ms: ts,
                key: sample_key.to_vec(),
                values: decode_values(it.value())?,
            });
            it.next()?;
        }
        if out.len() >= limit {
            break;
        }
    }
    debug!(dir, rows = out.len(), "partition read");
    Ok(out)
}
