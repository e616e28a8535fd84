//! End-to-end: the `shale dev` binary runs a local cluster on loopback TCP and every node
//! hears from every other node; bad arguments fail with a one-line error and a non-zero code.

use std::process::Command;

fn shale() -> Command {
    Command::new(env!("CARGO_BIN_EXE_shale"))
}

#[test]
fn dev_cluster_nodes_talk_over_loopback_tcp() {
    let data = std::env::temp_dir().join(format!("shale-dev-test-{}", std::process::id()));
    let out = shale()
        .args([
            "dev",
            "--nodes",
            "3",
            "--duration-secs",
            "2",
            "--seed",
            "7",
            "--data",
        ])
        .arg(&data)
        .env("RUST_LOG", "warn")
        .output()
        .expect("run shale");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "shale dev failed: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(data.is_dir(), "data folder created");
    let pairs: Vec<&str> = stdout.lines().filter(|l| l.contains(" -> ")).collect();
    assert_eq!(pairs.len(), 6, "3 nodes see 2 peers each: {stdout}");
    for line in pairs {
        let pongs: u64 = line
            .split(", ")
            .find_map(|part| part.strip_suffix(" pongs received"))
            .and_then(|n| n.parse().ok())
            .unwrap_or(0);
        assert!(pongs > 0, "no round trip on {line}");
    }
    let _ = std::fs::remove_dir_all(&data);
}

#[test]
fn dev_rejects_a_bad_node_count() {
    let out = shale()
        .args(["dev", "--nodes", "0", "--duration-secs", "1"])
        .output()
        .expect("run shale");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.lines().count(), 1, "one-line error: {stderr}");
    assert!(stderr.contains("needs 1 to 64 nodes"), "{stderr}");
}
