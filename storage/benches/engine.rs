//! `cargo bench -p shale-storage --bench engine [-- workload...]`: the engine benchmark on the
//! local disk. This target is the host: it owns the wall clock and the threads the library's
//! `bench::run` asks for (the storage crate itself has neither).
//!
//! Environment: `SHALE_BENCH_DIR` (default /tmp/shale-bench), `SHALE_BENCH_NUM` (1000000).
#![allow(clippy::disallowed_types, clippy::disallowed_methods)] // a benchmark measures wall time

use std::time::{Duration, Instant};

use shale_storage::bench::{run, BenchEnv, BenchOptions, Workload};

struct Host {
    origin: Instant,
}

impl BenchEnv for Host {
    fn now_nanos(&self) -> u64 {
        self.origin.elapsed().as_nanos() as u64
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

fn main() {
    let mut opts = BenchOptions::default();
    if let Ok(d) = std::env::var("SHALE_BENCH_DIR") {
        opts.dir = d;
    }
    if let Some(n) = std::env::var("SHALE_BENCH_NUM")
        .ok()
        .and_then(|n| n.parse().ok())
    {
        opts.num = n;
    }
    let _ = std::fs::remove_dir_all(&opts.dir);
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let workloads: Vec<Workload> = if args.is_empty() {
        Workload::ALL.to_vec()
    } else {
        args.iter().filter_map(|a| Workload::parse(a)).collect()
    };
    let host = Host {
        origin: Instant::now(),
    };
    println!("workload ops_per_sec ops secs found wal_syncs flushes compactions cache_bytes");
    for w in workloads {
        match run(&host, w, &opts) {
            Ok(r) => println!(
                "{} {:.0} {} {:.2} {} {} {} {} {}",
                r.workload,
                r.ops_per_sec(),
                r.ops,
                r.nanos as f64 / 1e9,
                r.found,
                r.wal_syncs,
                r.flushes,
                r.compactions,
                r.cache_usage_bytes
            ),
            Err(e) => println!("{} failed: {e}", w.name()),
        }
    }
    if let Some(kib) = peak_rss_kib() {
        println!("peak_rss_mib {:.0}", kib as f64 / 1024.0);
    }
}
