//! Proof that the checkers bite (issue 5, item 6): each bug planted in the actors (the
//! `planted-bugs` feature, `shale_actors::planted`) is caught by a seed sweep of the shipped
//! scenario that exercises it, within 500 seeds, and that seed passes with the bug off.
//!
//! The sweep stops at the first failing seed and prints it, so a bug caught early costs a
//! handful of runs. The failing seed is rerun with every bug off: a failure there would mean
//! the scenario, not the planted bug, tripped the checker. Debug builds are too slow for the
//! sweeps, so the tests are ignored there; `scripts/test.sh` runs them in release.
#![allow(clippy::expect_used)]

use shale_actors::planted::PlantedBugs;
use shale_sim::run::{check_of, run_configured, RunOptions};
use shale_sim::scenario::{Check, Scenario};
use std::path::PathBuf;
use std::sync::atomic::Ordering;

/// The bound: every planted bug is caught within this many seeds.
const SEEDS_MAX: u64 = 500;

fn scenario(name: &str) -> Scenario {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../scenarios")
        .join(format!("{name}.toml"));
    Scenario::load(&p).expect("shipped scenario parses")
}

/// Run `seed` of `s` with `bugs` switched on in every master and tablet node; the checks
/// that failed (empty: PASS).
fn failed_checks(s: &Scenario, seed: u64, bugs: PlantedBugs) -> Vec<String> {
    let report = run_configured(s, seed, &RunOptions::default(), |cfg| {
        cfg.master.planted = bugs;
        cfg.node.planted = bugs;
    })
    .expect("scenario runs");
    report
        .violations
        .iter()
        .map(|v| match check_of(v) {
            Some(c) => format!("{c:?}: {v}"),
            None => format!("runner: {v}"),
        })
        .collect()
}

/// Sweep seeds from 0 with `bugs` on until one fails, two seeds at a time (a sweep's
/// speed on CI's two cores); assert that happens within [`SEEDS_MAX`] seeds, on one of the
/// `expect`ed checks, and that the same seed passes with every bug off (the planted bug,
/// not the scenario, failed it). Returns the failing seed and its violations.
fn caught(name: &str, bugs: PlantedBugs, expect: &[Check]) -> (u64, Vec<String>) {
    const LANES: u64 = 2;
    let s = scenario(name);
    let found = std::sync::atomic::AtomicU64::new(u64::MAX);
    let lanes: Vec<Option<(u64, Vec<String>)>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..LANES)
            .map(|lane| {
                let (s, found) = (&s, &found);
                scope.spawn(move || {
                    let mut seed = lane;
                    while seed < SEEDS_MAX && seed < found.load(Ordering::Relaxed) {
                        let v = failed_checks(s, seed, bugs);
                        if !v.is_empty() {
                            found.fetch_min(seed, Ordering::Relaxed);
                            return Some((seed, v));
                        }
                        seed += LANES;
                    }
                    None
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("sweep lane"))
            .collect()
    });
    let (seed, violations) = lanes
        .into_iter()
        .flatten()
        .min_by_key(|(seed, _)| *seed)
        .unwrap_or_else(|| panic!("{name}: {bugs:?} not caught in {SEEDS_MAX} seeds"));
    println!(
        "{name}: {bugs:?} caught at seed {seed} ({} violations): {}",
        violations.len(),
        violations
            .iter()
            .take(3)
            .map(String::as_str)
            .collect::<Vec<_>>()
            .join("; ")
    );
    assert!(
        expect
            .iter()
            .any(|c| violations.iter().any(|v| v.starts_with(&format!("{c:?}:")))),
        "{name}: seed {seed} failed, but not on {expect:?}: {violations:?}"
    );
    let off = failed_checks(&s, seed, PlantedBugs::NONE);
    assert!(
        off.is_empty(),
        "{name}: seed {seed} fails with no bug: {off:?}"
    );
    (seed, violations)
}

#[test]
#[cfg_attr(
    debug_assertions,
    ignore = "release only: scripts/test.sh runs it with --release"
)]
fn lease_fencing_off_is_caught() {
    let bugs = PlantedBugs {
        lease_fencing_off: true,
        ..PlantedBugs::NONE
    };
    caught(
        "move-with-partition",
        bugs,
        &[
            Check::SingleOwner,
            Check::Linearizability,
            Check::NoLostWrites,
        ],
    );
}

#[test]
#[cfg_attr(
    debug_assertions,
    ignore = "release only: scripts/test.sh runs it with --release"
)]
fn gc_ignoring_loading_tablets_is_caught() {
    let bugs = PlantedBugs {
        gc_ignores_loading: true,
        ..PlantedBugs::NONE
    };
    caught(
        "gc-while-loading",
        bugs,
        &[Check::GcSafety, Check::NoLostWrites, Check::Liveness],
    );
}

#[test]
#[cfg_attr(
    debug_assertions,
    ignore = "release only: scripts/test.sh runs it with --release"
)]
fn merged_record_with_wrong_range_is_caught() {
    let bugs = PlantedBugs {
        merge_wrong_range: true,
        ..PlantedBugs::NONE
    };
    caught(
        "merge-with-crash",
        bugs,
        &[
            Check::MetaCoverage,
            Check::NoLostWrites,
            Check::Linearizability,
        ],
    );
}

#[test]
#[cfg_attr(
    debug_assertions,
    ignore = "release only: scripts/test.sh runs it with --release"
)]
fn split_child_serving_outside_its_range_is_caught() {
    let bugs = PlantedBugs {
        split_child_outside_range: true,
        ..PlantedBugs::NONE
    };
    caught(
        "split-under-load",
        bugs,
        &[Check::MetaCoverage, Check::SingleOwner, Check::NoLostWrites],
    );
}
