//! End to end over TCP: `shale ts` (create, put across partitions, scan in time order,
//! immutability and schema errors, moving a partition), `shale node list` disk figures, and the meta store on
//! MySQL (`shale meta --meta-backend mysql://...`) surviving a restart of the meta process.
//!
//! The MySQL test needs `SHALE_TEST_MYSQL_URL` (`.ci/run` starts MariaDB and sets it);
//! without it the test prints why and passes.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;
use serde_json::Value;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use support::{spawn_listening, Dev, Scratch, SHALE};

fn shale(cluster: &str, data: &Path, args: &[&str]) -> (bool, String, String) {
    let out = Command::new(SHALE)
        .args(args)
        .env("SHALE_CLUSTER", cluster)
        .env("SHALE_DATA", data)
        .env("RUST_LOG", "error")
        .output()
        .expect("run shale");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn ok(cluster: &str, data: &Path, args: &[&str]) -> String {
    let (good, out, err) = shale(cluster, data, args);
    assert!(good, "shale {args:?} failed: {err}");
    out
}

fn json(cluster: &str, data: &Path, args: &[&str]) -> Value {
    let mut all = args.to_vec();
    all.push("--json");
    serde_json::from_str(&ok(cluster, data, &all)).expect("JSON output")
}

#[test]
fn ts_put_and_scan_across_partitions_and_node_disk() {
    let scratch = Scratch::new("ts");
    let dev = Dev::start(&scratch.0, 2);
    let (c, d) = (dev.meta.to_string(), scratch.0.as_path());
    // Partitions go only to registered, live nodes.
    eventually("two nodes up", || {
        let (good, out, _) = shale(&c, d, &["node", "list", "--json"]);
        (good && out.matches("\"Up\"").count() == 2).then_some(out)
    });
    ok(
        &c,
        d,
        &[
            "ts",
            "create",
            "m",
            "--partitions-per-day",
            "24",
            "--column",
            "v:f64:reading",
            "--column",
            "host:string",
        ],
    );
    let t = json(&c, d, &["ts", "describe", "m"]);
    assert_eq!(t["columns"][0]["type"], "f64");
    assert_eq!(t["columns"][0]["comment"], "reading");
    // Three partitions over two days, rows out of order, given as JSON Lines.
    let rows = scratch.0.join("rows.jsonl");
    std::fs::write(
        &rows,
        [
            r#"{"timestamp":"2024-05-02T00:00:01Z","key":"a","v":4,"host":"h3"}"#,
            r#"{"timestamp":"2024-05-01T10:30:00Z","key":"b","v":2.5,"host":"h,2"}"#,
            r#"{"timestamp":"2024-05-01T10:00:00Z","key":"a","v":1.5,"host":"h1"}"#,
            r#"{"timestamp":"2024-05-01T11:00:00Z","key":"a","v":3}"#,
        ]
        .join("\n"),
    )
    .unwrap();
    let put = json(&c, d, &["ts", "put", "m", "--file", rows.to_str().unwrap()]);
    assert_eq!(put.as_array().map(Vec::len), Some(3), "{put}");
    for p in put.as_array().unwrap() {
        let dir = scratch.0.join(p["dir"].as_str().unwrap());
        assert!(dir.join("SUCCESS").exists() && dir.join("part-0000.grid").exists());
    }
    let all = json(
        &c,
        d,
        &[
            "ts",
            "scan",
            "m",
            "--from",
            "2024-05-01",
            "--to",
            "2024-05-03",
        ],
    );
    let times: Vec<u64> = all
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["timestamp"].as_u64().unwrap())
        .collect();
    assert_eq!(
        times,
        [1714557600000, 1714559400000, 1714561200000, 1714608001000]
    );
    assert_eq!(all[1]["host"], "h,2");
    assert_eq!(all[2]["host"], Value::Null);
    // A range inside one partition, and the limit.
    let some = json(
        &c,
        d,
        &[
            "ts",
            "scan",
            "m",
            "--from",
            "2024-05-01T10:15:00Z",
            "--to",
            "2024-05-01T10:45:00Z",
        ],
    );
    assert_eq!(some.as_array().map(Vec::len), Some(1));
    let one = json(
        &c,
        d,
        &[
            "ts",
            "scan",
            "m",
            "--from",
            "2024-05-01",
            "--to",
            "2024-05-03",
            "--limit",
            "1",
        ],
    );
    assert_eq!(one.as_array().map(Vec::len), Some(1));
    // Published partitions are immutable; bad values and unknown tables are typed errors;
    // nothing of a refused put is written.
    let (good, _, err) = shale(
        &c,
        d,
        &["ts", "put", "m", "--row", "2024-05-01T10:05:00Z,c,1,x"],
    );
    assert!(!good && err.contains("already published"), "{err}");
    let (good, _, err) = shale(
        &c,
        d,
        &[
            "ts",
            "put",
            "m",
            "--row",
            "2024-05-03T00:00:00Z,c,1,x",
            "--row",
            "2024-05-03T01:00:00Z,c,oops,x",
        ],
    );
    assert!(!good && err.contains("is not a f64"), "{err}");
    assert!(!scratch.0.join("ts/m/20240503").exists());
    let (good, _, err) = shale(&c, d, &["ts", "describe", "nope"]);
    assert!(!good && err.contains("unknown table"), "{err}");
    let (good, _, err) = shale(
        &c,
        d,
        &[
            "ts",
            "create",
            "bad",
            "--partitions-per-day",
            "7",
            "--column",
            "v:f64",
        ],
    );
    assert!(!good && err.contains("bad partition count"), "{err}");
    // The day's 24 partitions exist, spread over both nodes.
    let parts = json(&c, d, &["ts", "partitions", "m", "--at", "2024-05-01"]);
    let parts = parts.as_array().unwrap();
    assert_eq!(parts.len(), 24);
    let nodes: std::collections::BTreeSet<u64> =
        parts.iter().map(|p| p["node"].as_u64().unwrap()).collect();
    assert_eq!(nodes.len(), 2, "{parts:?}");
    // An operator moves the 10:00 partition (which holds rows) to the other node; the
    // listing shows the new node, and the rows still read (the files do not move).
    let p10 = &parts[10];
    let from = p10["node"].as_u64().unwrap();
    let to = *nodes.iter().find(|n| **n != from).unwrap();
    let move_partition = |index: &str, to: &str, extra: &[&str]| {
        let args = [
            "ts",
            "move",
            "m",
            "--at",
            "2024-05-01",
            "--index",
            index,
            "--to",
            to,
        ];
        shale(&c, d, &[&args[..], extra].concat())
    };
    let (good, out, err) = move_partition("10", &to.to_string(), &["--json"]);
    assert!(good, "ts move failed: {err}");
    let moved: Value = serde_json::from_str(&out).expect("JSON output");
    assert_eq!(moved[0]["node"].as_u64(), Some(to), "{moved}");
    assert_eq!(moved[0]["index"].as_u64(), Some(10));
    let after = json(&c, d, &["ts", "partitions", "m", "--at", "2024-05-01"]);
    assert_eq!(after[10]["node"].as_u64(), Some(to), "moved from {from}");
    assert_eq!(after[10]["id"], p10["id"]);
    let hour = json(
        &c,
        d,
        &[
            "ts",
            "scan",
            "m",
            "--from",
            "2024-05-01T10:00:00Z",
            "--to",
            "2024-05-01T11:00:00Z",
        ],
    );
    assert_eq!(hour.as_array().map(Vec::len), Some(2), "{hour}");
    // Unknown node, unknown partition: typed errors, nothing changes.
    let (good, _, err) = move_partition("10", "999", &[]);
    assert!(!good && err.contains("999"), "{err}");
    let (good, _, err) = move_partition("24", &to.to_string(), &[]);
    assert!(!good && err.to_lowercase().contains("partition"), "{err}");
    let again = json(&c, d, &["ts", "partitions", "m", "--at", "2024-05-01"]);
    assert_eq!(again[10]["node"].as_u64(), Some(to));
    // Node list: status and disk from the meta store's registry.
    let list = json(&c, d, &["node", "list"]);
    let list = list.as_array().unwrap();
    assert_eq!(list.len(), 2);
    for n in list {
        assert_eq!(n["status"], "Up");
        assert!(n["total_disk_bytes"].as_u64().unwrap() > 0);
        assert!(n["free_disk_bytes"].as_u64().unwrap() <= n["total_disk_bytes"].as_u64().unwrap());
    }
    assert!(ok(&c, d, &["node", "list"]).contains("FREE_DISK"));
    drop(dev);
}

