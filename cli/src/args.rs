//! The command line's shape (clap). Must not: run anything; `main.rs` dispatches.

use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

#[derive(Parser, Debug)]
#[command(
    name = "shale",
    version,
    about = "Shale: a distributed, sorted, versioned table store"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

/// How client commands reach the cluster.
#[derive(Args, Debug, Clone)]
pub struct Conn {
    /// The meta store's address (`shale dev` prints it).
    #[arg(
        long,
        env = "SHALE_CLUSTER",
        default_value = "127.0.0.1:7100",
        global = true
    )]
    pub cluster: String,
    /// Print data as JSON (one document per command).
    #[arg(long, global = true)]
    pub json: bool,
    /// Give up on one call after this many seconds.
    #[arg(long, default_value_t = 30, global = true)]
    pub timeout_secs: u64,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run a local cluster (meta store, master, tablet nodes) in this process on loopback TCP.
    Dev(DevArgs),
    /// Run the meta store alone (one role per process).
    Meta(RoleArgs),
    /// Run a master alone.
    Master(RoleArgs),
    /// Run a tablet node alone.
    Tabletnode(RoleArgs),
    /// Tables: create, list, describe, disable, enable, drop.
    Table {
        #[command(subcommand)]
        cmd: TableCmd,
        #[command(flatten)]
        conn: Conn,
    },
    /// Write one cell.
    Put {
        table: String,
        row: String,
        /// FAMILY:QUALIFIER
        column: String,
        /// The value (or give --value-file).
        #[arg(required_unless_present = "value_file", conflicts_with = "value_file")]
        value: Option<String>,
        /// Read the value from this file instead (large or binary values).
        #[arg(long, value_name = "PATH")]
        value_file: Option<std::path::PathBuf>,
        #[command(flatten)]
        conn: Conn,
    },
    /// Read one row.
    Get {
        table: String,
        row: String,
        /// Only this column (FAMILY:QUALIFIER) or family (FAMILY); repeatable.
        #[arg(long)]
        column: Vec<String>,
        /// Versions per column (default: the family's max versions).
        #[arg(long)]
        versions: Option<u32>,
        #[command(flatten)]
        conn: Conn,
    },
    /// Delete a row, a family (F) or a column (F:Q).
    Delete {
        table: String,
        row: String,
        target: Option<String>,
        #[command(flatten)]
        conn: Conn,
    },
    /// Read rows in key order (or reverse) across tablets.
    Scan {
        table: String,
        /// First row (inclusive).
        #[arg(long, default_value = "")]
        start: String,
        /// Last row (exclusive).
        #[arg(long, default_value = "")]
        end: String,
        #[arg(long, default_value_t = 100)]
        limit: u32,
        #[arg(long)]
        reverse: bool,
        #[command(flatten)]
        conn: Conn,
    },
    /// Tablets: list, split, merge, move.
    Tablet {
        #[command(subcommand)]
        cmd: TabletCmd,
        #[command(flatten)]
        conn: Conn,
    },
    /// Tablet nodes.
    Node {
        #[command(subcommand)]
        cmd: NodeCmd,
        #[command(flatten)]
        conn: Conn,
    },
    /// Time-series tables: create, describe, partitions, move, put (bulk ingest), scan.
    Ts {
        #[command(subcommand)]
        cmd: crate::ts::TsCmd,
        #[command(flatten)]
        conn: Conn,
    },
    /// The cluster's state in one screen.
    Status {
        #[command(flatten)]
        conn: Conn,
    },
    /// Benchmarks (numbers go to docs/benchmarks.md).
    #[command(subcommand)]
    Bench(BenchCommand),
    /// Run a fault scenario in the deterministic simulator: one seed, a sweep, a trace, a
    /// timeline page, or a shrunk failing run (docs/simulation.md).
    Sim(crate::sim::SimArgs),
}

#[derive(Subcommand, Debug)]
pub enum TableCmd {
    Create {
        name: String,
        /// Column families, comma separated.
        #[arg(long, value_delimiter = ',', required = true)]
        family: Vec<String>,
        /// Pre-split row keys, comma separated.
        #[arg(long, value_delimiter = ',')]
        split: Vec<String>,
        #[arg(long, default_value_t = 3)]
        max_versions: u32,
        /// Cells older than this expire (0 = never).
        #[arg(long, default_value_t = 0)]
        ttl: u64,
    },
    List,
    Describe {
        name: String,
    },
    Disable {
        name: String,
    },
    Enable {
        name: String,
    },
    Drop {
        name: String,
    },
}

#[derive(Subcommand, Debug)]
pub enum TabletCmd {
    List {
        table: Option<String>,
    },
    Split {
        id: u64,
        /// Split at this row (default: where the node halves the data).
        #[arg(long)]
        key: Option<String>,
    },
    Merge {
        a: u64,
        b: u64,
    },
    /// Move a tablet to a node (id or name).
    Move {
        id: u64,
        node: String,
    },
}

