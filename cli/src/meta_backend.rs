//! `--meta-backend`: where the meta store keeps its state. `embedded` (the default) is a log
//! and snapshots on the cluster's file store under `meta/`; `mysql://user:pass@host:port/db`
//! keeps every meta record in MySQL or MariaDB (`shale-meta-mysql`, tables created by
//! migrations at startup).
//!
//! Must not: hold meta logic; it only builds the backend the meta store is given.

use shale_actors::meta::{FsBackend, MetaBackend, MetaConfig};
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

    /// The backend, connected (and migrated) if it is MySQL.
    pub fn open(
        &self,
        fs: Arc<dyn FileStore>,
        meta_dir: &str,
        config: &MetaConfig,
    ) -> Result<Arc<dyn MetaBackend>, MetaBackendError> {
        match self {
            Self::Embedded => Ok(Arc::new(FsBackend::new(fs, meta_dir))),
            Self::Mysql(url) => {
                let b = MysqlBackend::connect(url, config.dedup_entries_max).map_err(|e| {
                    MetaBackendError::Mysql {
                        at: redact(url),
                        why: e.to_string(),
                    }
                })?;
                Ok(Arc::new(b))
            }
        }
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
