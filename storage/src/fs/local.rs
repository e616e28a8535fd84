//! `LocalFs`: the [`FileStore`] on a local disk through `std::fs`, under one root directory.
//!
//! Owns: mapping `/`-separated store paths to real paths under the root, and POSIX durability
//! (`sync_data` for files, `fsync` of the directory for creates, renames and deletes).
//! Must not: be used by anything but hosts and benchmarks (the simulator uses [`super::SimFs`]),
//! or cache anything: every call goes to the operating system. This is the only file in the
//! crate allowed to touch `std::fs`.

use std::fs::{self, File, OpenOptions};
use std::io::{ErrorKind, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::{FileStore, FsError, FsResult, ReadableFile, WritableFile};

/// A file store rooted at a local directory.
#[derive(Debug, Clone)]
pub struct LocalFs {
    root: PathBuf,
}

impl LocalFs {
    /// Use (and create if needed) `root` as the store's root directory.
    pub fn new(root: impl Into<PathBuf>) -> FsResult<LocalFs> {
        let root = root.into();
        fs::create_dir_all(&root).map_err(|e| io_err(&root, e))?;
        Ok(LocalFs { root })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    fn real(&self, path: &str) -> FsResult<PathBuf> {
        // Store paths are relative and never climb out of the root.
        if path.starts_with('/') || path.split('/').any(|c| c == "..") {
            return Err(FsError::Io {
                path: path.to_string(),
                reason: "path escapes root".into(),
            });
        }
        Ok(if path.is_empty() {
            self.root.clone()
        } else {
            self.root.join(path)
        })
    }

    /// Create the directories leading to `real`, fsyncing each new directory's parent so the
    /// new directory entry itself survives a crash (a later `sync_dir` only covers the leaf).
    fn ensure_parent(&self, real: &Path) -> FsResult<()> {
        let Some(parent) = real.parent() else {
            return Ok(());
        };
        if parent.is_dir() {
            return Ok(());
        }
        let mut missing = Vec::new();
        let mut cur = parent;
        while !cur.is_dir() {
            missing.push(cur.to_path_buf());
            match cur.parent() {
                Some(p) => cur = p,
                None => break,
            }
        }
        for dir in missing.iter().rev() {
            match fs::create_dir(dir) {
                Ok(()) => {}
                Err(e) if e.kind() == ErrorKind::AlreadyExists => {}
                Err(e) => return Err(io_err(dir, e)),
            }
            if let Some(p) = dir.parent() {
                fsync_dir(p)?;
            }
        }
        Ok(())
    }
}

fn io_err(path: &Path, e: std::io::Error) -> FsError {
    let p = path.display().to_string();
    match e.kind() {
        ErrorKind::NotFound => FsError::NotFound(p),
        ErrorKind::AlreadyExists => FsError::AlreadyExists(p),
        ErrorKind::StorageFull => FsError::DiskFull,
        _ => FsError::Io {
            path: p,
            reason: e.to_string(),
        },
    }
}

fn fsync_dir(dir: &Path) -> FsResult<()> {
    let f = File::open(dir).map_err(|e| io_err(dir, e))?;
    f.sync_all().map_err(|e| io_err(dir, e))
}

struct LocalWritable {
    file: File,
    path: PathBuf,
    len: u64,
}

impl WritableFile for LocalWritable {
    fn append(&mut self, data: &[u8]) -> FsResult<()> {
        self.file
            .write_all(data)
            .map_err(|e| io_err(&self.path, e))?;
        self.len += data.len() as u64;
        Ok(())
    }
    fn sync(&mut self) -> FsResult<()> {
        self.file.sync_data().map_err(|e| io_err(&self.path, e))
    }
    fn len(&self) -> u64 {
        self.len
    }
}

struct LocalReadable {
    file: File,
    path: PathBuf,
    len: u64,
}

impl ReadableFile for LocalReadable {
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> FsResult<()> {
        if offset.saturating_add(buf.len() as u64) > self.len {
            return Err(FsError::ShortRead {
                path: self.path.display().to_string(),
                offset,
                len: buf.len(),
                file_len: self.len,
            });
        }
        self.file
            .read_exact_at(buf, offset)
            .map_err(|e| io_err(&self.path, e))
    }
    fn len(&self) -> u64 {
        self.len
    }
}

impl FileStore for LocalFs {
    fn create(&self, path: &str) -> FsResult<Box<dyn WritableFile>> {
        let real = self.real(path)?;
        self.ensure_parent(&real)?;
        let file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(&real)
            .map_err(|e| io_err(&real, e))?;
        Ok(Box::new(LocalWritable {
            file,
            path: real,
            len: 0,
        }))
    }

    fn open(&self, path: &str) -> FsResult<Arc<dyn ReadableFile>> {
        let real = self.real(path)?;
        let file = File::open(&real).map_err(|e| io_err(&real, e))?;
        let len = file.metadata().map_err(|e| io_err(&real, e))?.len();
        Ok(Arc::new(LocalReadable {
            file,
            path: real,
            len,
        }))
    }

    fn len(&self, path: &str) -> FsResult<u64> {
        let real = self.real(path)?;
        Ok(fs::metadata(&real).map_err(|e| io_err(&real, e))?.len())
    }

    fn exists(&self, path: &str) -> bool {
        self.real(path).map(|p| p.exists()).unwrap_or(false)
    }

    fn rename(&self, from: &str, to: &str) -> FsResult<()> {
        let (rf, rt) = (self.real(from)?, self.real(to)?);
        self.ensure_parent(&rt)?;
        fs::rename(&rf, &rt).map_err(|e| io_err(&rf, e))
    }

    fn delete(&self, path: &str) -> FsResult<()> {
        let real = self.real(path)?;
        fs::remove_file(&real).map_err(|e| io_err(&real, e))
    }

    fn list(&self, dir: &str) -> FsResult<Vec<String>> {
        let real = self.real(dir)?;
        let rd = match fs::read_dir(&real) {
            Ok(rd) => rd,
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(io_err(&real, e)),
        };
        let mut names = Vec::new();
        for entry in rd {
            let entry = entry.map_err(|e| io_err(&real, e))?;
            names.push(entry.file_name().to_string_lossy().into_owned());
        }
        names.sort();
        Ok(names)
    }

    fn sync_dir(&self, dir: &str) -> FsResult<()> {
        let real = self.real(dir)?;
        if !real.is_dir() {
            // Nothing was ever created there, so there is nothing to make durable.
            return Ok(());
        }
        fsync_dir(&real)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> LocalFs {
        let root =
            std::env::temp_dir().join(format!("shale-localfs-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&root);
        LocalFs::new(root).expect("scratch root")
    }

    #[test]
    fn write_read_rename_list_delete() -> FsResult<()> {
        let fs = scratch("basic");
        let mut f = fs.create("a/b/x.tmp")?;
        f.append(b"hello ")?;
        f.append(b"world")?;
        f.sync()?;
        assert_eq!(f.len(), 11);
        drop(f);
        fs.rename("a/b/x.tmp", "a/b/x")?;
        fs.sync_dir("a/b")?;
        assert!(!fs.exists("a/b/x.tmp"));
        let r = fs.open("a/b/x")?;
        let mut buf = [0u8; 5];
        r.read_at(6, &mut buf)?;
        assert_eq!(&buf, b"world");
        assert!(matches!(
            r.read_at(8, &mut buf),
            Err(FsError::ShortRead { .. })
        ));
        assert_eq!(fs.list("a")?, vec!["b".to_string()]);
        assert_eq!(fs.list("nope")?, Vec::<String>::new());
        fs.delete("a/b/x")?;
        assert!(matches!(fs.open("a/b/x").err(), Some(FsError::NotFound(_))));
        assert!(fs.real("../etc").is_err());
        let _ = fs::remove_dir_all(fs.root());
        Ok(())
    }
}
