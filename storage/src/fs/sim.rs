//! `SimFs`: an in-memory, deterministic [`FileStore`] with POSIX durability and faults.
//!
//! Owns: the simulated disk. Every file is an inode holding the bytes written so far and the
//! length made durable by `sync`. There are two namespaces: the *current* one (what `open`
//! and `list` see) and the *durable* one (what survives `crash()`); `sync_dir(d)` copies the
//! current bindings of `d`'s direct entries into the durable namespace, so creates, renames
//! and deletes under `d` become durable together. `crash()` rebuilds the current namespace
//! from the durable one, cuts every file back to its durable length (or, with `torn_writes`,
//! keeps a seeded random prefix of the unsynced tail) and invalidates every open handle.
//!
//! Faults, all seeded (ChaCha8, no global RNG): read and write errors by probability, a
//! scheduled fault at the Nth operation, a full disk by capacity, a halt after N mutating
//! operations (for crash-point enumeration), and a simulated-latency counter.
//!
//! Must not: read clocks, sleep, spawn threads or touch a real disk. It is cheap to clone: a
//! clone is another handle on the same disk, so a simulator keeps it across an actor's crash.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::{parent_dir, FileStore, FsError, FsResult, ReadableFile, WritableFile};

/// How the simulated disk behaves. `Default` is a perfect disk.
#[derive(Debug, Clone)]
pub struct SimFsConfig {
    pub seed: u64,
    /// Chance that a read fails with [`FsError::Injected`].
    pub read_error_probability: f64,
    /// Chance that a mutating operation (create, append, sync, rename, delete, sync_dir) fails.
    pub write_error_probability: f64,
    /// On crash, keep a random prefix of each file's unsynced tail instead of dropping it.
    pub torn_writes: bool,
    /// Total bytes the disk holds; an append beyond it fails with [`FsError::DiskFull`].
    pub capacity_bytes: Option<u64>,
    /// Simulated cost of one operation, of a sync, and per byte moved.
    pub op_latency_nanos: u64,
    pub sync_latency_nanos: u64,
    pub byte_latency_nanos: u64,
}

impl Default for SimFsConfig {
    fn default() -> Self {
        SimFsConfig {
            seed: 0,
            read_error_probability: 0.0,
            write_error_probability: 0.0,
            torn_writes: false,
            capacity_bytes: None,
            op_latency_nanos: 1_000,
            sync_latency_nanos: 100_000,
            byte_latency_nanos: 1,
        }
    }
}

/// A fault the schedule can inject at a given operation index.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SimFault {
    /// The operation fails with [`FsError::Injected`].
    Error,
    /// The operation fails with [`FsError::DiskFull`].
    DiskFull,
}

/// Counters of everything the disk did, so tests can prove which paths ran.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SimFsStats {
    /// Every operation, reads included.
    pub ops: u64,
    /// create, append, sync, rename, delete, sync_dir: the operations that change the disk.
    pub mutating_ops: u64,
    pub creates: u64,
    pub appends: u64,
    pub appended_bytes: u64,
    /// Appended bytes keyed by file extension ("sst", "wal", "" for none).
    pub appended_bytes_by_ext: BTreeMap<String, u64>,
    pub syncs: u64,
    pub renames: u64,
    pub deletes: u64,
    pub dir_syncs: u64,
    pub reads: u64,
    pub read_bytes: u64,
    pub injected_faults: u64,
    pub crashes: u64,
    pub torn_tails: u64,
    pub simulated_nanos: u64,
}

#[derive(Debug, Default)]
struct Inode {
    data: Vec<u8>,
    durable_len: usize,
}

struct State {
    config: SimFsConfig,
    rng: ChaCha8Rng,
    inodes: BTreeMap<u64, Inode>,
    next_inode: u64,
    current: BTreeMap<String, u64>,
    durable: BTreeMap<String, u64>,
    /// Bumped by every crash; handles from an older generation are dead.
    generation: u64,
    schedule: BTreeMap<u64, SimFault>,
    halt_after_mutating_ops: Option<u64>,
    stats: SimFsStats,
}

/// The simulated file store. Clone it to share the same disk.
#[derive(Clone)]
pub struct SimFs {
    state: Arc<Mutex<State>>,
}

