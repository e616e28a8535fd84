//! `shale sim`: run a fault scenario once (PASS or FAIL, the violations, the replay command),
//! sweep many seeds (progress on stderr, a summary and a table of coverage marks on stdout),
//! write a run's events as JSON lines (`--trace`) or a timeline page (`--html`), and shrink a
//! failing seed into a small scripted scenario (`--shrink`).
//!
//! Owns the command's options and output. Must not: hold simulation logic (it calls
//! `shale_sim::run`); the wall clock is read only to report a sweep's speed.

use clap::Args;
use shale_sim::run::{run, shrink, RunError, RunOptions, ScenarioReport};
use shale_sim::scenario::{Scenario, ScenarioError};
use shale_sim::MarkSweep;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

#[derive(Args, Debug)]
pub struct SimArgs {
    /// The scenario file (TOML; see docs/scenario-format.md).
    #[arg(long)]
    pub scenario: PathBuf,
    /// Run this one seed.
    #[arg(long, conflicts_with = "seeds")]
    pub seed: Option<u64>,
    /// Sweep this many seeds, from --first-seed on.
    #[arg(long)]
    pub seeds: Option<u64>,
    #[arg(long, default_value_t = 0)]
    pub first_seed: u64,
    /// Write every event of the run as JSON lines.
    #[arg(long)]
    pub trace: Option<PathBuf>,
    /// Write a self-contained HTML timeline of the run.
    #[arg(long)]
    pub html: Option<PathBuf>,
    /// Minimise a failing seed (the first failing one of a sweep) and print it as a scenario.
    #[arg(long)]
    pub shrink: bool,
    /// Runs the shrinker may spend.
    #[arg(long, default_value_t = 150)]
    pub shrink_budget: u32,
    /// Seeds run at once in a sweep (default: the machine's cores). The result, the mark
    /// table and the sweep hash do not depend on it.
    #[arg(long)]
    pub jobs: Option<usize>,
}

