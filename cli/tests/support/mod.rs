//! Test support: a `shale dev` child process on a temp folder and OS-chosen loopback ports,
//! killed when dropped, and a scratch folder removed when dropped.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader};
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
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

pub struct Dev {
    pub child: Child,
    pub meta: SocketAddr,
}

impl Dev {
    /// Start `shale dev` on `data` and wait for its meta address.
    pub fn start(data: &Path, nodes: usize) -> Dev {
        let mut child = Command::new(SHALE)
            .args(["dev", "--base-port", "0", "--nodes"])
            .arg(nodes.to_string())
            .arg("--data")
            .arg(data)
            .env("RUST_LOG", "error")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
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
