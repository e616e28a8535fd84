//! Coverage marks (TigerBeetle's `marks`, Antithesis' "sometimes" assertions): named race paths
//! that actor code reports with `ctx.mark("name")`, counted per run, tallied over a sweep, and
//! required: a sweep fails when a listed mark was never hit, because then the checkers never
//! saw that race and passing proves nothing about it.
//!
//! Owns the per-run registry ([`Marks`], held by each `Sim`, never global) and the sweep tally
//! ([`MarkSweep`]). Must not decide what a mark means; actors name them.

use std::collections::BTreeMap;
use std::fmt::Write as _;

/// Hit counts of one run, by mark name.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Marks {
    hits: BTreeMap<&'static str, u64>,
}

impl Marks {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn hit(&mut self, name: &'static str) {
        *self.hits.entry(name).or_insert(0) += 1;
    }

    pub fn count(&self, name: &str) -> u64 {
        self.hits.get(name).copied().unwrap_or(0)
    }

    /// Every mark hit at least once, with its count, by name.
    pub fn iter(&self) -> impl Iterator<Item = (&'static str, u64)> + '_ {
        self.hits.iter().map(|(n, c)| (*n, *c))
    }

    pub fn is_empty(&self) -> bool {
        self.hits.is_empty()
    }

    /// Fails, naming the culprits, unless every mark in `listed` was hit in this run.
    pub fn require(&self, listed: &[&str]) -> Result<(), UnhitMarks> {
        let missing: Vec<String> = listed
            .iter()
            .filter(|m| self.count(m) == 0)
            .map(|m| m.to_string())
            .collect();
        if missing.is_empty() {
            Ok(())
        } else {
            Err(UnhitMarks { runs: 1, missing })
        }
    }
}

/// Marks that were never hit: the race paths they name were never exercised.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{} mark(s) never hit in {runs} run(s): {}", missing.len(), missing.join(", "))]
pub struct UnhitMarks {
    pub runs: u64,
    pub missing: Vec<String>,
}

/// One mark's totals over a sweep.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MarkTally {
    /// Hits summed over all runs.
    pub hits: u64,
    /// Runs that hit it at least once.
    pub runs: u64,
}

/// Mark counts collected over many seeds.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MarkSweep {
    runs: u64,
    tallies: BTreeMap<String, MarkTally>,
}

impl MarkSweep {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds one run's marks.
    pub fn add_run(&mut self, marks: &Marks) {
        self.runs += 1;
        for (name, count) in marks.iter() {
            let tally = self.tallies.entry(name.to_string()).or_default();
            tally.hits += count;
            tally.runs += 1;
        }
    }

    pub fn runs(&self) -> u64 {
        self.runs
    }

    pub fn tally(&self, name: &str) -> MarkTally {
        self.tallies.get(name).copied().unwrap_or_default()
    }

    /// Fails, naming the culprits, unless every mark in `listed` was hit in at least one run.
    pub fn require(&self, listed: &[&str]) -> Result<(), UnhitMarks> {
        let missing: Vec<String> = listed
            .iter()
            .filter(|m| self.tally(m).runs == 0)
            .map(|m| m.to_string())
            .collect();
        if missing.is_empty() {
            Ok(())
        } else {
            Err(UnhitMarks {
                runs: self.runs,
                missing,
            })
        }
    }

    /// A table of every mark seen plus every mark in `listed` (those never hit show `0` and
    /// `MISSING`), sorted by name: mark, total hits, runs that hit it, share of runs.
    pub fn table(&self, listed: &[&str]) -> String {
        let mut names: Vec<&str> = self.tallies.keys().map(String::as_str).collect();
        names.extend(listed.iter().copied());
        names.sort_unstable();
        names.dedup();
        let width = names.iter().map(|n| n.len()).max().unwrap_or(0).max(4);
        let mut out = format!(
            "{:<width$}  {:>10}  {:>8}  {:>7}\n",
            "mark", "hits", "runs", "runs%"
        );
        for name in names {
            let t = self.tally(name);
            // Integer per-mille keeps the table identical on every platform.
            let permille = (t.runs * 1000).checked_div(self.runs).unwrap_or(0);
            let flag = if t.runs == 0 && listed.contains(&name) {
                "  MISSING"
            } else {
                ""
            };
            let _ = writeln!(
                out,
                "{name:<width$}  {:>10}  {:>8}  {:>5}.{}{flag}",
                t.hits,
                t.runs,
                permille / 10,
                permille % 10
            );
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_run_counts_hits_and_names_the_missing() {
        let mut m = Marks::new();
        m.hit("a");
        m.hit("a");
        m.hit("b");
        assert_eq!(m.count("a"), 2);
        assert_eq!(m.count("c"), 0);
        assert!(m.require(&["a", "b"]).is_ok());
        let err = m
            .require(&["a", "c", "d"])
            .expect_err("c and d were never hit");
        assert_eq!(err.missing, vec!["c".to_string(), "d".to_string()]);
        assert!(err.to_string().contains("c, d"), "{err}");
    }

    #[test]
    fn a_sweep_tallies_runs_and_fails_on_a_listed_mark_never_hit() {
        let mut sweep = MarkSweep::new();
        let mut one = Marks::new();
        one.hit("gc while loading");
        one.hit("gc while loading");
        sweep.add_run(&one);
        sweep.add_run(&Marks::new());
        let mut three = Marks::new();
        three.hit("gc while loading");
        three.hit("stale epoch refused");
        sweep.add_run(&three);
        assert_eq!(sweep.runs(), 3);
        assert_eq!(
            sweep.tally("gc while loading"),
            MarkTally { hits: 3, runs: 2 }
        );
        assert!(sweep
            .require(&["gc while loading", "stale epoch refused"])
            .is_ok());
        let err = sweep
            .require(&["stale epoch refused", "merge rollback"])
            .expect_err("merge rollback never ran");
        assert_eq!(err.missing, vec!["merge rollback".to_string()]);
        assert_eq!(err.runs, 3);

        let table = sweep.table(&["merge rollback"]);
        let lines: Vec<&str> = table.lines().collect();
        assert_eq!(lines.len(), 4, "{table}");
        assert!(lines[1].starts_with("gc while loading"), "{table}");
        assert!(lines[1].contains("66.6"), "{table}");
        assert!(lines[2].starts_with("merge rollback") && lines[2].ends_with("MISSING"));
        assert!(lines[3].contains("33.3") && !lines[3].contains("MISSING"));
    }
}
