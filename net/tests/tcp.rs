//! Real TCP on 127.0.0.1 (ephemeral ports): hosts in one process exchanging messages, a
//! restart with reconnect, a refused cluster id, garbage on the wire, and a client that is in
//! nobody's peer table. Normal build only; the madsim build has its own test.
#![cfg(not(madsim))]

use shale_actors::{Epoch, NodeId};
use shale_net::demo::{stats_snapshot, DemoMsg, PeerStats, PingPong, SharedStats};
use shale_net::frame::{encode, FRAME_SIZE_MAX_BYTES_DEFAULT};
use shale_net::{spawn_host, ClusterId, Hello, HostConfig, HostHandle, NetConfig, Packet};
use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::task::JoinHandle;

const A: NodeId = NodeId(1);
const B: NodeId = NodeId(2);
const C: NodeId = NodeId(3);
const WAIT_MAX: Duration = Duration::from_secs(5);

struct Node {
    handle: HostHandle<DemoMsg>,
    task: JoinHandle<PingPong>,
    stats: SharedStats,
}

impl Node {
    fn addr(&self) -> SocketAddr {
        match self.handle.local_addr() {
            Some(a) => a,
            None => panic!("node has no listen address"),
        }
    }
    fn seen(&self, peer: NodeId) -> PeerStats {
        stats_snapshot(&self.stats)
            .get(&peer)
            .cloned()
            .unwrap_or_default()
    }
    async fn stop(self) -> PingPong {
        self.handle.stop();
        match self.task.await {
            Ok(actor) => actor,
            Err(e) => panic!("host task failed: {e}"),
        }
    }
}

fn fast_net() -> NetConfig {
    NetConfig {
        reconnect_backoff_min_ms: 10,
        reconnect_backoff_max_ms: 100,
        connect_timeout_ms: 1000,
        handshake_timeout_ms: 1000,
        ..NetConfig::default()
    }
}

