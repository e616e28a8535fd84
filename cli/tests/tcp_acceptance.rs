//! The real-TCP acceptance test (issue 4): `shale dev` with 3 tablet nodes as a child process
//! on a temp folder and OS-chosen loopback ports; a table pre-split into 4; rows written
//! through the client while splits, merges and moves are forced through admin calls; then
//! `kill -9`, a restart on the same folder, and every row read back (scans both ways and
//! point gets).
//!
//! Rows: the 100 000 (about 10 s in a debug build on two cores); `SHALE_ACCEPT_ROWS`
//! changes it.
//!
//! The child's logs (`RUST_LOG` = `SHALE_ACCEPT_LOG`, default `info`) go to `dev.log` in the
//! scratch folder, across the restart; on a failure their tail is printed and the folder kept.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use shale_client::{
    ClientOptions, Error, FamilyDesc, Mutation, ReadFilter, RowMutation, ScanOptions, Schema,
    ShaleClient, TabletId, TabletInfo, TabletStatus,
};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use support::{Dev, LogTail, Scratch};

const TABLE: &str = "accept";
const FAMILY: &str = "cf";
const ROWS_DEFAULT: usize = 100_000;
const BATCH_ROWS: usize = 500;
const WRITERS: usize = 4;
/// Attempts of one batch whose answer was lost or refused (puts are idempotent here).
const WRITE_ATTEMPTS_MAX: u32 = 10;
const READY_TIMEOUT: Duration = Duration::from_secs(60);

fn key(i: usize) -> Vec<u8> {
    format!("row{i:07}").into_bytes()
}
fn value(i: usize) -> Vec<u8> {
    format!("value-{i}-{}", i.wrapping_mul(2_654_435_761) % 1_000_003).into_bytes()
}

async fn client(meta: std::net::SocketAddr) -> ShaleClient {
    ShaleClient::connect(ClientOptions::new(meta))
        .await
        .expect("client")
}

async fn tablets(c: &ShaleClient) -> Vec<TabletInfo> {
    c.list_tablets(Some(TABLE)).await.unwrap_or_default()
}

