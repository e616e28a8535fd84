//! `shale bench engine` prints one parseable `workload ops_per_sec` line per asked workload on
//! stdout (logs go to stderr), runs fillrandom first when reads are asked alone, and refuses
//! unknown workloads with a one-line error.

use std::process::Command;

fn shale() -> Command {
    Command::new(env!("CARGO_BIN_EXE_shale"))
}

#[test]
fn engine_bench_prints_one_line_per_workload() {
    let dir = std::env::temp_dir().join(format!("shale-bench-test-{}", std::process::id()));
    let out = shale()
        .args(["bench", "engine", "--num", "3000", "--fillsync-num", "20"])
        .args([
            "--workload",
            "readrandom",
            "--workload",
            "fillsync",
            "--dir",
        ])
        .arg(&dir)
        .output()
        .expect("run shale");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<(&str, f64)> = stdout
        .lines()
        .map(|l| {
            let mut parts = l.split_whitespace();
            let name = parts.next().unwrap_or_default();
            let ops = parts.next().and_then(|n| n.parse().ok()).unwrap_or(-1.0);
            assert_eq!(parts.next(), None, "two fields per line: {l:?}");
            (name, ops)
        })
        .collect();
    let names: Vec<&str> = lines.iter().map(|(n, _)| *n).collect();
    assert_eq!(names, vec!["readrandom", "fillsync"], "{stdout}");
    assert!(lines.iter().all(|(_, ops)| *ops > 0.0), "{stdout}");
    assert!(!dir.exists(), "scratch folder removed");
}

#[test]
fn engine_bench_refuses_an_unknown_workload() {
    let out = shale()
        .args(["bench", "engine", "--workload", "fillrandomly"])
        .output()
        .expect("run shale");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("unknown workload \"fillrandomly\""),
        "{stderr}"
    );
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
}
