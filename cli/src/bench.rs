//! `shale bench engine`: the storage engine benchmark (db_bench-shaped workloads) on the local
//! disk. The CLI is the host: it owns the wall clock and the threads `shale_storage::bench`
//! asks for (the storage crate has neither).
//!
//! Output: one `workload ops_per_sec` line per workload on stdout (the same shape as
//! `bench/db_bench.sh`, so `bench/engine-vs-rocksdb.sh` can join them), details on stderr.
//! The split workload is timed, not rated: it prints `split_<size>_ms`, `merge_<size>_ms`
//! (medians), the SST bytes they wrote and, with a large size, `split_ratio`.

use shale_storage::bench::{run, BenchEnv, BenchOptions, SplitReport, Workload};
use std::time::{Duration, Instant};

pub struct EngineBenchArgs {
    pub dir: String,
    pub num: u64,
    pub fillsync_num: u64,
    pub workloads: Vec<String>,
    pub seed: u64,
    pub split_small_bytes: u64,
    pub split_large_bytes: Option<u64>,
}

#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    #[error("unknown workload {0:?} (known: {1})")]
    UnknownWorkload(String, String),
    #[error("--num must be at least 1")]
    Num,
    #[error("cannot prepare {dir}: {source}")]
    Dir { dir: String, source: std::io::Error },
    #[error("{workload} failed: {reason}")]
    Run {
        workload: &'static str,
        reason: String,
    },
}

struct Host {
    origin: Instant,
}

impl BenchEnv for Host {
    fn now_nanos(&self) -> u64 {
        u64::try_from(self.origin.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }
    fn run_parallel<'a>(&self, tasks: Vec<Box<dyn FnOnce() + Send + 'a>>) {
        std::thread::scope(|s| {
            for t in tasks {
                s.spawn(t);
            }
        });
    }
    fn idle(&self) {
        std::thread::sleep(Duration::from_millis(1));
    }
}

fn peak_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

pub fn engine(args: EngineBenchArgs) -> Result<(), BenchError> {
    if args.num == 0 || args.fillsync_num == 0 || args.split_small_bytes == 0 {
        return Err(BenchError::Num);
    }
    let known = || {
        Workload::ALL
            .iter()
            .map(|w| w.name())
            .collect::<Vec<_>>()
            .join(", ")
    };
    let workloads: Vec<Workload> = if args.workloads.is_empty() {
        Workload::ALL.to_vec()
    } else {
        args.workloads
            .iter()
            .map(|w| {
                Workload::parse(w).ok_or_else(|| BenchError::UnknownWorkload(w.clone(), known()))
            })
            .collect::<Result<_, _>>()?
    };
    // Reads need the database fillrandom writes: run it first when a read is asked alone.
    let needs_fill = workloads.iter().any(|w| {
        matches!(
            w,
            Workload::ReadRandom | Workload::SeekRandomNext1 | Workload::SeekRandomNext10
        )
    }) && !workloads.contains(&Workload::FillRandom);
    let mut plan = Vec::new();
    if needs_fill {
        plan.push((Workload::FillRandom, false));
    }
    plan.extend(workloads.into_iter().map(|w| (w, true)));

    match std::fs::remove_dir_all(&args.dir) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(source) => {
            return Err(BenchError::Dir {
                dir: args.dir,
                source,
            })
        }
    }
    let opts = BenchOptions {
        dir: args.dir.clone(),
        num: args.num,
        fillsync_num: args.fillsync_num,
        seed: args.seed,
        split_small_bytes: args.split_small_bytes,
        split_large_bytes: args.split_large_bytes,
        ..BenchOptions::default()
    };
    eprintln!(
        "shale bench engine: {} keys of {} bytes, {}-byte values, {} MiB cache, dir {}",
        opts.num,
        opts.key_size,
        opts.value_size,
        opts.cache_bytes >> 20,
        opts.dir
    );
    let host = Host {
        origin: Instant::now(),
    };
    for (workload, print) in plan {
        let r = run(&host, workload, &opts).map_err(|e| BenchError::Run {
            workload: workload.name(),
            reason: e.to_string(),
        })?;
        if let Some(split) = &r.split {
            print_split(split, r.cache_usage_bytes);
            continue;
        }
        eprintln!(
            "  {}: {} ops in {:.2}s, found {}, wal syncs {}, flushes {}, compactions {}, cache {} bytes, memtables peak {} of {} bytes",
            r.workload,
            r.ops,
            r.nanos as f64 / 1e9,
            r.found,
            r.wal_syncs,
            r.flushes,
            r.compactions,
            r.cache_usage_bytes,
            r.memtable_peak_bytes,
            r.memtable_budget_bytes
        );
        if print {
            println!("{} {:.0}", r.workload, r.ops_per_sec());
        }
    }
    if let Some(kib) = peak_rss_kib() {
        eprintln!("  peak RSS: {} MiB", kib / 1024);
    }
    let _ = std::fs::remove_dir_all(&args.dir);
    Ok(())
}

fn ms(nanos: u64) -> f64 {
    nanos as f64 / 1e6
}

fn print_split(report: &SplitReport, cache_bytes: usize) {
    for s in &report.sizes {
        let list = |v: &[u64]| {
            v.iter()
                .map(|n| format!("{:.2}", ms(*n)))
                .collect::<Vec<_>>()
                .join(" ")
        };
        eprintln!(
            "  split {}: {} keys, {} SST bytes in {} files; fill {:.1}s, flush+settle {:.0} ms; \
             memtables peak {} of {} bytes, cache {} bytes",
            s.label,
            s.keys,
            s.sst_bytes,
            s.files,
            s.fill_nanos as f64 / 1e9,
            ms(s.flush_nanos),
            s.memtable_peak_bytes,
            s.memtable_budget_bytes,
            cache_bytes
        );
        eprintln!(
            "    split_key ms [{}]; split_key+split ms [{}]; merge ms [{}]; SST bytes written: split {}, merge {}",
            list(&s.split_key_nanos),
            list(&s.split_nanos),
            list(&s.merge_nanos),
            s.split_sst_bytes_written,
            s.merge_sst_bytes_written
        );
        println!("split_{}_ms {:.3}", s.label, ms(s.split_median_nanos()));
        println!("merge_{}_ms {:.3}", s.label, ms(s.merge_median_nanos()));
        println!(
            "split_merge_{}_sst_bytes_written {}",
            s.label,
            s.split_sst_bytes_written + s.merge_sst_bytes_written
        );
    }
    if let Some(ratio) = report.split_ratio() {
        println!("split_ratio {ratio:.2}");
    }
}
