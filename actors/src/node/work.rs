//! The work of a node's jobs: every engine call (load, group commit, read-modify-write, read,
//! flush, split, unload, compaction step) as a function run by the host off the actor's turn,
//! and the [`NodeJobOutput`] each hands back.
//!
//! Must not: touch actor state (jobs see only what they captured: an `Arc<Tablet>`, the file
//! store and the request), or read a clock (time comes in as `now_micros`).

use super::convert::{add_row, column_options, read_options, row_out};
use super::served::{AdmittedRmw, AdmittedWrite};
use crate::meta::TabletId;
use crate::proto::control::{LoadMode, TabletSpec};
use crate::proto::data::{Condition, DataError, DataOp, DataReply};
use crate::proto::limits::InputError;
use shale_storage::fs::{join, FileStore, FsError};
use shale_storage::read::Schema;
use shale_storage::tablet::{KeyRange, ScanRequest, Tablet, TabletOptions, WriteBatch};
use shale_storage::StorageError;
use std::fmt;
use std::sync::Arc;

/// An opened tablet (a newtype so job outputs can be `Debug`).
pub struct TabletHandle(pub Arc<Tablet>);

impl fmt::Debug for TabletHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Tablet({})", self.0.dir())
    }
}

/// Why a load failed: the master's command does not fit what is on disk, or the disk failed.
#[derive(Debug)]
pub enum LoadError {
    Refused(String),
    Storage(StorageError),
}

#[derive(Debug)]
pub struct SplitOutcome {
    pub key: Vec<u8>,
    pub left_size_bytes: u64,
    pub right_size_bytes: u64,
}

/// What a node job hands back.
#[derive(Debug)]
pub enum NodeJobOutput {
    Loaded(Result<TabletHandle, LoadError>),
    Committed(Result<(), StorageError>),
    /// One result per read-modify-write, in order, with the timestamp each wrote (if any).
    Rmw(Vec<Result<(DataReply, u64), DataError>>),
    Read(Result<DataReply, DataError>),
    Flushed(Result<(), StorageError>),
    Split(Result<SplitOutcome, StorageError>),
    Unloaded(Result<(), StorageError>),
    Background(Result<bool, StorageError>),
}

fn storage_tid(id: TabletId) -> shale_storage::tablet::TabletId {
    shale_storage::tablet::TabletId(id.0)
}

/// The planted bugs the node's jobs act on: the real set with the `planted-bugs` feature,
/// else a constant with every bug off that the compiler folds away.
#[cfg(feature = "planted-bugs")]
pub type Planted = crate::planted::PlantedBugs;
#[cfg(not(feature = "planted-bugs"))]
#[derive(Clone, Copy, Debug, Default)]
pub struct Planted {
    pub split_child_outside_range: bool,
}

pub fn load(
    fs: Arc<dyn FileStore>,
    spec: &TabletSpec,
    schema: Schema,
    mode: &LoadMode,
    opts: TabletOptions,
    planted: Planted,
) -> Result<TabletHandle, LoadError> {
    let refused_or = |e: StorageError| match e {
        StorageError::Fs(FsError::AlreadyExists(p)) => {
            LoadError::Refused(format!("create found an existing tablet at {p}"))
        }
        StorageError::Fs(FsError::NotFound(p)) => {
            LoadError::Refused(format!("no tablet to open: {p} is missing"))
        }
        StorageError::InvalidArgument(s) => LoadError::Refused(s),
        other => LoadError::Storage(other),
    };
    let range = KeyRange {
        start: spec.start.clone(),
        end: spec.end.clone(),
    };
    let tablet = match mode {
        LoadMode::Create => Tablet::create(
            fs,
            &spec.path,
            storage_tid(spec.id),
            range.clone(),
            schema,
            opts,
        )
        .map_err(refused_or)?,
        LoadMode::Open => Tablet::open(fs, &spec.path, opts).map_err(refused_or)?,
        LoadMode::MergeOf {
            left_path,
            right_path,
        } => {
            // Idempotent: a retried merge load finds the manifest the first attempt wrote.
            if !fs.exists(&join(&spec.path, "CURRENT")) {
                Tablet::merge(
                    fs.as_ref(),
                    left_path,
                    right_path,
                    storage_tid(spec.id),
                    &spec.path,
                )
                .map_err(refused_or)?;
            }
            Tablet::open(fs, &spec.path, opts).map_err(refused_or)?
        }
    };
    if tablet.id() != storage_tid(spec.id) {
        return Err(LoadError::Refused(format!(
            "{} holds tablet {}, not {}",
            spec.path,
            tablet.id().0,
            spec.id
        )));
    }
    // Planted bug (tests only): a loaded tablet's own range is trusted over the command's.
    if tablet.range() != range && !planted.split_child_outside_range {
        return Err(LoadError::Refused(format!(
            "{} covers another key range than the command names",
            spec.path
        )));
    }
    Ok(TabletHandle(Arc::new(tablet)))
}

