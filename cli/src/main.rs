//! The `shale` command line.
//!
//! Owns argument parsing, logging setup, the terminal and real configuration; every command
//! delegates to a library crate. Must not: hold cluster logic of its own.

use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

mod bench;
mod dev;

#[derive(Parser, Debug)]
#[command(
    name = "shale",
    version,
    about = "Shale: a distributed, sorted, versioned table store"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run a local cluster in this process on loopback TCP (until Ctrl-C or --duration).
    Dev(DevArgs),
    /// Benchmarks (numbers go to docs/benchmarks.md).
    #[command(subcommand)]
    Bench(BenchCommand),
}

#[derive(Subcommand, Debug)]
enum BenchCommand {
    /// The storage engine on the local disk, with db_bench's workload shapes. Prints
    /// `workload ops_per_sec` lines; `bench/engine-vs-rocksdb.sh` compares them with db_bench.
    Engine(EngineArgs),
}

#[derive(clap::Args, Debug)]
struct EngineArgs {
    /// Scratch folder (emptied before and removed after).
    #[arg(long, default_value = "/tmp/shale-bench-engine")]
    dir: String,
    /// Keys written by the fill workloads (16-byte keys, 100-byte values).
    #[arg(long, default_value_t = 1_000_000)]
    num: u64,
    /// Keys written by the synced-write workloads.
    #[arg(long, default_value_t = 5_000)]
    fillsync_num: u64,
    /// Workloads to run (default: all). Reads run fillrandom first if it is not listed.
    #[arg(long = "workload", value_name = "NAME")]
    workloads: Vec<String>,
    #[arg(long, default_value_t = 42)]
    seed: u64,
}

#[derive(clap::Args, Debug)]
struct DevArgs {
    /// Data folder of the local cluster.
    #[arg(long, default_value = "./shale-data")]
    data: PathBuf,
    /// Number of nodes.
    #[arg(long, default_value_t = 3)]
    nodes: usize,
    /// First TCP port; node i listens on base-port + i. 0 lets the OS choose.
    #[arg(long, default_value_t = 0)]
    base_port: u16,
    /// Stop after this many seconds instead of waiting for Ctrl-C.
    #[arg(long)]
    duration_secs: Option<u64>,
    /// Seed for the nodes' random generators (random backoff jitter and the like).
    #[arg(long)]
    seed: Option<u64>,
}

fn main() -> ExitCode {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Dev(args) => dev::run(dev::DevOptions {
            data: args.data,
            nodes: args.nodes,
            base_port: args.base_port,
            run_for: args.duration_secs.map(Duration::from_secs),
            seed: args.seed,
        })
        .map_err(|e| e.to_string()),
        Command::Bench(BenchCommand::Engine(args)) => bench::engine(bench::EngineBenchArgs {
            dir: args.dir,
            num: args.num,
            fillsync_num: args.fillsync_num,
            workloads: args.workloads,
            seed: args.seed,
        })
        .map_err(|e| e.to_string()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("shale: error: {e}");
            ExitCode::FAILURE
        }
    }
}