async fn start(
    cluster: &str,
    me: NodeId,
    epoch: Epoch,
    listen: Option<SocketAddr>,
    pings_to: &[NodeId],
) -> Node {
    let mut cfg = HostConfig::new(ClusterId(cluster.into()), me, epoch);
    cfg.listen = listen;
    cfg.net = fast_net();
    cfg.rng_seed = Some(me.0);
    // A restarted node may find its old port still held for a moment by the stopping task.
    let mut tries_left = 100;
    loop {
        let actor = PingPong::new(
            epoch,
            pings_to.to_vec(),
            Duration::from_millis(20),
            Duration::from_secs(60),
        );
        let stats = actor.stats();
        match spawn_host(actor, cfg.clone()).await {
            Ok((handle, task)) => {
                return Node {
                    handle,
                    task,
                    stats,
                }
            }
            Err(e) if tries_left > 0 && listen.is_some_and(|a| a.port() != 0) => {
                eprintln!("retrying listen: {e}");
                tries_left -= 1;
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Err(e) => panic!("host did not start: {e}"),
        }
    }
}

fn loopback() -> Option<SocketAddr> {
    Some(SocketAddr::from(([127, 0, 0, 1], 0)))
}

async fn wait_until(what: &str, cond: impl Fn() -> bool) {
    let deadline = tokio::time::Instant::now() + WAIT_MAX;
    while !cond() {
        if tokio::time::Instant::now() > deadline {
            panic!("timed out waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

async fn pair() -> (Node, Node) {
    let a = start("t", A, Epoch(1), loopback(), &[B]).await;
    let b = start("t", B, Epoch(1), loopback(), &[A]).await;
    assert_eq!(a.handle.add_peer(B, b.addr()), Ok(()));
    assert_eq!(b.handle.add_peer(A, a.addr()), Ok(()));
    (a, b)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hosts_exchange_messages() {
    let (a, b) = pair().await;
    wait_until("pongs both ways", || {
        a.seen(B).pongs_received >= 5 && b.seen(A).pongs_received >= 5
    })
    .await;
    let (sa, sb) = (a.handle.stats(), b.handle.stats());
    assert!(
        sa.connections_dialed >= 1 && sa.connections_accepted >= 1,
        "{sa:?}"
    );
    assert!(sb.frames_received >= 5 && sb.frames_sent >= 5, "{sb:?}");
    assert_eq!(
        sa.bad_frames + sb.bad_frames + sa.handshakes_refused + sb.handshakes_refused,
        0
    );
    // Every pong answered a ping; round trips were measured.
    let seen = a.seen(B);
    assert!(seen.pongs_received <= seen.pings_sent);
    assert!(seen.rtt_mean().is_some_and(|d| d < Duration::from_secs(1)));
    assert_eq!(seen.pong_epoch_last, Some(Epoch(1)));
    a.stop().await;
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conversation_resumes_after_a_restart() {
    let (a, b) = pair().await;
    wait_until("first pongs", || a.seen(B).pongs_received >= 3).await;
    let b_addr = b.addr();
    let old_b = b.stop().await;
    assert!(stats_snapshot(&old_b.stats())
        .get(&A)
        .is_some_and(|s| s.pings_received >= 3));
    let before = a.seen(B).pongs_received;

    // B comes back on the same address as a new incarnation; A redials on its own.
    let b2 = start("t", B, Epoch(2), Some(b_addr), &[A]).await;
    assert_eq!(b2.handle.add_peer(A, a.addr()), Ok(()));
    wait_until("pongs from the new incarnation", || {
        let s = a.seen(B);
        s.pong_epoch_last == Some(Epoch(2)) && s.pongs_received >= before + 3
    })
    .await;
    wait_until("B2 hears A", || b2.seen(A).pongs_received >= 3).await;
    assert!(
        a.handle.stats().connections_dialed >= 2,
        "A redialled: {:?}",
        a.handle.stats()
    );
    a.stop().await;
    b2.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_foreign_cluster_is_refused() {
    let a = start("t", A, Epoch(1), loopback(), &[]).await;
    let c = start("other", C, Epoch(1), None, &[A]).await;
    assert_eq!(c.handle.add_peer(A, a.addr()), Ok(()));
    wait_until("refusals on both sides", || {
        a.handle.stats().handshakes_refused >= 2 && c.handle.stats().handshakes_refused >= 2
    })
    .await;
    assert_eq!(
        a.seen(C),
        PeerStats::default(),
        "nothing from a foreign cluster reaches the actor"
    );
    assert_eq!(c.seen(A).pongs_received, 0);
    a.stop().await;
    c.stop().await;
}

/// Connect, write `bytes`, and return once the host has closed the connection.
async fn send_raw_and_expect_close(addr: SocketAddr, bytes: &[u8]) {
    let mut stream = match tokio::net::TcpStream::connect(addr).await {
        Ok(s) => s,
        Err(e) => panic!("connect to {addr}: {e}"),
    };
    if let Err(e) = stream.write_all(bytes).await {
        panic!("write: {e}");
    }
    let mut buf = [0u8; 256];
    let closed = tokio::time::timeout(WAIT_MAX, async {
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => continue, // a Welcome, before the bad frame
            }
        }
    })
    .await;
    assert!(
        closed.is_ok(),
        "host kept a connection open after a bad frame"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_frames_close_only_their_connection() {
    let (a, b) = pair().await;
    wait_until("a working pair", || a.seen(B).pongs_received >= 2).await;

    // Not our protocol at all.
    send_raw_and_expect_close(a.addr(), b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").await;
    // A good handshake, then a frame with a corrupted checksum.
    let hello: Packet<DemoMsg> = Packet::Hello(Hello::new(ClusterId("t".into()), C, Epoch(1)));
    let ping: Packet<DemoMsg> = Packet::Msg(DemoMsg::Ping {
        seq: 0,
        sent_at: shale_actors::Time(0),
        epoch: Epoch(1),
    });
    let (Ok(mut bytes), Ok(mut bad)) = (
        encode(&hello, 4096),
        encode(&ping, FRAME_SIZE_MAX_BYTES_DEFAULT),
    ) else {
        panic!("encoding test frames failed");
    };
    let last = bad.len() - 1;
    bad[last] ^= 0x55;
    bytes.extend_from_slice(&bad);
    send_raw_and_expect_close(a.addr(), &bytes).await;

    wait_until("both bad frames counted", || {
        a.handle.stats().bad_frames >= 2
    })
    .await;
    assert_eq!(
        a.seen(C).pings_received,
        0,
        "the corrupted ping was not delivered"
    );
    let before = a.seen(B).pongs_received;
    wait_until("the good connection still works", || {
        a.seen(B).pongs_received >= before + 3
    })
    .await;
    a.stop().await;
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_outside_the_peer_table_gets_replies() {
    // A only answers; C dials A and is in nobody's table.
    let a = start("t", A, Epoch(1), loopback(), &[]).await;
    let c = start("t", C, Epoch(1), None, &[A]).await;
    assert_eq!(c.handle.local_addr(), None);
    assert_eq!(c.handle.add_peer(A, a.addr()), Ok(()));
    wait_until("pongs back to the client", || c.seen(A).pongs_received >= 3).await;
    assert!(a.seen(C).pings_received >= 3);
    assert_eq!(
        a.handle.stats().connections_dialed,
        0,
        "A answered over C's connection, never dialled"
    );
    a.stop().await;
    c.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_local_demo_cluster_runs_and_reports() {
    use shale_net::demo::{run_local_cluster, LocalClusterConfig};
    let cfg = LocalClusterConfig {
        nodes: 3,
        base_port: 0,
        ping_interval: Duration::from_millis(20),
        report_interval: Duration::from_millis(100),
        run_for: Some(Duration::from_millis(600)),
        seed: Some(5),
    };
    let report = match run_local_cluster(cfg).await {
        Ok(r) => r,
        Err(e) => panic!("demo cluster failed: {e}"),
    };
    assert_eq!(report.len(), 3);
    for (node, peers) in &report {
        assert_eq!(peers.len(), 2, "{node} saw both others: {peers:?}");
        for (peer, s) in peers {
            assert!(s.pongs_received >= 3, "{node} <- {peer}: {s:?}");
        }
    }
    let no_nodes = LocalClusterConfig {
        nodes: 0,
        ..LocalClusterConfig::default()
    };
    assert!(run_local_cluster(no_nodes).await.is_err());
}
