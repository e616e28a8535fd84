//! One role per process: `shale meta`, `shale master` and two `shale tabletnode` children,
//! each with its own TOML config on OS-chosen 127.0.0.1 ports (the meta store's address is
//! read from its first line and written into the others' configs), sharing one data folder
//! as they would share a file store. A table is created, written and read through the CLI,
//! then every role is stopped with Ctrl-C (SIGINT) and must exit cleanly.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};
use support::{spawn_listening, Scratch, SHALE, START_TIMEOUT};

/// A role child process, killed if the test ends before it was stopped.
struct Role {
    child: Option<Child>,
    addr: String,
}

impl Role {
    /// Start `shale <role> --config <file>` and wait for its `listening on` line.
    fn start(role: &str, config: &Path) -> Role {
        let mut cmd = Command::new(SHALE);
        cmd.arg(role)
            .arg("--config")
            .arg(config)
            .stderr(Stdio::null());
        let (child, addr) = spawn_listening(cmd, &format!("shale {role}"));
        Role {
            child: Some(child),
            addr,
        }
    }

    /// Ctrl-C, then the exit status must be success within the timeout.
    fn stop(mut self) {
        let mut child = self.child.take().expect("running");
        let sent = Command::new("kill")
            .args(["-INT", &child.id().to_string()])
            .status()
            .expect("run kill");
        assert!(sent.success());
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if let Some(status) = child.try_wait().expect("wait") {
                assert!(status.success(), "role exited with {status}");
                return;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                panic!("role did not stop on Ctrl-C");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Role {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn shale(cluster: &str, args: &[&str]) -> Output {
    Command::new(SHALE)
        .args(args)
        .env("SHALE_CLUSTER", cluster)
        .env("RUST_LOG", "error")
        .output()
        .expect("run shale")
}

fn ok(cluster: &str, args: &[&str]) -> String {
    let out = shale(cluster, args);
    assert!(
        out.status.success(),
        "{args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf8")
}

fn json(cluster: &str, args: &[&str]) -> serde_json::Value {
    let mut all = args.to_vec();
    all.push("--json");
    serde_json::from_str(&ok(cluster, &all)).expect("json")
}

/// Poll `check` (a CLI query) until it holds or 60 s pass.
fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !check() {
        assert!(Instant::now() < deadline, "never: {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn meta_master_and_tablet_nodes_in_separate_processes() {
    let scratch = Scratch::new("roles");
    let data = scratch.0.join("data");
    let data = data.to_str().unwrap();
    let write = |name: &str, body: String| {
        let p = scratch.0.join(name);
        std::fs::write(&p, body).unwrap();
        p
    };
    // Role settings in the files too, so a key the roles do not know would stop them here.
    let meta_cfg = write(
        "meta.toml",
        format!(
            "data = \"{data}\"\nlisten = \"127.0.0.1:0\"\n\
             [metastore]\nnode_lease_ms = 3000\n"
        ),
    );
    let meta = Role::start("meta", &meta_cfg);
    let common = format!(
        "data = \"{data}\"\nlisten = \"127.0.0.1:0\"\n\
         meta = \"{}\"\n",
        meta.addr
    );
    let master_cfg = write(
        "master.toml",
        format!("{common}[master]\nquery_interval_ms = 500\nquery_deadline_ms = 250\n"),
    );
    let master = Role::start("master", &master_cfg);
    let mut nodes = Vec::new();
    for i in 0..2u64 {
        let cfg = write(
            &format!("node{i}.toml"),
            format!(
                "{common}node_id = {}\nname = \"n{i}\"\n[tabletnode]\nheartbeat_interval_ms = 400\n",
                100 + i
            ),
        );
        nodes.push(Role::start("tabletnode", &cfg));
    }
    let cluster = meta.addr.clone();

    eventually("two nodes up", || {
        json(&cluster, &["node", "list"])
            .as_array()
            .is_some_and(|n| n.len() == 2 && n.iter().all(|x| x["status"] == "Up"))
    });
    // The meta store knows a node as soon as it registers; the master learns it on its next
    // round. Create the table only once the master places tablets on both.
    eventually("the master sees two nodes up", || {
        json(&cluster, &["status"])["nodes_up"] == 2
    });
    ok(
        &cluster,
        &["table", "create", "t", "--family", "cf", "--split", "m"],
    );
    eventually("both tablets Ready on two nodes", || {
        let ts = json(&cluster, &["tablet", "list", "t"]);
        let ts = ts.as_array().cloned().unwrap_or_default();
        let on: std::collections::BTreeSet<String> =
            ts.iter().map(|t| t["node"].to_string()).collect();
        ts.len() == 2 && ts.iter().all(|t| t["status"] == "Ready") && on.len() == 2
    });
    for (row, value) in [("apple", "red"), ("zebra", "striped")] {
        ok(&cluster, &["put", "t", row, "cf:q", value]);
    }
    assert!(ok(&cluster, &["get", "t", "apple"]).contains("red"));
    assert!(ok(&cluster, &["get", "t", "zebra"]).contains("striped"));
    let rows = json(&cluster, &["scan", "t"]);
    let rows: Vec<&str> = rows
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|r| r["row"].as_str())
        .collect();
    assert_eq!(rows, ["apple", "zebra"], "across both tablets and nodes");

    for n in nodes {
        n.stop();
    }
    master.stop();
    meta.stop();
}

#[test]
fn a_role_with_bad_settings_refuses_to_start() {
    let scratch = Scratch::new("roles-bad");
    let cfg = scratch.0.join("bad.toml");
    std::fs::write(&cfg, "[metastore]\nnode_lease_ms = 0\n").unwrap();
    let out = Command::new(SHALE)
        .args(["meta", "--config"])
        .arg(&cfg)
        .env("RUST_LOG", "error")
        .output()
        .expect("run shale");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.starts_with("shale: error: bad settings: [metastore] node_lease_ms"),
        "{err}"
    );
}
