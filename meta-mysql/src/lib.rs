//! A MySQL/MariaDB backend for the meta store: all meta state lives in the seed's tables
//! (`id_mapping`, `table_info`, `column_info`, `partition_info`, `worker_node_info`,
//! `node_storage_info`) plus Shale's own `shale_*` tables, created by migrations at startup.
//!
//! Owns: the mapping of the meta store's typed log onto rows. The backend keeps a mirror of
//! the state (`MetaState`, the same apply path the actor uses): `append` applies records to
//! the mirror and notes which rows they touched; `sync` writes those rows (upsert or delete)
//! and the revision in one SQL transaction, so a record is durable exactly when the
//! transaction commits, as the `MetaBackend` contract asks. `load` reads every table back
//! into a snapshot (there is no separate log: rows are always current). `write_snapshot`
//! rewrites every table in one transaction.
//!
//! Format version: the row bodies are bincode, so the database records which encoding they
//! are in (`codec::META_FORMAT_VERSION`), as the `format_version` row of `shale_state`. `load`
//! reads it first and refuses a newer build's data with `BackendError::UnsupportedFormat`
//! before decoding anything; if the row is absent (an empty database, or one written before
//! format versions, which is version 1) `load` writes it. Builds from before format versions
//! refuse a database holding the row (an unknown `shale_state` key), so they never misread a
//! newer format either. `check_format` does the same check without loading, at startup.
//!
//! Must not: be used from an actor's turn (the meta store calls it inside jobs, one at a
//! time) or hold meta decisions of its own. This crate does network I/O, which is why it
//! lives outside the core crates' clock and socket ban.

mod rows;
pub mod schema;

use mysql::prelude::Queryable;
use mysql::{Conn, Opts, TxOpts};
use shale_actors::meta::codec::{self, META_FORMAT_VERSION};
use shale_actors::meta::{
    BackendError, CatalogOp, Change, Loaded, LogRecord, MetaBackend, MetaSnapshot, MetaState,
    RecordKey,
};
use std::sync::{Mutex, MutexGuard};
use tracing::info;

pub use rows::Touched;

/// Why connecting or migrating failed.
#[derive(Debug, thiserror::Error)]
pub enum MysqlError {
    #[error("bad MySQL URL: {0}")]
    Url(String),
    #[error("MySQL: {0}")]
    Sql(#[from] mysql::Error),
}

impl From<MysqlError> for BackendError {
    fn from(e: MysqlError) -> Self {
        BackendError::Io(e.to_string())
    }
}

pub(crate) fn sql(e: mysql::Error) -> BackendError {
    BackendError::Io(format!("MySQL: {e}"))
}

struct Inner {
    conn: Conn,
    /// None until `load`: appends need the state they apply to.
    mirror: Option<MetaState>,
    touched: Touched,
}

pub struct MysqlBackend {
    inner: Mutex<Inner>,
    dedup_entries_max: usize,
}

impl MysqlBackend {
    /// Connect to `url` (`mysql://user:pass@host:port/db`) and run pending migrations.
    /// `dedup_entries_max` must equal the meta store's setting, so the mirror evicts the
    /// same retry entries the store does.
    pub fn connect(url: &str, dedup_entries_max: usize) -> Result<Self, MysqlError> {
        let opts = Opts::from_url(url).map_err(|e| MysqlError::Url(e.to_string()))?;
        let mut conn = Conn::new(opts)?;
        migrate(&mut conn)?;
        Ok(Self {
            inner: Mutex::new(Inner {
                conn,
                mirror: None,
                touched: Touched::default(),
            }),
            dedup_entries_max,
        })
    }

    fn inner(&self) -> MutexGuard<'_, Inner> {
        // The meta store runs one backend call at a time; a poisoned lock means a call
        // panicked midway, and the next `load` rebuilds the mirror from the database.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Empty every table this backend owns, the state and format version rows included
    /// (tests start each case from nothing).
    pub fn reset(&self) -> Result<(), MysqlError> {
        let mut inner = self.inner();
        for t in rows::ALL_TABLES.iter().chain(&["shale_state"]) {
            inner.conn.query_drop(format!("DELETE FROM {t}"))?;
        }
        inner.mirror = None;
        inner.touched = Touched::default();
        Ok(())
    }
}

fn migrate(conn: &mut Conn) -> Result<(), MysqlError> {
    conn.query_drop(
        "CREATE TABLE IF NOT EXISTS shale_schema_migrations (
            version INT UNSIGNED NOT NULL PRIMARY KEY,
            applied_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP)",
    )?;
    let done: Vec<u32> = conn.query("SELECT version FROM shale_schema_migrations")?;
    for (version, statements) in schema::MIGRATIONS {
        if done.contains(version) {
            continue;
        }
        for s in *statements {
            conn.query_drop(*s)?;
        }
        conn.exec_drop(
            "INSERT INTO shale_schema_migrations (version) VALUES (?)",
            (version,),
        )?;
        info!(version, "meta MySQL migration applied");
    }
    Ok(())
}