impl std::fmt::Debug for SimFs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimFs").finish_non_exhaustive()
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum OpClass {
    Read,
    Mutate,
}

impl State {
    /// Account for one operation and decide whether a fault fires on it.
    fn begin(&mut self, class: OpClass, path: &str, bytes: usize) -> FsResult<()> {
        let index = self.stats.ops;
        self.stats.ops += 1;
        self.stats.simulated_nanos += self.config.op_latency_nanos
            + self.config.byte_latency_nanos.saturating_mul(bytes as u64);
        if let Some(limit) = self.halt_after_mutating_ops {
            // The machine is dead from the limit on: nothing reaches the disk any more.
            if self.stats.mutating_ops >= limit {
                self.stats.injected_faults += 1;
                return Err(FsError::Injected(format!("{path}: halted")));
            }
        }
        if class == OpClass::Mutate {
            self.stats.mutating_ops += 1;
        }
        if let Some(fault) = self.schedule.remove(&index) {
            self.stats.injected_faults += 1;
            return Err(match fault {
                SimFault::Error => FsError::Injected(path.to_string()),
                SimFault::DiskFull => FsError::DiskFull,
            });
        }
        let p = match class {
            OpClass::Read => self.config.read_error_probability,
            OpClass::Mutate => self.config.write_error_probability,
        };
        if p > 0.0 && self.rng.gen_bool(p.min(1.0)) {
            self.stats.injected_faults += 1;
            return Err(FsError::Injected(path.to_string()));
        }
        Ok(())
    }

    fn used_bytes(&self) -> u64 {
        let mut live: Vec<u64> = self.current.values().copied().collect();
        live.extend(self.durable.values().copied());
        live.sort_unstable();
        live.dedup();
        live.iter()
            .filter_map(|i| self.inodes.get(i))
            .map(|n| n.data.len() as u64)
            .sum()
    }

    fn check_generation(&mut self, generation: u64, path: &str) -> FsResult<()> {
        if generation != self.generation {
            self.stats.injected_faults += 1;
            return Err(FsError::Injected(format!(
                "{path}: handle from before a crash"
            )));
        }
        Ok(())
    }
}

fn ext_of(path: &str) -> String {
    let name = &path[path.rfind('/').map_or(0, |i| i + 1)..];
    name.rfind('.')
        .map_or(String::new(), |i| name[i + 1..].to_string())
}