/// Wait until the table has tablets and every one is Ready.
async fn all_ready(c: &ShaleClient) -> Vec<TabletInfo> {
    let deadline = Instant::now() + READY_TIMEOUT;
    loop {
        let ts = tablets(c).await;
        if !ts.is_empty() && ts.iter().all(|t| t.status == TabletStatus::Ready) {
            return ts;
        }
        assert!(Instant::now() < deadline, "tablets not all Ready: {ts:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn write_range(c: Arc<ShaleClient>, rows: Vec<usize>) {
    for chunk in rows.chunks(BATCH_ROWS) {
        let batch: Vec<RowMutation> = chunk
            .iter()
            .map(|&i| RowMutation {
                row: key(i),
                mutations: vec![Mutation::Put {
                    family: FAMILY.into(),
                    qualifier: b"q".to_vec(),
                    ts: None,
                    value: value(i),
                }],
            })
            .collect();
        let mut attempt = 0;
        loop {
            attempt += 1;
            match c.write(TABLE, batch.clone()).await {
                Ok(()) => break,
                Err(e @ (Error::OutcomeUnknown(_) | Error::Unavailable { .. }))
                    if attempt < WRITE_ATTEMPTS_MAX =>
                {
                    eprintln!("batch retried after: {e}");
                }
                Err(e) => panic!("write failed: {e}"),
            }
        }
    }
}

#[derive(Default, Debug)]
struct Forced {
    splits: u32,
    merges: u32,
    moves: u32,
}

/// Force splits, merges and moves while the writers run.
async fn churn(c: Arc<ShaleClient>, stop: Arc<AtomicBool>) -> Forced {
    let mut done = Forced::default();
    let mut round = 0u64;
    while !stop.load(Ordering::Relaxed) || done.splits == 0 || done.merges == 0 || done.moves == 0 {
        round += 1;
        assert!(round < 2_000, "churn never managed each kind: {done:?}");
        let ts = tablets(&c).await;
        let ready: Vec<&TabletInfo> = ts
            .iter()
            .filter(|t| t.status == TabletStatus::Ready)
            .collect();
        match round % 3 {
            0 => {
                // Split the widest Ready tablet at a key inside it.
                if let Some(t) = ready.iter().max_by_key(|t| t.size_bytes) {
                    let lo = if t.start.is_empty() {
                        0
                    } else {
                        parse(&t.start)
                    };
                    let hi = if t.end.is_empty() {
                        10_000_000
                    } else {
                        parse(&t.end)
                    };
                    if hi > lo + 2 && c.split_tablet(t.id, Some(key((lo + hi) / 2))).await.is_ok() {
                        done.splits += 1;
                    }
                }
            }
            1 => {
                let mut sorted = ready.clone();
                sorted.sort_by(|a, b| a.start.cmp(&b.start));
                if let Some(w) = sorted.windows(2).find(|w| w[0].end == w[1].start) {
                    if c.merge_tablets(w[0].id, w[1].id).await.is_ok() {
                        done.merges += 1;
                    }
                }
            }
            _ => {
                let nodes = c.list_nodes().await.unwrap_or_default();
                if let Some(t) = ready.get(round as usize % ready.len().max(1)) {
                    let other = nodes.iter().find(|n| Some(n.id) != t.node);
                    if let Some(n) = other {
                        if c.move_tablet(t.id, n.id).await.is_ok() {
                            done.moves += 1;
                        }
                    }
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
    done
}

fn parse(k: &[u8]) -> usize {
    std::str::from_utf8(k)
        .ok()
        .and_then(|s| s.strip_prefix("row"))
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

async fn read_back(c: &ShaleClient, n: usize) {
    for reverse in [false, true] {
        let scan = ScanOptions {
            reverse,
            limit: u32::try_from(n + 1).unwrap(),
            ..ScanOptions::default()
        };
        let rows = c.scan(TABLE, scan).await.expect("scan");
        assert_eq!(rows.len(), n, "reverse={reverse}");
        for (pos, r) in rows.iter().enumerate() {
            let i = if reverse { n - 1 - pos } else { pos };
            assert_eq!(r.row, key(i), "reverse={reverse}");
            assert_eq!(r.cells.first().map(|c| c.value.clone()), Some(value(i)));
        }
    }
    for i in (0..n).step_by((n / 50).max(1)) {
        let got = c
            .get(TABLE, &key(i), ReadFilter::default())
            .await
            .expect("get");
        assert_eq!(
            got.and_then(|r| r.cells.first().map(|c| c.value.clone())),
            Some(value(i))
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rows_survive_churn_and_kill_9() {
    let n: usize = std::env::var("SHALE_ACCEPT_ROWS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(ROWS_DEFAULT);
    let scratch = Scratch::new("accept");
    let data = scratch.0.join("data");
    let log = scratch.0.join("dev.log");
    let filter = std::env::var("SHALE_ACCEPT_LOG").unwrap_or_else(|_| "info".into());
    let _tail = LogTail {
        path: log.clone(),
        bytes: 64 * 1024,
    };
    let started = Instant::now();
    let dev = Dev::start_logged(&data, 3, &log, &filter);
    let c = Arc::new(client(dev.meta).await);
    let splits = [n / 4, n / 2, 3 * n / 4].map(key).to_vec();
    let schema = Schema {
        families: vec![FamilyDesc {
            name: FAMILY.into(),
            locality_group: "default".into(),
            max_versions: 1,
            min_versions: 0,
            ttl_secs: 0,
        }],
    };
    c.create_table(TABLE, schema, splits).await.expect("create");
    assert_eq!(all_ready(&c).await.len(), 4, "pre-split into 4");

    let stop = Arc::new(AtomicBool::new(false));
    let churner = tokio::spawn(churn(c.clone(), stop.clone()));
    let writers: Vec<_> = (0..WRITERS)
        .map(|w| {
            let rows: Vec<usize> = (0..n).filter(|i| i % WRITERS == w).collect();
            tokio::spawn(write_range(c.clone(), rows))
        })
        .collect();
    for w in writers {
        w.await.expect("writer");
    }
    let wrote = started.elapsed();
    stop.store(true, Ordering::Relaxed);
    let forced = churner.await.expect("churn");
    eprintln!("{n} rows written in {wrote:?} with {forced:?}");
    assert!(forced.splits > 0 && forced.merges > 0 && forced.moves > 0);
    let before = all_ready(&c).await;
    read_back(&c, n).await;
    c.shutdown().await;
    drop(c);

    dev.kill9();
    let dev = Dev::start_logged(&data, 3, &log, &filter);
    let c = client(dev.meta).await;
    let after = all_ready(&c).await;
    let ids = |ts: &[TabletInfo]| -> Vec<TabletId> { ts.iter().map(|t| t.id).collect() };
    assert_eq!(
        ids(&after),
        ids(&before),
        "the same tablets after the restart"
    );
    read_back(&c, n).await;
    eprintln!("total {:?}", started.elapsed());
    c.shutdown().await;
}
