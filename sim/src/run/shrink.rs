//! Shrinking a failing seed: turn its random plan into scripted faults, then greedily drop
//! faults, shorten the workload, lower its rate and turn buggify off, keeping each cut only
//! if the run still fails the same check. The result is a scenario file (scripted faults
//! only) that fails with the same seed: small enough to read, exact enough to debug.
//!
//! Owns the shrinking strategy. Must not: change what a run means (every candidate is a valid
//! scenario run by [`super::run`]).

use super::{check_of, run, scripted, RunError, RunOptions, ScenarioReport};
use crate::scenario::{Check, Dur, Scenario};
use std::collections::BTreeSet;
use std::time::Duration;

pub struct ShrinkResult {
    /// The smallest failing scenario found (scripted faults only).
    pub scenario: Scenario,
    /// Its failing run.
    pub report: ScenarioReport,
    /// Runs spent, and faults / operations before and after.
    pub runs: u32,
    pub faults_before: usize,
    pub faults_after: usize,
}

/// The checks a failing report violates (`None` for runner failures).
fn failed_checks(r: &ScenarioReport) -> BTreeSet<Option<Check>> {
    r.violations.iter().map(check_of).collect()
}

struct Shrinker {
    seed: u64,
    want: BTreeSet<Option<Check>>,
    runs: u32,
    budget: u32,
}

impl Shrinker {
    /// Runs `cand`; its report if it still fails one of the original checks.
    fn fails(&mut self, cand: &Scenario) -> Result<Option<ScenarioReport>, RunError> {
        if cand.validate().is_err() || self.runs >= self.budget {
            return Ok(None);
        }
        self.runs += 1;
        let r = run(cand, self.seed, &RunOptions::default())?;
        let same = failed_checks(&r).iter().any(|c| self.want.contains(c));
        tracing::info!(runs = self.runs, failed = same, "shrink candidate");
        Ok(same.then_some(r))
    }
}

/// Shrink `s` at `seed` within `budget` runs; `None` if the seed passes.
pub fn shrink(s: &Scenario, seed: u64, budget: u32) -> Result<Option<ShrinkResult>, RunError> {
    let first = run(s, seed, &RunOptions::default())?;
    if first.passed() {
        return Ok(None);
    }
    let mut k = Shrinker {
        seed,
        want: failed_checks(&first),
        runs: 1,
        budget: budget.max(2),
    };
    let mut cur = scripted(s, seed);
    let faults_before = cur.faults.script.len();
    let mut best = match k.fails(&cur)? {
        Some(r) => r,
        // The scripted copy replays the same run; if it somehow does not, keep the original.
        None => {
            return Ok(Some(ShrinkResult {
                scenario: s.clone(),
                report: first,
                runs: k.runs,
                faults_before,
                faults_after: faults_before,
            }))
        }
    };
    // Drop faults, last first (later faults depend on earlier ones less often than the
    // reverse); repeat while a pass removes something.
    loop {
        let mut removed = false;
        let mut i = cur.faults.script.len();
        while i > 0 {
            i -= 1;
            let mut cand = cur.clone();
            cand.faults.script.remove(i);
            if let Some(r) = k.fails(&cand)? {
                cur = cand;
                best = r;
                removed = true;
            }
        }
        if !removed || k.runs >= k.budget {
            break;
        }
    }
    // A shorter workload: halve the duration while it still fails (faults after the new end
    // make a candidate invalid, so they must already be gone).
    loop {
        let d = cur.workload.duration.0 / 2;
        if d < Duration::from_secs(1) {
            break;
        }
        let mut cand = cur.clone();
        cand.workload.duration = Dur(d);
        if cand.liveness.heal_at.is_some_and(|h| h.0 < d) {
            cand.liveness.heal_at = None;
        }
        match k.fails(&cand)? {
            Some(r) => {
                cur = cand;
                best = r;
            }
            None => break,
        }
    }
    loop {
        let rate = cur.workload.rate_per_sec / 2;
        if rate == 0 {
            break;
        }
        let mut cand = cur.clone();
        cand.workload.rate_per_sec = rate;
        match k.fails(&cand)? {
            Some(r) => {
                cur = cand;
                best = r;
            }
            None => break,
        }
    }
    if cur.buggify {
        let mut cand = cur.clone();
        cand.buggify = false;
        if let Some(r) = k.fails(&cand)? {
            cur = cand;
            best = r;
        }
    }
    cur.name = format!("{}-shrunk", s.name);
    cur.description = format!(
        "Shrunk from {} seed {seed}: {} of {faults_before} faults, {} ops/s for {}.",
        s.name,
        cur.faults.script.len(),
        cur.workload.rate_per_sec,
        String::from(cur.workload.duration)
    );
    cur.marks.clear();
    Ok(Some(ShrinkResult {
        faults_after: cur.faults.script.len(),
        scenario: cur,
        report: best,
        runs: k.runs,
        faults_before,
    }))
}
