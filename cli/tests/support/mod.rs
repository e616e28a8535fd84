//! Test support: a `shale dev` child process on a temp folder and OS-chosen loopback ports,
//! killed when dropped, and a scratch folder removed when dropped.
//!
//! [`Dev::start_logged`] keeps the child's stderr (its tracing logs) in a file, appended across
//! restarts, and [`LogTail`] prints the file's tail when the test panics: a failure on a loaded
//! CI machine is only diagnosable from the cluster's own account of it.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::fs::OpenOptions;
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

pub const SHALE: &str = env!("CARGO_BIN_EXE_shale");
/// How long `shale dev` may take to print its address.
pub const START_TIMEOUT: Duration = Duration::from_secs(30);

pub struct Scratch(pub PathBuf);

impl Scratch {
    pub fn new(tag: &str) -> Self {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        let p = std::env::temp_dir().join(format!("shale-{tag}-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&p).unwrap();
        Scratch(p)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        // A failed test's folder (data and logs) is kept for a post-mortem.
        if std::thread::panicking() {
            eprintln!("kept {} for inspection", self.0.display());
            return;
        }
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

pub struct Dev {
    pub child: Child,
    pub meta: SocketAddr,
}

impl Dev {
    /// Start `shale dev` on `data` and wait for its meta address; its logs are dropped.
    pub fn start(data: &Path, nodes: usize) -> Dev {
        Self::spawn(data, nodes, "error", Stdio::null())
    }

    /// Like [`Dev::start`], with the child's logs at `filter` (a `RUST_LOG` value) appended
    /// to `log`.
    pub fn start_logged(data: &Path, nodes: usize, log: &Path, filter: &str) -> Dev {
        let mut file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .expect("open the child's log file");
        // Marks where each start (the first, the one after kill -9) begins in the file.
        writeln!(
            file,
            "==== test: shale dev starts on {} ====",
            data.display()
        )
        .expect("write the child's log file");
        Self::spawn(data, nodes, filter, Stdio::from(file))
    }

    fn spawn(data: &Path, nodes: usize, filter: &str, stderr: Stdio) -> Dev {
        let mut child = Command::new(SHALE)
            .args(["dev", "--base-port", "0", "--nodes"])
            .arg(nodes.to_string())
            .arg("--data")
            .arg(data)
            .env("RUST_LOG", filter)
            // Plain text in the log file.
            .env("NO_COLOR", "1")
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .expect("spawn shale dev");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(addr) = line.strip_prefix("meta address: ") {
                    let _ = tx.send(addr.trim().to_string());
                }
            }
        });
        let addr = match rx.recv_timeout(START_TIMEOUT) {
            Ok(a) => a,
            Err(_) => {
                let _ = child.kill();
                panic!("shale dev printed no meta address within {START_TIMEOUT:?}");
            }
        };
        Dev {
            child,
            meta: addr.parse().expect("meta address"),
        }
    }

    /// SIGKILL, no clean shutdown.
    pub fn kill9(mut self) {
        self.child.kill().expect("kill");
        self.child.wait().expect("wait");
    }
}

impl Drop for Dev {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Prints the last `bytes` of a log file to stderr when dropped during a panic.
pub struct LogTail {
    pub path: PathBuf,
    pub bytes: u64,
}

impl Drop for LogTail {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            return;
        }
        let Ok(mut f) = std::fs::File::open(&self.path) else {
            eprintln!("(no log at {})", self.path.display());
            return;
        };
        let len = f.metadata().map(|m| m.len()).unwrap_or(0);
        let _ = f.seek(SeekFrom::Start(len.saturating_sub(self.bytes)));
        let mut tail = Vec::new();
        let _ = f.read_to_end(&mut tail);
        eprintln!(
            "---- last {} bytes of {} ----\n{}\n---- end of log ----",
            tail.len(),
            self.path.display(),
            String::from_utf8_lossy(&tail)
        );
    }
}

/// Spawn `cmd` (a `shale` role) with stdout piped and wait for its `... listening on ADDR`
/// line; the child and ADDR. Kills the child and panics with `what` if no address comes
/// within [`START_TIMEOUT`].
pub fn spawn_listening(mut cmd: Command, what: &str) -> (Child, String) {
    let mut child = cmd
        .env("RUST_LOG", "error")
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn a role");
    let stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Some((_, addr)) = line.split_once(" listening on ") {
                let _ = tx.send(addr.trim().to_string());
            }
        }
    });
    match rx.recv_timeout(START_TIMEOUT) {
        Ok(addr) => (child, addr),
        Err(_) => {
            let _ = child.kill();
            panic!("{what} printed no address within {START_TIMEOUT:?}");
        }
    }
}
