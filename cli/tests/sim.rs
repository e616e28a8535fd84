//! `shale sim` as users run it: one seed prints PASS and its replay command; a sweep's output
//! (summary, sweep hash, mark table) does not depend on how many seeds run at once; bad
//! options get one error line and a non-zero exit.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::process::{Command, Output};
use support::SHALE;

const SCENARIO: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../scenarios/disable-drop-during-split.toml"
);

fn sim(args: &[&str]) -> Output {
    Command::new(SHALE)
        .arg("sim")
        .args(["--scenario", SCENARIO])
        .args(args)
        .env("RUST_LOG", "off")
        .output()
        .expect("run shale sim")
}

/// stdout without the wall-clock part of the summary line ("1.2s, 345 seeds/min").
fn without_timing(out: &Output) -> String {
    let text = String::from_utf8(out.stdout.clone()).expect("utf8");
    text.lines()
        .map(|l| match (l.find("), "), l.find(" seeds/min")) {
            (Some(a), Some(b)) if a < b => format!("{}{}", &l[..a + 3], &l[b..]),
            _ => l.to_string(),
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn one_seed_passes_and_prints_its_replay() {
    let out = sim(&["--seed", "3"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.starts_with("PASS disable-drop-during-split seed 3"),
        "{text}"
    );
    assert!(text.contains("replay: shale sim --scenario"), "{text}");
}

#[test]
fn a_sweep_says_the_same_whatever_the_jobs() {
    let one = sim(&["--seeds", "4", "--jobs", "1"]);
    let three = sim(&["--seeds", "4", "--jobs", "3"]);
    assert!(
        one.status.success(),
        "{}",
        String::from_utf8_lossy(&one.stderr)
    );
    assert!(
        three.status.success(),
        "{}",
        String::from_utf8_lossy(&three.stderr)
    );
    let a = without_timing(&one);
    assert!(a.contains("4 of 4 seeds passed (0..4)"), "{a}");
    assert!(a.contains("sweep hash"), "{a}");
    assert_eq!(a, without_timing(&three));
}

#[test]
fn bad_options_are_one_error_line() {
    let out = sim(&["--seeds", "2", "--jobs", "0"]);
    assert!(!out.status.success());
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.contains("--jobs must be at least 1"), "{err}");
    let out = Command::new(SHALE)
        .args(["sim", "--scenario", "no/such/file.toml", "--seed", "1"])
        .env("RUST_LOG", "off")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(!String::from_utf8(out.stderr).unwrap().contains("panicked"));
}