/// How the format version check names the data in its error.
const FORMAT_WHAT: &str = "meta MySQL database";

// A database without a format version row holds version 1 (or nothing), and `load` records
// the current version for it. When the version is bumped, such a database and one recording
// an older version need a migration in `load` (or a refusal) before this can change.
const _: () = assert!(
    META_FORMAT_VERSION == 1,
    "handle databases in older meta format versions in MysqlBackend::load"
);

impl MetaBackend for MysqlBackend {
    fn check_format(&self) -> Result<(), BackendError> {
        let mut inner = self.inner();
        if let Some(found) = rows::read_format_version(&mut inner.conn)? {
            codec::check_version(FORMAT_WHAT, found)?;
        }
        Ok(())
    }

    fn load(&self) -> Result<Loaded, BackendError> {
        let mut inner = self.inner();
        // The version first: nothing may be decoded in a format this build cannot read.
        match rows::read_format_version(&mut inner.conn)? {
            Some(found) => {
                codec::check_version(FORMAT_WHAT, found)?;
            }
            None => {
                rows::write_format_version(&mut inner.conn, META_FORMAT_VERSION)?;
                info!(
                    version = META_FORMAT_VERSION,
                    "meta MySQL database: format version recorded"
                );
            }
        }
        let snap = rows::read_all(&mut inner.conn)?;
        inner.mirror = Some(MetaState::from_snapshot(
            snap.clone(),
            self.dedup_entries_max,
        ));
        inner.touched = Touched::default();
        Ok(Loaded {
            snapshot: Some(snap),
            records: Vec::new(),
            torn_tail_bytes: 0,
        })
    }

    fn append(&self, records: &[LogRecord]) -> Result<(), BackendError> {
        let mut inner = self.inner();
        let Inner {
            mirror, touched, ..
        } = &mut *inner;
        let mirror = mirror
            .as_mut()
            .ok_or_else(|| BackendError::Io("append before load".into()))?;
        for r in records {
            if r.revision != mirror.revision() + 1 {
                return Err(BackendError::Corrupt {
                    what: "mysql append",
                    offset: 0,
                    reason: format!("revision {} after {}", r.revision, mirror.revision()),
                });
            }
            mirror.apply(r);
            touched.note(r);
        }
        Ok(())
    }

    fn sync(&self) -> Result<(), BackendError> {
        let mut inner = self.inner();
        let Inner {
            conn,
            mirror,
            touched,
        } = &mut *inner;
        let Some(mirror) = mirror.as_ref() else {
            return Ok(());
        };
        let work = std::mem::take(touched);
        let mut tx = conn.start_transaction(TxOpts::default()).map_err(sql)?;
        rows::write_touched(&mut tx, mirror.snapshot(), &work)?;
        tx.commit().map_err(sql)
    }

    fn write_snapshot(&self, snap: &MetaSnapshot) -> Result<(), BackendError> {
        let mut inner = self.inner();
        let mut tx = inner
            .conn
            .start_transaction(TxOpts::default())
            .map_err(sql)?;
        rows::write_all(&mut tx, snap)?;
        tx.commit().map_err(sql)?;
        inner.mirror = Some(MetaState::from_snapshot(
            snap.clone(),
            self.dedup_entries_max,
        ));
        inner.touched = Touched::default();
        Ok(())
    }
}

/// Keys a record may have changed. Kept here (not in `rows.rs`) because it is the one place
/// that must know every `Change` and `CatalogOp` variant.
impl Touched {
    pub fn note(&mut self, r: &LogRecord) {
        self.state = true;
        self.first_revision.get_or_insert(r.revision);
        if r.dedup.is_some() {
            self.dedup = true;
        }
        match &r.change {
            Change::Writes(ws) => {
                for w in ws {
                    let key = match w {
                        shale_actors::meta::Write::Put(rec) => rec.key(),
                        shale_actors::meta::Write::Delete(k) => k.clone(),
                    };
                    match key {
                        RecordKey::Node(n) => {
                            self.nodes.insert(n);
                        }
                        other => {
                            self.records.insert(other);
                        }
                    }
                }
            }
            Change::Lease(_) => {}
            Change::Catalog(ops) => {
                for op in ops {
                    match op {
                        CatalogOp::Id { key, .. } => {
                            self.ids.insert(key.clone());
                        }
                        CatalogOp::Table(t) => {
                            self.ts_tables.insert(t.name.clone());
                        }
                        CatalogOp::Partition(p) => {
                            self.partitions.insert(p.key());
                        }
                        CatalogOp::Storage { node, .. } => {
                            self.storage.insert(*node);
                        }
                    }
                }
            }
        }
    }
}