#[derive(Subcommand, Debug)]
pub enum NodeCmd {
    List,
}

#[derive(Args, Debug)]
pub struct DevArgs {
    /// Data folder of the local cluster.
    #[arg(long, default_value = "./shale-data")]
    pub data: PathBuf,
    /// Number of tablet nodes.
    #[arg(long, default_value_t = 3)]
    pub nodes: usize,
    /// The meta store's port; the master takes the next, node i base+2+i. 0 lets the OS
    /// choose. Ignored on a restart: the ports saved in the data folder are reused.
    #[arg(long, default_value_t = crate::dev::DEFAULT_BASE_PORT)]
    pub base_port: u16,
    /// Stop after this many seconds instead of waiting for Ctrl-C.
    #[arg(long)]
    pub duration_secs: Option<u64>,
    #[arg(long, env = "SHALE_CLUSTER_ID", default_value = shale_client::DEFAULT_CLUSTER_ID)]
    pub cluster_id: String,
    /// Where meta state lives: `embedded` (under the data folder) or mysql://user:pass@host/db.
    #[arg(long, env = "SHALE_META_BACKEND", default_value = "embedded")]
    pub meta_backend: String,
}

/// One role per process: a TOML file, overridden by flags and env (see docs/operations.md).
#[derive(Args, Debug)]
pub struct RoleArgs {
    #[arg(long, env = "SHALE_CONFIG")]
    pub config: Option<PathBuf>,
    #[arg(long, env = "SHALE_CLUSTER_ID")]
    pub cluster_id: Option<String>,
    /// Shared data folder (the file store's root).
    #[arg(long, env = "SHALE_DATA")]
    pub data: Option<PathBuf>,
    /// Address to listen on.
    #[arg(long, env = "SHALE_LISTEN")]
    pub listen: Option<String>,
    /// Address published to clients and peers (default: the listen address).
    #[arg(long, env = "SHALE_ADVERTISE")]
    pub advertise: Option<String>,
    /// The meta store's address (master, tabletnode).
    #[arg(long, env = "SHALE_META")]
    pub meta: Option<String>,
    /// This process's node id (master: default 2; tabletnode: required, 100 and up).
    #[arg(long, env = "SHALE_NODE_ID")]
    pub node_id: Option<u64>,
    /// Tablet node name, unique in the cluster.
    #[arg(long, env = "SHALE_NODE_NAME")]
    pub name: Option<String>,
    /// Meta role: where meta state lives, `embedded` (default) or mysql://user:pass@host/db.
    #[arg(long, env = "SHALE_META_BACKEND")]
    pub meta_backend: Option<String>,
    /// Tablet node: disk offered to time-series partitions (default 100 GiB).
    #[arg(long, env = "SHALE_TOTAL_DISK_BYTES")]
    pub total_disk_bytes: Option<u64>,
}

#[derive(Subcommand, Debug)]
pub enum BenchCommand {
    /// The storage engine on the local disk, with db_bench's workload shapes.
    Engine(EngineArgs),
    /// A local cluster on loopback TCP: point get, put and scan on 1 and 16 connections,
    /// against a loopback ping-pong measured in the same run; and node-death recovery time.
    Cluster(ClusterBenchArgs),
}

#[derive(Args, Debug)]
pub struct EngineArgs {
    /// Scratch folder (emptied before and removed after).
    #[arg(long, default_value = "/tmp/shale-bench-engine")]
    pub dir: String,
    /// Keys written by the fill workloads (16-byte keys, 100-byte values).
    #[arg(long, default_value_t = 1_000_000)]
    pub num: u64,
    /// Keys written by the synced-write workloads.
    #[arg(long, default_value_t = 5_000)]
    pub fillsync_num: u64,
    /// Workloads to run (default: all). Reads run fillrandom first if it is not listed.
    #[arg(long = "workload", value_name = "NAME")]
    pub workloads: Vec<String>,
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Tablet size the split workload always builds.
    #[arg(long, default_value_t = 10 << 20)]
    pub split_small_bytes: u64,
    /// Also build and split a tablet of this size (e.g. 1073741824 for 1 GiB).
    #[arg(long)]
    pub split_large_bytes: Option<u64>,
}

#[derive(Args, Debug)]
pub struct ClusterBenchArgs {
    /// Scratch folder (emptied before and removed after).
    #[arg(long, default_value = "/tmp/shale-bench-cluster")]
    pub dir: PathBuf,
    /// Seconds per measurement.
    #[arg(long, default_value_t = 5)]
    pub secs: u64,
    /// Rows loaded before the reads.
    #[arg(long, default_value_t = 10_000)]
    pub rows: u32,
    /// Skip the node-death recovery measurement.
    #[arg(long)]
    pub no_failover: bool,
}
