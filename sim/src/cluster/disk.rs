//! Per-process disk faults over the shared file store: each tablet node and master reaches
//! the shared [`SimFs`] through its own [`NodeDisk`], so a scenario can make *one* process's
//! disk fail operations, report full, or (through the executor's slow jobs) go slow, while
//! the others are healthy.
//!
//! Errors are drawn from a per-process ChaCha8 stream seeded from the run's seed and the node
//! id; the executor is single-threaded, so the draws happen in a deterministic order.
//!
//! Owns: the fault switches of each process's disk and the wrapper that applies them. Must
//! not: change what the shared store holds (a fault only refuses an operation) or read clocks.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use shale_actors::NodeId;
use shale_storage::fs::{FileStore, FsError, FsResult, ReadableFile, SimFs, WritableFile};
use std::sync::{Arc, Mutex, MutexGuard};

/// What is wrong with one process's disk right now.
#[derive(Debug)]
struct Faults {
    /// Chance that an operation (read or write) fails with an injected error.
    error_probability: f64,
    /// Creates and appends fail with `DiskFull`.
    full: bool,
    rng: ChaCha8Rng,
    injected: u64,
}

/// The switches of one process's disk; cheap to clone (a handle).
#[derive(Clone, Debug)]
pub struct DiskControl(Arc<Mutex<Faults>>);

impl DiskControl {
    pub fn new(seed: u64, node: NodeId) -> Self {
        let rng = ChaCha8Rng::seed_from_u64(seed ^ 0x4449_534b ^ node.0.rotate_left(17));
        Self(Arc::new(Mutex::new(Faults {
            error_probability: 0.0,
            full: false,
            rng,
            injected: 0,
        })))
    }

    fn lock(&self) -> MutexGuard<'_, Faults> {
        // Nothing panics while holding the lock; a poisoned lock still holds valid switches.
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Operations fail with this probability (0 turns errors off).
    pub fn set_error_probability(&self, p: f64) {
        self.lock().error_probability = p.clamp(0.0, 1.0);
    }

    pub fn set_full(&self, full: bool) {
        self.lock().full = full;
    }

    /// Back to a healthy disk.
    pub fn clear(&self) {
        let mut f = self.lock();
        f.error_probability = 0.0;
        f.full = false;
    }

    /// Operations refused so far.
    pub fn injected(&self) -> u64 {
        self.lock().injected
    }

    fn check(&self, path: &str, grows: bool) -> FsResult<()> {
        let mut f = self.lock();
        if grows && f.full {
            f.injected += 1;
            return Err(FsError::DiskFull);
        }
        let p = f.error_probability;
        if p > 0.0 && f.rng.gen_bool(p) {
            f.injected += 1;
            return Err(FsError::Injected(format!("{path}: disk fault")));
        }
        Ok(())
    }
}

/// One process's view of the shared store.
#[derive(Clone, Debug)]
pub struct NodeDisk {
    pub fs: SimFs,
    pub control: DiskControl,
}

struct Writer {
    inner: Box<dyn WritableFile>,
    path: String,
    control: DiskControl,
}

impl WritableFile for Writer {
    fn append(&mut self, data: &[u8]) -> FsResult<()> {
        self.control.check(&self.path, true)?;
        self.inner.append(data)
    }
    fn sync(&mut self) -> FsResult<()> {
        self.control.check(&self.path, false)?;
        self.inner.sync()
    }
    fn len(&self) -> u64 {
        self.inner.len()
    }
}

struct Reader {
    inner: Arc<dyn ReadableFile>,
    path: String,
    control: DiskControl,
}

impl ReadableFile for Reader {
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> FsResult<()> {
        self.control.check(&self.path, false)?;
        self.inner.read_at(offset, buf)
    }
    fn len(&self) -> u64 {
        self.inner.len()
    }
}

impl FileStore for NodeDisk {
    fn create(&self, path: &str) -> FsResult<Box<dyn WritableFile>> {
        self.control.check(path, true)?;
        let inner = self.fs.create(path)?;
        Ok(Box::new(Writer {
            inner,
            path: path.to_string(),
            control: self.control.clone(),
        }))
    }
    fn open(&self, path: &str) -> FsResult<Arc<dyn ReadableFile>> {
        self.control.check(path, false)?;
        let inner = self.fs.open(path)?;
        Ok(Arc::new(Reader {
            inner,
            path: path.to_string(),
            control: self.control.clone(),
        }))
    }
    fn len(&self, path: &str) -> FsResult<u64> {
        self.fs.len(path)
    }
    fn exists(&self, path: &str) -> bool {
        self.fs.exists(path)
    }
    fn rename(&self, from: &str, to: &str) -> FsResult<()> {
        self.control.check(to, false)?;
        self.fs.rename(from, to)
    }
    fn delete(&self, path: &str) -> FsResult<()> {
        self.control.check(path, false)?;
        self.fs.delete(path)
    }
    fn list(&self, dir: &str) -> FsResult<Vec<String>> {
        self.control.check(dir, false)?;
        self.fs.list(dir)
    }
    fn sync_dir(&self, dir: &str) -> FsResult<()> {
        self.control.check(dir, false)?;
        self.fs.sync_dir(dir)
    }
}