/// One group commit: every admitted write request's rows (one batch per row, so each row is
/// atomic), one WAL append, one sync.
pub fn commit(tablet: &Tablet, writes: &[AdmittedWrite]) -> Result<(), StorageError> {
    let mut batches = Vec::new();
    for w in writes {
        for r in &w.rows {
            let mut b = WriteBatch::new();
            add_row(&mut b, &r.row, &r.mutations, w.ts);
            batches.push(b);
        }
    }
    tablet.write_group(&batches, true).map(|_| ())
}

pub fn data_error(tablet: TabletId, e: StorageError) -> DataError {
    match e {
        StorageError::KeyNotInRange => DataError::KeyNotInRange { tablet },
        StorageError::Closed => DataError::NotServing { tablet },
        StorageError::InvalidArgument(s) => DataError::Invalid(InputError::Invalid(s)),
        other => DataError::Storage(other.to_string()),
    }
}

/// Read-modify-writes in admission order. Each reads the newest version, computes, and writes
/// with a synced batch before the next reads, so none can lose another's update. A write's
/// timestamp is raised past the cell it read, so a newer value never hides behind an older
/// timestamp (clocks of successive owners may disagree).
pub fn rmw(
    tablet: &Tablet,
    id: TabletId,
    ops: &[AdmittedRmw],
    now_micros: u64,
) -> Vec<Result<(DataReply, u64), DataError>> {
    ops.iter()
        .map(|op| rmw_one(tablet, op, now_micros).map_err(|e| data_error_of(id, e)))
        .collect()
}

enum RmwErr {
    Data(DataError),
    Storage(StorageError),
}

impl From<StorageError> for RmwErr {
    fn from(e: StorageError) -> Self {
        RmwErr::Storage(e)
    }
}

fn data_error_of(id: TabletId, e: RmwErr) -> DataError {
    match e {
        RmwErr::Data(d) => d,
        RmwErr::Storage(s) => data_error(id, s),
    }
}

/// The newest value and timestamp of one column.
fn newest(
    tablet: &Tablet,
    row: &[u8],
    family: &str,
    qualifier: &[u8],
    now_micros: u64,
) -> Result<Option<(Vec<u8>, u64)>, StorageError> {
    let cells = tablet.get(row, &column_options(family, qualifier, now_micros))?;
    Ok(cells.into_iter().next().map(|c| (c.value, c.ts)))
}

