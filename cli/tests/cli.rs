//! The command line against a real `shale dev` child: each command's happy path (text and
//! `--json`), and bad input (unknown tables, bad names, oversized keys, disabled tables, bad
//! columns, an unreachable cluster) giving one error line and a non-zero exit, never a panic.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::process::{Command, Output};
use std::time::{Duration, Instant};
use support::{Dev, Scratch, SHALE};

struct Cli {
    cluster: String,
}

impl Cli {
    fn run(&self, args: &[&str]) -> Output {
        Command::new(SHALE)
            .args(args)
            .env("SHALE_CLUSTER", &self.cluster)
            .env("RUST_LOG", "error")
            .output()
            .expect("run shale")
    }

    /// Must succeed; returns stdout.
    fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "{args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).expect("utf8")
    }

    /// Must fail with exactly one `shale: error:` line mentioning `want`.
    fn fails(&self, args: &[&str], want: &str) {
        let out = self.run(args);
        assert!(!out.status.success(), "{args:?} succeeded");
        let err = String::from_utf8_lossy(&out.stderr);
        let lines: Vec<&str> = err.lines().filter(|l| !l.trim().is_empty()).collect();
        assert_eq!(lines.len(), 1, "{args:?}: one line expected, got {err:?}");
        assert!(lines[0].starts_with("shale: error: "), "{err:?}");
        assert!(lines[0].contains(want), "{args:?}: {err:?} lacks {want:?}");
        assert!(!err.contains("panicked"), "{err:?}");
    }

    fn json(&self, args: &[&str]) -> serde_json::Value {
        let mut all = args.to_vec();
        all.push("--json");
        serde_json::from_str(&self.ok(&all)).expect("json")
    }

    /// Wait until every tablet of `table` is Ready; returns them.
    fn ready(&self, table: &str) -> Vec<serde_json::Value> {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let ts = self.json(&["tablet", "list", table]);
            let ts = ts.as_array().cloned().unwrap_or_default();
            if !ts.is_empty() && ts.iter().all(|t| t["status"] == "Ready") {
                return ts;
            }
            assert!(Instant::now() < deadline, "not Ready: {ts:?}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

#[test]
fn every_command_happy_path_and_bad_input() {
    let scratch = Scratch::new("cli");
    let dev = Dev::start(&scratch.0, 3);
    let cli = Cli {
        cluster: dev.meta.to_string(),
    };

    // Tables.
    let out = cli.ok(&[
        "table",
        "create",
        "users",
        "--family",
        "info,stats",
        "--split",
        "m",
        "--max-versions",
        "2",
        "--ttl",
        "0",
    ]);
    assert!(out.contains("created table users"), "{out}");
    let list = cli.json(&["table", "list"]);
    assert_eq!(list[0]["name"], "users");
    assert_eq!(list[0]["tablets"], 2);
    assert!(cli.ok(&["table", "list"]).contains("info,stats"));
    let d = cli.json(&["table", "describe", "users"]);
    assert_eq!(d["families"][1]["name"], "stats");
    assert_eq!(d["tablet_list"].as_array().map(Vec::len), Some(2));
    cli.ready("users");

    // Data.
    cli.ok(&["put", "users", "alice", "info:email", "a@x"]);
    cli.ok(&["put", "users", "bob", "info:email", "b@x"]);
    cli.ok(&["put", "users", "zed", "info:email", "z@x"]);
    cli.ok(&["put", "users", "alice", "info:email", "a2@x"]);
    cli.ok(&["put", "users", "alice", "stats:visits", "3"]);
    let g = cli.json(&[
        "get",
        "users",
        "alice",
        "--column",
        "info:email",
        "--versions",
        "2",
    ]);
    let cells = g[0]["cells"].as_array().cloned().unwrap_or_default();
    let values: Vec<&str> = cells.iter().filter_map(|c| c["value"].as_str()).collect();
    assert_eq!(values, ["a2@x", "a@x"], "newest first, two versions");
    let text = cli.ok(&["get", "users", "alice", "--column", "stats"]);
    assert!(
        text.contains("stats:visits") && text.contains('3') && !text.contains("email"),
        "{text}"
    );
    let s = cli.json(&["scan", "users"]);
    let rows: Vec<&str> = s
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|r| r["row"].as_str())
        .collect();
    assert_eq!(rows, ["alice", "bob", "zed"], "across both tablets");
    let s = cli.json(&["scan", "users", "--reverse", "--limit", "2"]);
    let rows: Vec<&str> = s
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|r| r["row"].as_str())
        .collect();
    assert_eq!(rows, ["zed", "bob"]);
    let s = cli.json(&["scan", "users", "--start", "b", "--end", "z"]);
    assert_eq!(s.as_array().map(Vec::len), Some(1));
    cli.ok(&["delete", "users", "alice", "stats:visits"]);
    assert!(!cli.ok(&["get", "users", "alice"]).contains("visits"));
    cli.ok(&["delete", "users", "alice", "info"]);
    cli.ok(&["delete", "users", "bob"]);
    assert_eq!(cli.json(&["get", "users", "bob"]), serde_json::Value::Null);

    // Tablets and nodes.
    let nodes = cli.json(&["node", "list"]);
    assert_eq!(nodes.as_array().map(Vec::len), Some(3));
    assert!(cli.ok(&["node", "list"]).contains("node-1"));
    let st = cli.json(&["status"]);
    assert_eq!(st["nodes_up"], 3);
    assert!(cli.ok(&["status"]).contains("3 up"));
    let ts = cli.ready("users");
    let first = ts.iter().find(|t| t["start"] == "").unwrap()["id"]
        .as_u64()
        .unwrap();
    assert!(cli
        .ok(&["tablet", "split", &first.to_string(), "--key", "f"])
        .contains("splitting"));
    let ts = cli.ready("users");
    assert_eq!(ts.len(), 3, "{ts:?}");
    let a = ts.iter().find(|t| t["start"] == "").unwrap()["id"]
        .as_u64()
        .unwrap();
    let b = ts.iter().find(|t| t["start"] == "f").unwrap()["id"]
        .as_u64()
        .unwrap();
    cli.ok(&["tablet", "merge", &a.to_string(), &b.to_string()]);
    let ts = cli.ready("users");
    assert_eq!(ts.len(), 2, "{ts:?}");
    let t = &ts[0];
    let other = nodes
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["id"] != t["node"])
        .unwrap()["name"]
        .as_str()
        .unwrap()
        .to_string();
    let id = t["id"].as_u64().unwrap().to_string();
    cli.ok(&["tablet", "move", &id, &other]);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let ts = cli.ready("users");
        let moved = ts.iter().find(|x| x["id"] == t["id"]);
        let on = nodes
            .as_array()
            .unwrap()
            .iter()
            .find(|n| n["name"] == other.as_str())
            .unwrap()["id"]
            .clone();
        if moved.is_some_and(|m| m["node"] == on) {
            break;
        }
        assert!(Instant::now() < deadline, "move did not land: {ts:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(
        cli.ok(&["scan", "users"]).contains("zed"),
        "data survives split, merge, move"
    );

    // Bad input: one line, non-zero, never a panic.
    cli.fails(&["get", "nosuch", "r"], "no table \"nosuch\"");
    cli.fails(&["put", "nosuch", "r", "cf:q", "v"], "no table");
    cli.fails(&["table", "describe", "nosuch"], "no table");
    cli.fails(
        &["table", "create", "users", "--family", "info"],
        "already exists",
    );
    cli.fails(
        &["table", "create", "bad name", "--family", "cf"],
        "invalid",
    );
    cli.fails(&["put", "users", "r", "nocolon", "v"], "FAMILY:QUALIFIER");
    let big = "k".repeat(70_000);
    cli.fails(&["put", "users", &big, "info:q", "v"], "exceeds");
    // Values from a file: one that fits is stored byte for byte; one past the client's limit
    // gets the same typed one-line error as any oversized value.
    let blob: String = (0..200_000u32)
        .map(|i| char::from(b'a' + (i % 26) as u8))
        .collect();
    let file = scratch.0.join("value.bin");
    std::fs::write(&file, &blob).unwrap();
    let path = file.to_str().unwrap();
    cli.ok(&["put", "users", "blob", "info:b", "--value-file", path]);
    let g = cli.json(&["get", "users", "blob"]);
    assert!(g[0]["cells"][0]["value"] == blob.as_str(), "value differs");
    let huge = scratch.0.join("huge.bin");
    let f = std::fs::File::create(&huge).unwrap();
    f.set_len(shale_actors::proto::limits::VALUE_BYTES_MAX_DEFAULT as u64 + 1)
        .unwrap();
    cli.fails(
        &[
            "put",
            "users",
            "r",
            "info:q",
            "--value-file",
            huge.to_str().unwrap(),
        ],
        "exceeds the limit",
    );
    cli.fails(
        &[
            "put",
            "users",
            "r",
            "info:q",
            "--value-file",
            "/no/such/file",
        ],
        "cannot read /no/such/file",
    );
    cli.fails(&["put", "users", "r", "nosuchfamily:q", "v"], "family");
    cli.fails(
        &["scan", "users", "--start", "m", "--end", "a"],
        "above its start",
    );
    cli.fails(&["table", "drop", "users"], "Enabled");
    cli.fails(&["tablet", "merge", "999", "998"], "tablet");
    cli.fails(&["tablet", "move", &id, "no-such-node"], "no node named");
    cli.ok(&["table", "disable", "users"]);
    cli.fails(&["get", "users", "zed"], "Disabled");
    cli.fails(&["put", "users", "zed", "info:q", "v"], "Disabled");
    cli.ok(&["table", "enable", "users"]);
    cli.ready("users");
    assert!(cli.ok(&["get", "users", "zed"]).contains("z@x"));
    cli.ok(&["table", "disable", "users"]);
    // The disable answers once durable and unloads in the background; the drop right after
    // it waits for those unloads instead of failing.
    cli.ok(&["table", "drop", "users"]);
    cli.fails(&["get", "users", "zed"], "users");
    let unreachable = Cli {
        cluster: "127.0.0.1:1".into(),
    };
    unreachable.fails(&["table", "list", "--timeout-secs", "2"], "");
    cli.fails(
        &["table", "list", "--cluster", "not an address"],
        "bad --cluster address",
    );
    drop(dev);
}
