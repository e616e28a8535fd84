//! Helpers shared by the storage integration tests: a small schema, tight budgets so that
//! flushes and compactions happen in tiny workloads, and a reference model of cells.
#![allow(dead_code)]

pub mod crash;

use std::collections::BTreeMap;
use std::sync::Arc;

use shale_storage::fs::{FileStore, SimFs, SimFsConfig};
use shale_storage::lsm::CompactionOptions;
use shale_storage::read::{Cell, FamilyRules, ReadOptions, Schema};
use shale_storage::sst::SstOptions;
use shale_storage::tablet::{KeyRange, ScanRequest, Tablet, TabletId, TabletOptions};
use shale_storage::wal::WriteBatch;
use shale_storage::StorageResult;

/// Two families in two locality groups; versions are never capped, so a model of "every
/// live version" is exact whatever compaction has run.
pub fn schema() -> Schema {
    let mut s = Schema::default();
    s.families.insert(
        b"a".to_vec(),
        FamilyRules {
            max_versions: 1000,
            ..FamilyRules::default()
        },
    );
    s.families.insert(
        b"b".to_vec(),
        FamilyRules {
            max_versions: 1000,
            locality_group: "cold".into(),
            ..FamilyRules::default()
        },
    );
    s
}

pub fn small_opts() -> TabletOptions {
    TabletOptions {
        memtable_size_bytes: 2 << 10,
        immutable_memtables_max: 2,
        sst: SstOptions {
            block_size_bytes: 256,
            ..SstOptions::default()
        },
        target_file_size_bytes: 1 << 10,
        compaction: CompactionOptions {
            l0_trigger_files: 2,
            level1_max_bytes: 4 << 10,
            level_size_multiplier: 4,
        },
        manifest_size_max_bytes: 8 << 10,
        ..TabletOptions::default()
    }
}

pub fn sim(seed: u64) -> SimFs {
    SimFs::new(SimFsConfig {
        seed,
        torn_writes: true,
        ..SimFsConfig::default()
    })
}

pub fn create(fs: &SimFs, dir: &str, id: u64, range: KeyRange) -> StorageResult<Tablet> {
    let fs: Arc<dyn FileStore> = Arc::new(fs.clone());
    Tablet::create(fs, dir, TabletId(id), range, schema(), small_opts())
}

pub fn open(fs: &SimFs, dir: &str) -> StorageResult<Tablet> {
    let fs: Arc<dyn FileStore> = Arc::new(fs.clone());
    Tablet::open(fs, dir, small_opts())
}

pub fn row(i: u32) -> Vec<u8> {
    format!("row{i:05}").into_bytes()
}

pub fn put(
    t: &Tablet,
    r: &[u8],
    fam: &[u8],
    q: &[u8],
    ts: u64,
    v: &[u8],
    sync: bool,
) -> StorageResult<u64> {
    let mut b = WriteBatch::new();
    b.put(r, fam, q, ts, v);
    t.write(&b, sync)
}

/// Every visible cell of the tablet, by a forward scan of everything.
pub fn dump(t: &Tablet) -> StorageResult<Vec<Cell>> {
    let req = ScanRequest {
        row_limit: usize::MAX,
        ..ScanRequest::default()
    };
    Ok(t.scan(&req)?
        .rows
        .into_iter()
        .flat_map(|(_, c)| c)
        .collect())
}

/// (row, family, qualifier).
pub type Column = (Vec<u8>, Vec<u8>, Vec<u8>);

/// The reference: column → ts → value, holding exactly the live versions.
#[derive(Clone, Default, Debug, PartialEq, Eq)]
pub struct Model {
    pub cells: BTreeMap<Column, BTreeMap<u64, Vec<u8>>>,
}

impl Model {
    pub fn put(&mut self, r: &[u8], f: &[u8], q: &[u8], ts: u64, v: &[u8]) {
        self.cells
            .entry((r.to_vec(), f.to_vec(), q.to_vec()))
            .or_default()
            .insert(ts, v.to_vec());
    }
    pub fn delete_row(&mut self, r: &[u8], ts: u64) {
        for ((cr, _, _), versions) in self.cells.iter_mut() {
            if cr == r {
                versions.retain(|t, _| *t > ts);
            }
        }
        self.cells.retain(|_, v| !v.is_empty());
    }
    pub fn delete_column(&mut self, r: &[u8], f: &[u8], q: &[u8], ts: u64) {
        if let Some(v) = self.cells.get_mut(&(r.to_vec(), f.to_vec(), q.to_vec())) {
            v.retain(|t, _| *t > ts);
        }
        self.cells.retain(|_, v| !v.is_empty());
    }
    pub fn delete_family(&mut self, r: &[u8], f: &[u8], ts: u64) {
        for ((cr, cf, _), versions) in self.cells.iter_mut() {
            if cr == r && cf == f {
                versions.retain(|t, _| *t > ts);
            }
        }
        self.cells.retain(|_, v| !v.is_empty());
    }
    pub fn delete_version(&mut self, r: &[u8], f: &[u8], q: &[u8], ts: u64) {
        if let Some(v) = self.cells.get_mut(&(r.to_vec(), f.to_vec(), q.to_vec())) {
            v.remove(&ts);
        }
        self.cells.retain(|_, v| !v.is_empty());
    }
    /// Cells in the order reads return them: key order, newest version first.
    pub fn cells_in(&self, range: &KeyRange) -> Vec<Cell> {
        let mut out = Vec::new();
        for ((r, f, q), versions) in &self.cells {
            if !range.contains(r) {
                continue;
            }
            for (ts, v) in versions.iter().rev() {
                out.push(Cell {
                    row: r.clone(),
                    family: f.clone(),
                    qualifier: q.clone(),
                    ts: *ts,
                    value: v.clone(),
                });
            }
        }
        out
    }
}

pub fn all_versions() -> ReadOptions {
    ReadOptions::default()
}
