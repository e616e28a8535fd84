//! The file-store trait: the one door through which the engine touches storage.
//!
//! Synchronous and narrow on purpose: create, append, sync, read_at, len, rename, delete, list,
//! sync_dir. Paths are `/`-separated strings relative to the store's root; directories exist
//! implicitly (creating `a/b/c` makes `a/b`). Durability follows POSIX: appended bytes are
//! durable only after `sync` on that file, and a create, rename or delete is durable only after
//! `sync_dir` on its parent directory. [`SimFs`] enforces exactly that on `crash()`.

mod counting;
mod local;
mod sim;

pub use counting::CountingFs;
pub use local::LocalFs;
pub use sim::{SimFault, SimFs, SimFsConfig, SimFsStats};

use std::sync::Arc;

pub type FsResult<T> = Result<T, FsError>;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FsError {
    #[error("not found: {0}")]
    NotFound(String),
    #[error("already exists: {0}")]
    AlreadyExists(String),
    #[error("disk full")]
    DiskFull,
    #[error("read past end of {path}: offset {offset} + {len} > {file_len}")]
    ShortRead {
        path: String,
        offset: u64,
        len: usize,
        file_len: u64,
    },
    /// An error injected by the simulated file store.
    #[error("injected I/O error on {0}")]
    Injected(String),
    #[error("I/O error on {path}: {reason}")]
    Io { path: String, reason: String },
}

/// A file being written: append-only, then synced.
pub trait WritableFile: Send {
    fn append(&mut self, data: &[u8]) -> FsResult<()>;
    /// Make everything appended so far durable.
    fn sync(&mut self) -> FsResult<()>;
    /// Bytes appended so far (durable or not).
    fn len(&self) -> u64;
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A file being read at random offsets. Shared between threads (block reads of one SST).
pub trait ReadableFile: Send + Sync {
    /// Fill `buf` from `offset`; an error if the file is shorter.
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> FsResult<()>;
    fn len(&self) -> u64;
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A store of files under one root.
pub trait FileStore: Send + Sync + 'static {
    /// Create `path` empty (truncating an existing file) and open it for appending.
    fn create(&self, path: &str) -> FsResult<Box<dyn WritableFile>>;
    /// Open an existing file for reading.
    fn open(&self, path: &str) -> FsResult<Arc<dyn ReadableFile>>;
    /// Length of an existing file.
    fn len(&self, path: &str) -> FsResult<u64>;
    fn exists(&self, path: &str) -> bool;
    /// Atomically replace `to` with `from`.
    fn rename(&self, from: &str, to: &str) -> FsResult<()>;
    fn delete(&self, path: &str) -> FsResult<()>;
    /// Names (not paths) of the entries directly under `dir`, sorted. An absent dir is empty.
    fn list(&self, dir: &str) -> FsResult<Vec<String>>;
    /// Make creates, renames and deletes under `dir` durable.
    fn sync_dir(&self, dir: &str) -> FsResult<()>;
}

/// The parent directory of a path ("" for a top-level name).
pub fn parent_dir(path: &str) -> &str {
    match path.rfind('/') {
        Some(i) => &path[..i],
        None => "",
    }
}

/// `dir/name`, or `name` when `dir` is empty.
pub fn join(dir: &str, name: &str) -> String {
    if dir.is_empty() {
        name.to_string()
    } else {
        format!("{dir}/{name}")
    }
}
