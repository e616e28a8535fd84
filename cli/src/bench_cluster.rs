//! `shale bench cluster`: a local cluster in this process on loopback TCP (the same roles as
//! `shale dev`), measured through the real client: point get, put and 100-row scans on 1 and
//! 16 connections (one client each), next to a raw loopback TCP ping-pong (8-byte messages)
//! measured in the same run, in slices alternating with the 1-connection gets; then the time from a tablet node's death (its host stopped) to
//! every tablet of the table Ready on the survivors, with default settings.
//!
//! Must not: change any role's settings (the figures are for the defaults).

use crate::args::ClusterBenchArgs;
use crate::cluster::{LocalCluster, LocalPorts};
use shale_client::{
    ClientOptions, FamilyDesc, Mutation, ReadFilter, RowMutation, ScanOptions, Schema, ShaleClient,
    TabletStatus,
};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const TABLE: &str = "bench";
const FAMILY: &str = "cf";
const VALUE_BYTES: usize = 100;
const LOAD_BATCH_ROWS: u32 = 1_000;
const SCAN_ROWS: u32 = 100;
const CONNECTIONS: [usize; 2] = [1, 16];
const FAILOVER_TIMEOUT: Duration = Duration::from_secs(120);
/// The 1-connection get and the ping-pong alternate this many times within `--secs` each.
const PAIRED_SLICES: u32 = 4;

#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    #[error("{0}")]
    Setup(String),
    #[error("client: {0}")]
    Client(#[from] shale_client::Error),
}

fn key(i: u32) -> Vec<u8> {
    format!("key{i:010}").into_bytes()
}

pub fn run(args: ClusterBenchArgs) -> Result<(), BenchError> {
    let setup = |e: &dyn std::fmt::Display| BenchError::Setup(e.to_string());
    let _ = std::fs::remove_dir_all(&args.dir);
    std::fs::create_dir_all(&args.dir).map_err(|e| setup(&e))?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| setup(&e))?;
    let result = rt.block_on(bench(&args));
    let _ = std::fs::remove_dir_all(&args.dir);
    result
}

async fn bench(args: &ClusterBenchArgs) -> Result<(), BenchError> {
    let setup = |e: &dyn std::fmt::Display| BenchError::Setup(e.to_string());
    let secs = Duration::from_secs(args.secs.max(1));
    let ports = LocalPorts::from_base(0, 3);
    let cluster = LocalCluster::start(shale_client::DEFAULT_CLUSTER_ID, &args.dir, &ports)
        .await
        .map_err(|e| setup(&e))?;
    let meta = cluster.meta.addr;
    let admin = ShaleClient::connect(ClientOptions::new(meta)).await?;
    let rows = args.rows.max(SCAN_ROWS * 2);
    let splits = (1..3).map(|k| key(rows / 3 * k)).collect();
    let schema = Schema {
        families: vec![FamilyDesc {
            name: FAMILY.into(),
            locality_group: "default".into(),
            max_versions: 1,
            min_versions: 0,
            ttl_secs: 0,
        }],
    };
    admin.create_table(TABLE, schema, splits).await?;
    wait_ready(&admin, None).await?;
    for start in (0..rows).step_by(LOAD_BATCH_ROWS as usize) {
        let batch = (start..(start + LOAD_BATCH_ROWS).min(rows))
            .map(put_row)
            .collect();
        admin.write(TABLE, batch).await?;
    }

    let mut pingpong = 0.0;
    let mut get1 = 0.0;
    for conns in CONNECTIONS {
        let clients = connect_n(meta, conns).await?;
        for kind in ["get", "put", "scan"] {
            let rate = if kind == "get" && conns == 1 {
                // The ratio's two sides in alternating slices of the same window, so a
                // neighbour's load on the shared machine weighs on both alike.
                let slice = secs / PAIRED_SLICES;
                for _ in 0..PAIRED_SLICES {
                    pingpong += ping_pong(slice).await.map_err(|e| setup(&e))?;
                    get1 += measure(&clients, kind, rows, slice).await?;
                }
                pingpong /= f64::from(PAIRED_SLICES);
                get1 /= f64::from(PAIRED_SLICES);
                println!("pingpong_1conn {pingpong:.0} round_trips_per_sec");
                get1
            } else {
                measure(&clients, kind, rows, secs).await?
            };
            println!("{kind}_{conns}conn {rate:.0} ops_per_sec");
        }
        for c in clients.iter() {
            c.shutdown().await;
        }
    }
    println!(
        "get_1conn_vs_pingpong {:.0}% (target >= 50%)",
        100.0 * get1 / pingpong.max(1.0)
    );

    if !args.no_failover {
        let mut cluster = cluster;
        let victim = cluster.nodes.remove(0);
        let dead = victim.node;
        let t0 = Instant::now();
        victim.stop().await;
        wait_ready(&admin, Some(dead)).await?;
        println!(
            "node_death_to_all_ready {:.2} s (target <= 5 s)",
            t0.elapsed().as_secs_f64()
        );
        admin.shutdown().await;
        cluster.stop().await;
    } else {
        admin.shutdown().await;
        cluster.stop().await;
    }
    Ok(())
}