impl SimFs {
    pub fn new(config: SimFsConfig) -> SimFs {
        let rng = ChaCha8Rng::seed_from_u64(config.seed);
        SimFs {
            state: Arc::new(Mutex::new(State {
                config,
                rng,
                inodes: BTreeMap::new(),
                next_inode: 1,
                current: BTreeMap::new(),
                durable: BTreeMap::new(),
                generation: 0,
                schedule: BTreeMap::new(),
                halt_after_mutating_ops: None,
                stats: SimFsStats::default(),
            })),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock leaves plain data behind; keep using it.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn stats(&self) -> SimFsStats {
        self.lock().stats.clone()
    }

    /// Replace the fault probabilities and latencies (the seed's RNG stream continues).
    pub fn set_config(&self, config: SimFsConfig) {
        self.lock().config = config;
    }

    pub fn config(&self) -> SimFsConfig {
        self.lock().config.clone()
    }

    /// Fail the operation whose index (counting every operation from 0) is `op_index`.
    pub fn fail_op(&self, op_index: u64, fault: SimFault) {
        self.lock().schedule.insert(op_index, fault);
    }

    /// Once `n` mutating operations have happened in total, every further operation fails,
    /// as if the machine died there. `crash()` clears it; `None` removes the limit. Crash-point
    /// enumeration runs a workload once, reads `stats().mutating_ops`, then halts at each k.
    pub fn halt_after_mutating_ops(&self, n: Option<u64>) {
        self.lock().halt_after_mutating_ops = n;
    }

    /// Lose everything not durable, as a power cut would.
    pub fn crash(&self) {
        let mut st = self.lock();
        let st = &mut *st;
        st.generation += 1;
        st.stats.crashes += 1;
        st.halt_after_mutating_ops = None;
        st.current = st.durable.clone();
        let mut live: Vec<u64> = st.durable.values().copied().collect();
        live.sort_unstable();
        live.dedup();
        st.inodes.retain(|ino, _| live.binary_search(ino).is_ok());
        let torn = st.config.torn_writes;
        for inode in st.inodes.values_mut() {
            assert!(inode.durable_len <= inode.data.len());
            let tail = inode.data.len() - inode.durable_len;
            let keep = if torn && tail > 0 {
                st.stats.torn_tails += 1;
                inode.durable_len + st.rng.gen_range(0..=tail)
            } else {
                inode.durable_len
            };
            inode.data.truncate(keep);
            inode.durable_len = keep;
        }
        tracing::debug!(
            generation = st.generation,
            files = st.current.len(),
            "simfs crash"
        );
    }

    /// Flip one byte of a file, durably: the model of bit rot for corruption tests.
    pub fn corrupt_byte(&self, path: &str, offset: u64) -> FsResult<()> {
        let mut st = self.lock();
        let ino = *st
            .current
            .get(path)
            .ok_or_else(|| FsError::NotFound(path.to_string()))?;
        let inode = st
            .inodes
            .get_mut(&ino)
            .ok_or_else(|| FsError::NotFound(path.to_string()))?;
        let b = inode
            .data
            .get_mut(offset as usize)
            .ok_or_else(|| FsError::ShortRead {
                path: path.into(),
                offset,
                len: 1,
                file_len: 0,
            })?;
        *b ^= 0x5A;
        Ok(())
    }

    /// Every path in the current namespace, sorted.
    pub fn all_files(&self) -> Vec<String> {
        self.lock().current.keys().cloned().collect()
    }

    /// The bytes a file durably holds (what a crash now would leave), if its name is durable.
    pub fn durable_contents(&self, path: &str) -> Option<Vec<u8>> {
        let st = self.lock();
        let ino = st.durable.get(path)?;
        st.inodes.get(ino).map(|n| n.data[..n.durable_len].to_vec())
    }
}

struct SimWritable {
    fs: SimFs,
    path: String,
    ino: u64,
    generation: u64,
    len: u64,
}

impl WritableFile for SimWritable {
    fn append(&mut self, data: &[u8]) -> FsResult<()> {
        let mut st = self.fs.lock();
        st.check_generation(self.generation, &self.path)?;
        st.begin(OpClass::Mutate, &self.path, data.len())?;
        if let Some(cap) = st.config.capacity_bytes {
            if st.used_bytes() + data.len() as u64 > cap {
                st.stats.injected_faults += 1;
                return Err(FsError::DiskFull);
            }
        }
        st.stats.appends += 1;
        st.stats.appended_bytes += data.len() as u64;
        *st.stats
            .appended_bytes_by_ext
            .entry(ext_of(&self.path))
            .or_default() += data.len() as u64;
        let inode = st
            .inodes
            .get_mut(&self.ino)
            .ok_or_else(|| FsError::NotFound(self.path.clone()))?;
        inode.data.extend_from_slice(data);
        self.len += data.len() as u64;
        assert_eq!(inode.data.len() as u64, self.len, "one writer per inode");
        Ok(())
    }

    fn sync(&mut self) -> FsResult<()> {
        let mut st = self.fs.lock();
        st.check_generation(self.generation, &self.path)?;
        st.begin(OpClass::Mutate, &self.path, 0)?;
        st.stats.syncs += 1;
        st.stats.simulated_nanos += st.config.sync_latency_nanos;
        let inode = st
            .inodes
            .get_mut(&self.ino)
            .ok_or_else(|| FsError::NotFound(self.path.clone()))?;
        inode.durable_len = inode.data.len();
        Ok(())
    }

    fn len(&self) -> u64 {
        self.len
    }
}

struct SimReadable {
    fs: SimFs,
    path: String,
    ino: u64,
    generation: u64,
    len: u64,
}

impl ReadableFile for SimReadable {
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> FsResult<()> {
        let mut st = self.fs.lock();
        st.check_generation(self.generation, &self.path)?;
        st.begin(OpClass::Read, &self.path, buf.len())?;
        st.stats.reads += 1;
        st.stats.read_bytes += buf.len() as u64;
        let inode = st
            .inodes
            .get(&self.ino)
            .ok_or_else(|| FsError::NotFound(self.path.clone()))?;
        let end = offset.checked_add(buf.len() as u64);
        match end {
            Some(end) if end <= inode.data.len() as u64 => {
                buf.copy_from_slice(&inode.data[offset as usize..end as usize]);
                Ok(())
            }
            _ => Err(FsError::ShortRead {
                path: self.path.clone(),
                offset,
                len: buf.len(),
                file_len: inode.data.len() as u64,
            }),
        }
    }

    fn len(&self) -> u64 {
        self.len
    }
}

impl FileStore for SimFs {
    fn create(&self, path: &str) -> FsResult<Box<dyn WritableFile>> {
        let mut st = self.lock();
        st.begin(OpClass::Mutate, path, 0)?;
        st.stats.creates += 1;
        // A fresh inode: the old contents (if any) stay reachable through the durable
        // namespace until the parent directory is synced, like a truncate not yet on disk.
        let ino = st.next_inode;
        st.next_inode += 1;
        st.inodes.insert(ino, Inode::default());
        st.current.insert(path.to_string(), ino);
        let generation = st.generation;
        drop(st);
        Ok(Box::new(SimWritable {
            fs: self.clone(),
            path: path.to_string(),
            ino,
            generation,
            len: 0,
        }))
    }

    fn open(&self, path: &str) -> FsResult<Arc<dyn ReadableFile>> {
        let mut st = self.lock();
        st.begin(OpClass::Read, path, 0)?;
        let ino = *st
            .current
            .get(path)
            .ok_or_else(|| FsError::NotFound(path.to_string()))?;
        let len = st.inodes.get(&ino).map_or(0, |n| n.data.len() as u64);
        let generation = st.generation;
        drop(st);
        Ok(Arc::new(SimReadable {
            fs: self.clone(),
            path: path.to_string(),
            ino,
            generation,
            len,
        }))
    }

    fn len(&self, path: &str) -> FsResult<u64> {
        let mut st = self.lock();
        st.begin(OpClass::Read, path, 0)?;
        let ino = *st
            .current
            .get(path)
            .ok_or_else(|| FsError::NotFound(path.to_string()))?;
        Ok(st.inodes.get(&ino).map_or(0, |n| n.data.len() as u64))
    }

    fn exists(&self, path: &str) -> bool {
        self.lock().current.contains_key(path)
    }

    fn rename(&self, from: &str, to: &str) -> FsResult<()> {
        let mut st = self.lock();
        st.begin(OpClass::Mutate, from, 0)?;
        st.stats.renames += 1;
        let ino = st
            .current
            .remove(from)
            .ok_or_else(|| FsError::NotFound(from.to_string()))?;
        st.current.insert(to.to_string(), ino);
        Ok(())
    }

    fn delete(&self, path: &str) -> FsResult<()> {
        let mut st = self.lock();
        st.begin(OpClass::Mutate, path, 0)?;
        st.stats.deletes += 1;
        st.current
            .remove(path)
            .ok_or_else(|| FsError::NotFound(path.to_string()))?;
        Ok(())
    }

    fn list(&self, dir: &str) -> FsResult<Vec<String>> {
        let mut st = self.lock();
        st.begin(OpClass::Read, dir, 0)?;
        let prefix = if dir.is_empty() {
            String::new()
        } else {
            format!("{dir}/")
        };
        let mut names: Vec<String> = st
            .current
            .range(prefix.clone()..)
            .take_while(|(p, _)| p.starts_with(&prefix))
            .map(|(p, _)| {
                let rest = &p[prefix.len()..];
                rest.split('/').next().unwrap_or(rest).to_string()
            })
            .collect();
        names.dedup();
        Ok(names)
    }

    fn sync_dir(&self, dir: &str) -> FsResult<()> {
        let mut st = self.lock();
        st.begin(OpClass::Mutate, dir, 0)?;
        st.stats.dir_syncs += 1;
        st.stats.simulated_nanos += st.config.sync_latency_nanos;
        let st = &mut *st;
        // The directory's direct entries become durable exactly as they are now.
        st.durable.retain(|p, _| parent_dir(p) != dir);
        for (p, ino) in &st.current {
            if parent_dir(p) == dir {
                st.durable.insert(p.clone(), *ino);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
#[path = "sim_tests.rs"]
mod tests;
