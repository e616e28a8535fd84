//! The `shale` command line.
//!
//! Owns argument parsing, logging setup, the terminal and real configuration; every command
//! delegates to a library crate or a module here. Logs go to stderr; data to stdout. Any
//! failure prints one `shale: error: ...` line and exits non-zero.
//!
//! Map: `args.rs` the clap definitions; `commands.rs` client commands and their output;
//! `nodes.rs` `node list`; `ts.rs` / `ts_rows.rs` time-series tables (`shale ts`);
//! `meta_backend.rs` `--meta-backend`; `cluster.rs` the server roles on TCP; `dev.rs` the
//! local cluster; `roles.rs` one role per process and `settings.rs` its role settings;
//! `bench.rs` / `bench_cluster.rs` benchmarks.
//!
//! Must not: hold cluster logic of its own.

use clap::Parser;
use std::process::ExitCode;
use std::time::Duration;

mod args;
mod bench;
mod bench_cluster;
mod cluster;
mod commands;
mod dev;
mod meta_backend;
mod nodes;
mod roles;
mod settings;
mod sim;
mod sim_html;
mod ts;
mod ts_rows;

use args::{BenchCommand, Cli, Command};

fn main() -> ExitCode {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
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
            cluster_id: args.cluster_id,
            meta_backend: args.meta_backend,
        })
        .map_err(|e| e.to_string()),
        Command::Meta(a) => roles::run(roles::Role::Meta, a).map_err(|e| e.to_string()),
        Command::Master(a) => roles::run(roles::Role::Master, a).map_err(|e| e.to_string()),
        Command::Tabletnode(a) => roles::run(roles::Role::TabletNode, a).map_err(|e| e.to_string()),
        Command::Bench(BenchCommand::Engine(args)) => bench::engine(bench::EngineBenchArgs {
            dir: args.dir,
            num: args.num,
            fillsync_num: args.fillsync_num,
            workloads: args.workloads,
            seed: args.seed,
            split_small_bytes: args.split_small_bytes,
            split_large_bytes: args.split_large_bytes,
        })
        .map_err(|e| e.to_string()),
        Command::Bench(BenchCommand::Cluster(args)) => {
            bench_cluster::run(args).map_err(|e| e.to_string())
        }
        Command::Ts { cmd, conn } => ts::run(cmd, &conn).map_err(|e| e.to_string()),
        Command::Sim(args) => sim::run_cmd(args).map_err(|e| e.to_string()),
        other => commands::run(other).map_err(|e| e.to_string()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // One line, whatever the error carried.
            let line = e.replace('\n', " ");
            eprintln!("shale: error: {line}");
            ExitCode::FAILURE
        }
    }
}