fn rmw_one(tablet: &Tablet, op: &AdmittedRmw, now_micros: u64) -> Result<(DataReply, u64), RmwErr> {
    let mut batch = WriteBatch::new();
    let (reply, ts) = match &op.op {
        DataOp::Increment {
            row,
            family,
            qualifier,
            delta,
        } => {
            let cur = newest(tablet, row, family, qualifier, now_micros)?;
            let (old, ts) = match cur {
                None => (0i64, op.ts),
                Some((v, cell_ts)) => {
                    let bytes: [u8; 8] = v
                        .as_slice()
                        .try_into()
                        .map_err(|_| RmwErr::Data(DataError::NotACounter))?;
                    (
                        i64::from_be_bytes(bytes),
                        op.ts.max(cell_ts.saturating_add(1)),
                    )
                }
            };
            let value = old.checked_add(*delta).ok_or_else(|| {
                RmwErr::Data(DataError::Invalid(InputError::Invalid(
                    "counter overflow".into(),
                )))
            })?;
            batch.put(row, family.as_bytes(), qualifier, ts, &value.to_be_bytes());
            (DataReply::Counter { value }, ts)
        }
        DataOp::Append {
            row,
            family,
            qualifier,
            suffix,
        } => {
            let cur = newest(tablet, row, family, qualifier, now_micros)?;
            let (mut value, ts) = match cur {
                None => (Vec::new(), op.ts),
                Some((v, cell_ts)) => (v, op.ts.max(cell_ts.saturating_add(1))),
            };
            value.extend_from_slice(suffix);
            batch.put(row, family.as_bytes(), qualifier, ts, &value);
            (DataReply::Appended { value }, ts)
        }
        DataOp::CheckAndMutate {
            row,
            check,
            on_match,
            on_miss,
        } => {
            let (family, qualifier) = match check {
                Condition::Absent { family, qualifier }
                | Condition::Equals {
                    family, qualifier, ..
                } => (family, qualifier),
            };
            let cur = newest(tablet, row, family, qualifier, now_micros)?;
            let matched = match (check, &cur) {
                (Condition::Absent { .. }, cur) => cur.is_none(),
                (Condition::Equals { value, .. }, Some((v, _))) => v == value,
                (Condition::Equals { .. }, None) => false,
            };
            let ts = match &cur {
                Some((_, cell_ts)) => op.ts.max(cell_ts.saturating_add(1)),
                None => op.ts,
            };
            let muts = if matched { on_match } else { on_miss };
            add_row(&mut batch, row, muts, ts);
            (DataReply::Checked { matched }, ts)
        }
        other => {
            return Err(RmwErr::Data(DataError::Invalid(InputError::Invalid(
                format!("not a read-modify-write: {other:?}"),
            ))))
        }
    };
    if !batch.is_empty() {
        tablet.write_group(std::slice::from_ref(&batch), true)?;
    }
    Ok((reply, ts))
}

pub fn get(
    tablet: &Tablet,
    id: TabletId,
    row: &[u8],
    filter: &crate::proto::data::ReadFilter,
    now_micros: u64,
) -> Result<DataReply, DataError> {
    let cells = tablet
        .get(row, &read_options(filter, now_micros))
        .map_err(|e| data_error(id, e))?;
    Ok(DataReply::Row(row_out(row.to_vec(), cells)))
}

/// A scan of `[start, end)` already clipped to the tablet by the actor.
pub fn scan(tablet: &Tablet, id: TabletId, req: ScanRequest) -> Result<DataReply, DataError> {
    let res = tablet.scan(&req).map_err(|e| data_error(id, e))?;
    let resume = res.rows.last().map(|(r, _)| r.clone());
    let more = res.limit_reached;
    let rows = res
        .rows
        .into_iter()
        .map(|(r, cells)| row_out(r, cells))
        .collect();
    Ok(DataReply::Scanned {
        rows,
        more,
        resume: if more { resume } else { None },
    })
}

/// Flush, pick (or check) the key, write both children's manifests. Sizes are the SST bytes
/// each child reads (a file straddling the key counts for both: both children reference it).
pub fn split(
    tablet: &Tablet,
    key: Option<Vec<u8>>,
    left: &(TabletId, String),
    right: &(TabletId, String),
    planted: Planted,
) -> Result<SplitOutcome, StorageError> {
    tablet.flush()?;
    let key = match key {
        Some(k) => k,
        None => tablet.split_key()?.ok_or_else(|| {
            StorageError::InvalidArgument("no split key leaves data on both sides".into())
        })?,
    };
    let metas = tablet.file_metas();
    // Planted bug (tests only): the children are cut just past the reported key, so the left
    // child's files say it owns the key the master gives the right child.
    let cut = match planted.split_child_outside_range {
        true => {
            let mut k = key.clone();
            k.push(0xff);
            if tablet.range().contains(&k) {
                k
            } else {
                key.clone()
            }
        }
        false => key.clone(),
    };
    tablet.split(
        &cut,
        (storage_tid(left.0), &left.1),
        (storage_tid(right.0), &right.1),
    )?;
    let (mut l, mut r) = (0u64, 0u64);
    let boundary = shale_storage::key::row_lower_bound(&key);
    for m in metas.iter().filter(|m| !m.visible_empty()) {
        if m.effective_smallest() < boundary.as_slice() {
            l += m.size_bytes;
        }
        if m.overlaps(&boundary, &m.largest) {
            r += m.size_bytes;
        }
    }
    Ok(SplitOutcome {
        key,
        left_size_bytes: l,
        right_size_bytes: r,
    })
}
