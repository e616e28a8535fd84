//! `CountingFs`: a file store that passes every call to another and counts the bytes
//! appended per file extension, so a benchmark on the local disk can show what an operation
//! wrote (a split or merge must write 0 bytes to `.sst` files). `SimFs` counts the same way
//! in its own stats.
//!
//! Must not: change, buffer or reorder anything the wrapped store does.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use super::{FileStore, FsResult, ReadableFile, WritableFile};

type Counts = Arc<Mutex<BTreeMap<String, u64>>>;

pub struct CountingFs {
    inner: Arc<dyn FileStore>,
    appended: Counts,
}

impl CountingFs {
    pub fn new(inner: Arc<dyn FileStore>) -> CountingFs {
        CountingFs {
            inner,
            appended: Arc::default(),
        }
    }

    /// Bytes appended so far to files whose name ends in `.{ext}`.
    pub fn appended_bytes(&self, ext: &str) -> u64 {
        let counts = self.appended.lock().unwrap_or_else(|e| e.into_inner());
        counts.get(ext).copied().unwrap_or(0)
    }
}

fn extension(path: &str) -> String {
    let name = path.rsplit('/').next().unwrap_or(path);
    match name.rfind('.') {
        Some(i) => name[i + 1..].to_string(),
        None => String::new(),
    }
}

struct CountingWritable {
    inner: Box<dyn WritableFile>,
    ext: String,
    appended: Counts,
}

impl WritableFile for CountingWritable {
    fn append(&mut self, data: &[u8]) -> FsResult<()> {
        self.inner.append(data)?;
        let mut counts = self.appended.lock().unwrap_or_else(|e| e.into_inner());
        *counts.entry(self.ext.clone()).or_insert(0) += data.len() as u64;
        Ok(())
    }
    fn sync(&mut self) -> FsResult<()> {
        self.inner.sync()
    }
    fn len(&self) -> u64 {
        self.inner.len()
    }
}

impl FileStore for CountingFs {
    fn create(&self, path: &str) -> FsResult<Box<dyn WritableFile>> {
        Ok(Box::new(CountingWritable {
            inner: self.inner.create(path)?,
            ext: extension(path),
            appended: self.appended.clone(),
        }))
    }
    fn open(&self, path: &str) -> FsResult<Arc<dyn ReadableFile>> {
        self.inner.open(path)
    }
    fn len(&self, path: &str) -> FsResult<u64> {
        self.inner.len(path)
    }
    fn exists(&self, path: &str) -> bool {
        self.inner.exists(path)
    }
    fn rename(&self, from: &str, to: &str) -> FsResult<()> {
        self.inner.rename(from, to)
    }
    fn delete(&self, path: &str) -> FsResult<()> {
        self.inner.delete(path)
    }
    fn list(&self, dir: &str) -> FsResult<Vec<String>> {
        self.inner.list(dir)
    }
    fn sync_dir(&self, dir: &str) -> FsResult<()> {
        self.inner.sync_dir(dir)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fs::{SimFs, SimFsConfig};

    #[test]
    fn counts_appended_bytes_by_extension_and_passes_everything_through() -> FsResult<()> {
        let sim = SimFs::new(SimFsConfig::default());
        let fs = CountingFs::new(Arc::new(sim.clone()));
        let mut sst = fs.create("d/0000000001-00000002.sst")?;
        sst.append(b"12345")?;
        sst.sync()?;
        let mut man = fs.create("d/MANIFEST-1")?;
        man.append(b"ab")?;
        assert_eq!(fs.appended_bytes("sst"), 5);
        assert_eq!(fs.appended_bytes("wal"), 0);
        assert_eq!(
            fs.appended_bytes(""),
            2,
            "MANIFEST-1 counts as no extension"
        );
        assert_eq!(fs.len("d/0000000001-00000002.sst")?, 5);
        fs.sync_dir("d")?;
        assert_eq!(
            sim.durable_contents("d/0000000001-00000002.sst"),
            Some(b"12345".to_vec())
        );
        Ok(())
    }
}
