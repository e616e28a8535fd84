//! `--meta-backend`: where the meta store keeps its state. `embedded` (the default) is a log
//! and snapshots on the cluster's file store under `meta/`; `mysql://user:pass@host:port/db`
//! keeps every meta record in MySQL or MariaDB (`shale-meta-mysql`, tables created by
//! migrations at startup). Opening checks the stored data's format version, so data written
//! by a newer Shale stops `shale meta` at startup with that error instead of a store that
//! never serves.
//!
//! Must not: hold meta logic; it only builds the backend the meta store is given.

use shale_actors::meta::{BackendError, FsBackend, MetaBackend, MetaConfig};
use shale_meta_mysql::MysqlBackend;
use shale_storage::fs::FileStore;
use std::sync::Arc;

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum MetaBackendChoice {
    #[default]
    Embedded,
    /// The URL, password included: never log it whole (see [`MetaBackendChoice::describe`]).
    Mysql(String),
}

#[derive(Debug, thiserror::Error)]
pub enum MetaBackendError {
    #[error("bad --meta-backend {0:?}: use `embedded` or mysql://user:pass@host:port/db")]
    Parse(String),
    #[error("cannot open the MySQL meta backend at {at}: {why}")]
    Mysql { at: String, why: String },
    /// The stored data cannot be used by this build (a newer format version, typically).
    #[error("cannot start the meta store on {at}: {source}")]
    Format { at: String, source: BackendError },
}

impl MetaBackendChoice {
    pub fn parse(s: &str) -> Result<Self, MetaBackendError> {
        match s {
            "" | "embedded" => Ok(Self::Embedded),
            url if url.starts_with("mysql://") => Ok(Self::Mysql(url.to_string())),
            other => Err(MetaBackendError::Parse(redact(other))),
        }
    }

    /// For logs and errors: the URL without its password.
    pub fn describe(&self) -> String {
        match self {
            Self::Embedded => "embedded".into(),
            Self::Mysql(url) => redact(url),
        }
    }

    /// The backend, connected (and migrated) if it is MySQL, once its stored data's format
    /// version is one this build reads.
    pub fn open(
        &self,
        fs: Arc<dyn FileStore>,
        meta_dir: &str,
        config: &MetaConfig,
    ) -> Result<Arc<dyn MetaBackend>, MetaBackendError> {
        let backend: Arc<dyn MetaBackend> = match self {
            Self::Embedded => Arc::new(FsBackend::new(fs, meta_dir)),
            Self::Mysql(url) => {
                let b = MysqlBackend::connect(url, config.dedup_entries_max).map_err(|e| {
                    MetaBackendError::Mysql {
                        at: redact(url),
                        why: e.to_string(),
                    }
                })?;
                Arc::new(b)
            }
        };
        match backend.check_format() {
            Ok(()) => {}
            Err(source @ BackendError::UnsupportedFormat { .. }) => {
                return Err(MetaBackendError::Format {
                    at: match self {
                        Self::Embedded => format!("{meta_dir:?} in the data folder"),
                        Self::Mysql(url) => redact(url),
                    },
                    source,
                });
            }
            // Anything else (an I/O error, damage) is the store's load to report and retry,
            // as it was before format versions.
            Err(e) => tracing::warn!(
                backend = %self.describe(),
                "could not check the meta data's format at startup ({e}); the store's load will"
            ),
        }
        Ok(backend)
    }
}

/// `scheme://user:secret@host/db` as `scheme://user:***@host/db`.
fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    match rest.rsplit_once('@') {
        Some((cred, host)) => match cred.split_once(':') {
            Some((user, _)) => format!("{scheme}://{user}:***@{host}"),
            None => url.to_string(),
        },
        None => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use shale_actors::meta::codec::{self, META_FORMAT_VERSION};
    use shale_actors::meta::MetaSnapshot;
    use shale_storage::fs::{SimFs, SimFsConfig};

    fn put_snapshot(fs: &SimFs, version: u32) {
        let bytes =
            codec::encode_snapshot_as(&MetaSnapshot::default(), version).expect("encode snapshot");
        let mut w = fs.create("meta/snapshot").expect("create");
        w.append(&bytes).expect("append");
        w.sync().expect("sync");
    }

    #[test]
    fn data_from_a_newer_build_stops_the_meta_store_at_startup() {
        let open = |fs: &SimFs| {
            MetaBackendChoice::Embedded
                .open(Arc::new(fs.clone()), "meta", &MetaConfig::default())
                .map(|_| ())
        };
        let fs = SimFs::new(SimFsConfig::default());
        assert!(open(&fs).is_ok(), "an empty folder opens");
        put_snapshot(&fs, META_FORMAT_VERSION);
        assert!(open(&fs).is_ok(), "this build's data opens");
        put_snapshot(&fs, META_FORMAT_VERSION + 1);
        let err = open(&fs).err();
        assert!(
            matches!(
                &err,
                Some(MetaBackendError::Format {
                    source: BackendError::UnsupportedFormat { found, .. },
                    ..
                }) if *found == META_FORMAT_VERSION + 1
            ),
            "{err:?}"
        );
        let message = err.map(|e| e.to_string()).unwrap_or_default();
        assert!(
            message.contains("\"meta\" in the data folder")
                && message.contains("newer than this build supports"),
            "{message}"
        );
    }

    #[test]
    fn choices_parse_and_passwords_stay_out_of_messages() {
        assert_eq!(
            MetaBackendChoice::parse("embedded").ok(),
            Some(MetaBackendChoice::Embedded)
        );
        let m = MetaBackendChoice::parse("mysql://u:pw@h:3306/db").ok();
        assert_eq!(
            m,
            Some(MetaBackendChoice::Mysql("mysql://u:pw@h:3306/db".into()))
        );
        assert_eq!(
            m.map(|m| m.describe()).as_deref(),
            Some("mysql://u:***@h:3306/db")
        );
        let err = MetaBackendChoice::parse("postgres://u:pw@h/db")
            .err()
            .map(|e| e.to_string());
        assert!(err
            .as_deref()
            .is_some_and(|e| e.contains("u:***@h") && !e.contains("pw")));
    }
}