#[derive(Debug, thiserror::Error)]
pub enum SimCmdError {
    #[error("{0}")]
    Scenario(#[from] ScenarioError),
    #[error("{0}")]
    Run(#[from] RunError),
    #[error("writing {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("--trace and --html describe one run: give --seed, not --seeds")]
    TraceOfSweep,
    #[error("{0}")]
    Failed(String),
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> SimCmdError + '_ {
    move |source| SimCmdError::Io {
        path: path.to_path_buf(),
        source,
    }
}

pub fn run_cmd(a: SimArgs) -> Result<(), SimCmdError> {
    let s = Scenario::load(&a.scenario)?;
    let path = a.scenario.display().to_string();
    match a.seeds {
        Some(n) => {
            if a.trace.is_some() || a.html.is_some() {
                return Err(SimCmdError::TraceOfSweep);
            }
            let jobs = a.jobs.unwrap_or_else(|| {
                std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
            });
            if jobs == 0 {
                return Err(SimCmdError::Failed("--jobs must be at least 1".into()));
            }
            sweep(
                &s,
                &path,
                a.first_seed,
                n,
                jobs,
                a.shrink.then_some(a.shrink_budget),
            )
        }
        None => one(&s, &path, a.seed.unwrap_or(a.first_seed), &a),
    }
}

fn print_report(r: &ScenarioReport, path: &str) {
    let verdict = if r.passed() { "PASS" } else { "FAIL" };
    println!("{verdict} {} seed {}", r.scenario, r.seed);
    println!(
        "  ops: {} started, {} answered, {} pending; {} rows checked; liveness converged in {:?}",
        r.run.ops_started,
        r.run.ops_answered,
        r.run.ops_pending,
        r.run.rows_checked,
        r.run.liveness.took
    );
    let faults: Vec<&str> = r
        .events
        .iter()
        .filter(|e| e.kind == "fault")
        .map(|e| e.text.as_str())
        .collect();
    println!("  faults applied: {}", faults.len());
    for f in faults.iter().take(40) {
        println!("    {f}");
    }
    println!(
        "  marks hit: {}; trace hash {:016x}",
        r.marks.iter().count(),
        r.trace_hash
    );
    for v in &r.violations {
        println!("  VIOLATION: {v}");
    }
    if r.ignored > 0 {
        println!(
            "  ({} violations of checks this scenario does not list)",
            r.ignored
        );
    }
    println!("  replay: {}", r.replay_command(path));
}

fn one(s: &Scenario, path: &str, seed: u64, a: &SimArgs) -> Result<(), SimCmdError> {
    let opts = RunOptions {
        trace: a.trace.is_some() || a.html.is_some(),
        ops_max: None,
    };
    let r = run(s, seed, &opts)?;
    print_report(&r, path);
    if a.trace.is_some() || a.html.is_some() {
        let events = r.trace_events();
        if let Some(p) = &a.trace {
            write_trace(p, &events)?;
            eprintln!("wrote {} events to {}", events.len(), p.display());
        }
        if let Some(p) = &a.html {
            let page = crate::sim_html::page(&r, &events);
            std::fs::write(p, page).map_err(io_err(p))?;
            eprintln!("wrote the timeline to {}", p.display());
        }
    }
    if r.passed() {
        return Ok(());
    }
    if a.shrink {
        shrink_and_print(s, seed, a.shrink_budget)?;
    }
    Err(SimCmdError::Failed(format!(
        "{} seed {seed} failed; replay: {}",
        s.name,
        r.replay_command(path)
    )))
}

fn write_trace(p: &Path, events: &[shale_sim::run::TraceEvent]) -> Result<(), SimCmdError> {
    let f = std::fs::File::create(p).map_err(io_err(p))?;
    let mut w = std::io::BufWriter::new(f);
    for e in events {
        // Serialising a plain struct of numbers and strings cannot fail.
        let line = serde_json::to_string(e).unwrap_or_default();
        writeln!(w, "{line}").map_err(io_err(p))?;
    }
    w.flush().map_err(io_err(p))
}

fn shrink_and_print(s: &Scenario, seed: u64, budget: u32) -> Result<(), SimCmdError> {
    eprintln!("shrinking seed {seed} (at most {budget} runs)...");
    match shrink(s, seed, budget)? {
        None => eprintln!("seed {seed} passes: nothing to shrink"),
        Some(res) => {
            eprintln!(
                "shrunk in {} runs: {} -> {} faults; it still fails with:",
                res.runs, res.faults_before, res.faults_after
            );
            for v in &res.report.violations {
                eprintln!("  {v}");
            }
            let text = res
                .scenario
                .to_toml()
                .map_err(|e| SimCmdError::Failed(format!("printing the scenario: {e}")))?;
            println!("# shale sim --scenario FILE --seed {seed}");
            print!("{text}");
        }
    }
    Ok(())
}

fn progress(done: u64, total: u64, failed: usize) {
    const WIDTH: u64 = 30;
    let filled = (done * WIDTH).checked_div(total).unwrap_or(WIDTH) as usize;
    eprint!(
        "\r[{}{}] {done}/{total} seeds, {failed} failed",
        "#".repeat(filled),
        " ".repeat(WIDTH as usize - filled)
    );
}

/// Run seeds `first..first + n` of `s` on `jobs` threads and hand each report to `each` in
/// seed order, whatever order the runs finished in, so everything derived from them is the
/// same for any `jobs`. A report waits only until the seeds before it are in, so a long
/// sweep holds at most about `jobs` reports. Progress goes to stderr as runs finish.
fn run_seeds(
    s: &Scenario,
    first: u64,
    n: u64,
    jobs: usize,
    mut each: impl FnMut(ScenarioReport),
) -> Result<(), SimCmdError> {
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::mpsc;
    let next = AtomicU64::new(first);
    let (tx, rx) = mpsc::channel::<(u64, Result<ScenarioReport, RunError>)>();
    let mut waiting: std::collections::BTreeMap<u64, ScenarioReport> = Default::default();
    let mut next_out = first;
    let mut error = None;
    std::thread::scope(|scope| {
        for _ in 0..jobs.min(n.max(1) as usize) {
            let tx = tx.clone();
            let next = &next;
            scope.spawn(move || loop {
                let seed = next.fetch_add(1, Ordering::Relaxed);
                if seed >= first + n {
                    return;
                }
                let r = run(s, seed, &RunOptions::default());
                let stop = r.is_err();
                if tx.send((seed, r)).is_err() || stop {
                    // The collector is gone or a run could not start: stop taking seeds.
                    next.store(first + n, Ordering::Relaxed);
                    return;
                }
            });
        }
        drop(tx);
        let (mut finished, mut failed) = (0, 0);
        progress(0, n, 0);
        for (seed, r) in rx {
            match r {
                Ok(r) => {
                    finished += 1;
                    failed += usize::from(!r.passed());
                    waiting.insert(seed, r);
                    while let Some(r) = waiting.remove(&next_out) {
                        each(r);
                        next_out += 1;
                    }
                }
                Err(e) => {
                    error.get_or_insert(e);
                }
            }
            progress(finished, n, failed);
        }
    });
    eprintln!();
    match error {
        Some(e) => Err(e.into()),
        None => Ok(()),
    }
}

fn sweep(
    s: &Scenario,
    path: &str,
    first: u64,
    n: u64,
    jobs: usize,
    shrink_budget: Option<u32>,
) -> Result<(), SimCmdError> {
    let started = Instant::now();
    let mut marks = MarkSweep::new();
    let mut failed: Vec<(u64, String)> = Vec::new();
    let mut hashes = 0u64;
    run_seeds(s, first, n, jobs, |r| {
        let seed = r.seed;
        marks.add_run(&r.marks);
        hashes ^= r.trace_hash.rotate_left((seed % 64) as u32);
        if !r.passed() {
            let first_v = r
                .violations
                .first()
                .map(ToString::to_string)
                .unwrap_or_default();
            failed.push((seed, first_v.lines().next().unwrap_or("").to_string()));
        }
    })?;
    let secs = started.elapsed().as_secs_f64();
    let listed: Vec<&str> = s.marks.iter().map(String::as_str).collect();
    println!(
        "{}: {} of {n} seeds passed ({first}..{}), {:.1}s, {:.0} seeds/min, sweep hash {hashes:016x}",
        s.name,
        n - failed.len() as u64,
        first + n,
        secs,
        n as f64 * 60.0 / secs.max(1e-9)
    );
    for (seed, v) in &failed {
        println!("  FAIL seed {seed}: {v}");
        println!("    replay: shale sim --scenario {path} --seed {seed}");
    }
    print!("{}", marks.table(&listed));
    let unhit = marks.require(&listed).err();
    if let (Some(budget), Some((seed, _))) = (shrink_budget, failed.first()) {
        shrink_and_print(s, *seed, budget)?;
    }
    let mut problems = Vec::new();
    if !failed.is_empty() {
        problems.push(format!("{} of {n} seeds failed", failed.len()));
    }
    if let Some(u) = unhit {
        problems.push(format!(
            "required marks never hit: {}",
            u.missing.join(", ")
        ));
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(SimCmdError::Failed(format!(
            "{}: {}",
            s.name,
            problems.join("; ")
        )))
    }
}