fn put_row(i: u32) -> RowMutation {
    RowMutation {
        row: key(i),
        mutations: vec![Mutation::Put {
            family: FAMILY.into(),
            qualifier: b"q".to_vec(),
            ts: None,
            value: vec![b'v'; VALUE_BYTES],
        }],
    }
}

async fn connect_n(
    meta: std::net::SocketAddr,
    n: usize,
) -> Result<Arc<Vec<ShaleClient>>, BenchError> {
    let mut v = Vec::new();
    for _ in 0..n {
        let c = ShaleClient::connect(ClientOptions::new(meta)).await?;
        // Warm the location cache and the connections before timing.
        c.get(TABLE, &key(0), ReadFilter::default()).await?;
        v.push(c);
    }
    Ok(Arc::new(v))
}

/// Every client runs `kind` back to back for `secs`; returns the total rate.
async fn measure(
    clients: &Arc<Vec<ShaleClient>>,
    kind: &'static str,
    rows: u32,
    secs: Duration,
) -> Result<f64, BenchError> {
    let t0 = Instant::now();
    let mut tasks = Vec::new();
    for idx in 0..clients.len() {
        let clients = clients.clone();
        tasks.push(tokio::spawn(async move {
            let c = &clients[idx];
            let mut n: u64 = 0;
            let mut i = (idx as u32).wrapping_mul(7_919) % rows;
            while t0.elapsed() < secs {
                i = (i + 7_919) % rows;
                match kind {
                    "get" => {
                        c.get(TABLE, &key(i), ReadFilter::default()).await?;
                    }
                    "put" => c.write(TABLE, vec![put_row(i)]).await?,
                    _ => {
                        let scan = ScanOptions {
                            start: key(i.min(rows - SCAN_ROWS)),
                            limit: SCAN_ROWS,
                            ..ScanOptions::default()
                        };
                        c.scan(TABLE, scan).await?;
                    }
                }
                n += 1;
            }
            Ok::<u64, shale_client::Error>(n)
        }));
    }
    let mut total = 0;
    for t in tasks {
        total += t
            .await
            .map_err(|e| BenchError::Setup(format!("bench task: {e}")))??;
    }
    Ok(total as f64 / t0.elapsed().as_secs_f64())
}

/// Wait until every tablet of the table is Ready (and none on `not_on`).
async fn wait_ready(
    c: &ShaleClient,
    not_on: Option<shale_client::NodeId>,
) -> Result<(), BenchError> {
    let t0 = Instant::now();
    loop {
        let ts = c.list_tablets(Some(TABLE)).await.unwrap_or_default();
        if !ts.is_empty()
            && ts
                .iter()
                .all(|t| t.status == TabletStatus::Ready && (not_on.is_none() || t.node != not_on))
        {
            return Ok(());
        }
        if t0.elapsed() > FAILOVER_TIMEOUT {
            return Err(BenchError::Setup(format!(
                "tablets not Ready after {FAILOVER_TIMEOUT:?}"
            )));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Raw loopback TCP: one connection, 8-byte request, 8-byte echo, back to back.
async fn ping_pong(secs: Duration) -> std::io::Result<f64> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let server = tokio::spawn(async move {
        if let Ok((mut s, _)) = listener.accept().await {
            let _ = s.set_nodelay(true);
            let mut buf = [0u8; 8];
            while s.read_exact(&mut buf).await.is_ok() {
                if s.write_all(&buf).await.is_err() {
                    break;
                }
            }
        }
    });
    let mut s = tokio::net::TcpStream::connect(addr).await?;
    s.set_nodelay(true)?;
    let mut buf = [0u8; 8];
    let t0 = Instant::now();
    let mut n: u64 = 0;
    while t0.elapsed() < secs {
        s.write_all(&n.to_le_bytes()).await?;
        s.read_exact(&mut buf).await?;
        n += 1;
    }
    let rate = n as f64 / t0.elapsed().as_secs_f64();
    drop(s);
    server.abort();
    Ok(rate)
}