/// A role process and the address it printed.
struct Role {
    child: Child,
    addr: String,
}

impl Drop for Role {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn role(data: &Path, args: &[&str]) -> Role {
    let mut cmd = Command::new(SHALE);
    cmd.args(args)
        .arg("--data")
        .arg(data)
        .stderr(Stdio::inherit());
    let (child, addr) = spawn_listening(cmd, &format!("shale {args:?}"));
    Role { child, addr }
}

fn eventually(what: &str, mut f: impl FnMut() -> Option<String>) -> String {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn meta_on_mysql_keeps_tables_and_rows_across_a_meta_restart() {
    let Ok(url) = std::env::var("SHALE_TEST_MYSQL_URL") else {
        eprintln!("skipping the MySQL meta backend test: SHALE_TEST_MYSQL_URL is not set");
        return;
    };
    let dedup = shale_actors::meta::MetaConfig::default().dedup_entries_max;
    shale_meta_mysql::MysqlBackend::connect(&url, dedup)
        .and_then(|b| b.reset())
        .unwrap_or_else(|e| panic!("reset the test database: {e}"));
    let scratch = Scratch::new("mysql-meta");
    let d = scratch.0.as_path();
    let meta_args = |listen: &str| {
        vec![
            "meta".to_string(),
            "--meta-backend".into(),
            url.clone(),
            "--listen".into(),
            listen.into(),
        ]
    };
    let args = meta_args("127.0.0.1:0");
    let meta = role(d, &args.iter().map(String::as_str).collect::<Vec<_>>());
    let m = meta.addr.clone();
    let _master = role(d, &["master", "--meta", &m, "--listen", "127.0.0.1:0"]);
    let _node = role(
        d,
        &[
            "tabletnode",
            "--meta",
            &m,
            "--listen",
            "127.0.0.1:0",
            "--node-id",
            "100",
        ],
    );
    // DDL goes to the master, which must hold the lease and know the node first (a create
    // that times out is not retried: its outcome would be unknown).
    eventually("the master leads with the node up", || {
        let (good, out, _) = shale(&m, d, &["status", "--json"]);
        let status: Value = serde_json::from_str(&out).unwrap_or_default();
        (good && status["nodes_up"] == 1).then(String::new)
    });
    ok(&m, d, &["table", "create", "t", "--family", "f"]);
    eventually("a write", || {
        shale(&m, d, &["put", "t", "r1", "f:q", "v1"])
            .0
            .then(String::new)
    });
    ok(
        &m,
        d,
        &[
            "ts",
            "create",
            "m",
            "--partitions-per-day",
            "1",
            "--column",
            "v:i64",
        ],
    );
    ok(
        &m,
        d,
        &["ts", "put", "m", "--row", "2024-01-01T00:00:00Z,k,7"],
    );

    // Restart the meta process on the same address: all of its state comes back from MySQL.
    drop(meta);
    let args = meta_args(&m);
    let _meta = role(d, &args.iter().map(String::as_str).collect::<Vec<_>>());
    let got = eventually("the row after the restart", || {
        let (good, out, _) = shale(&m, d, &["get", "t", "r1", "--json"]);
        (good && out.contains("v1")).then_some(out)
    });
    assert!(got.contains("v1"), "{got}");
    let rows = json(
        &m,
        d,
        &[
            "ts",
            "scan",
            "m",
            "--from",
            "2024-01-01",
            "--to",
            "2024-01-02",
        ],
    );
    assert_eq!(rows[0]["v"], 7, "{rows}");
    let nodes = json(&m, d, &["node", "list"]);
    assert_eq!(nodes[0]["id"], 100, "{nodes}");
}
