//! The storage error type. Every failure is typed; nothing that came off a disk is unwrapped.

use crate::fs::FsError;

pub type StorageResult<T> = Result<T, StorageError>;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StorageError {
    #[error("file store: {0}")]
    Fs(#[from] FsError),
    /// Bytes read back did not pass a checksum or did not parse. Never returned as data.
    #[error("corruption in {file}: {reason}")]
    Corruption { file: String, reason: String },
    /// A key outside the tablet's visible range was asked of it.
    #[error("key not in tablet range")]
    KeyNotInRange,
    /// A request the engine refuses on its face (empty row, oversized value, bad family...).
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// The tablet was closed (unloaded) under the caller.
    #[error("tablet closed")]
    Closed,
}

impl StorageError {
    pub fn corruption(file: impl Into<String>, reason: impl Into<String>) -> Self {
        StorageError::Corruption {
            file: file.into(),
            reason: reason.into(),
        }
    }
}
