//! The async host and TCP transport inside madsim's simulated network and clock: two demo
//! nodes on their own simulated machines (10.0.0.1 and 10.0.0.2) talk through a clogged link
//! (messages held, then all delivered in order after unclogging), a kill of one node (the other
//! keeps redialling) and its restart as a new incarnation (the conversation resumes).
//!
//! Run with: `RUSTFLAGS="--cfg madsim" cargo test -p shale-net --test madsim`
//! (use a separate CARGO_TARGET_DIR: the cfg rebuilds everything).
#![cfg(madsim)]

use madsim::net::NetSim;
use madsim::runtime::Handle;
use shale_actors::{Epoch, NodeId};
use shale_net::demo::{stats_snapshot, DemoMsg, PeerStats, PingPong, SharedStats};
use shale_net::{ClusterId, Host, HostConfig, HostHandle, NetConfig};
use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const A: NodeId = NodeId(1);
const B: NodeId = NodeId(2);
const PORT: u16 = 7000;
const PING_INTERVAL: Duration = Duration::from_millis(100);

/// What the test can see of the current incarnation of a node.
type Slot = Arc<Mutex<Option<(SharedStats, HostHandle<DemoMsg>)>>>;

fn addr_of(node: NodeId) -> SocketAddr {
    SocketAddr::new(IpAddr::V4(Ipv4Addr::new(10, 0, 0, node.0 as u8)), PORT)
}

/// One node's life: start the host, publish its stats and handle, run until killed.
async fn run_node(me: NodeId, peer: NodeId, epoch: Epoch, slot: Slot) {
    let mut cfg = HostConfig::new(ClusterId("sim".into()), me, epoch);
    cfg.listen = Some(addr_of(me));
    cfg.peers = BTreeMap::from([(peer, addr_of(peer))]);
    cfg.rng_seed = Some(me.0 ^ (epoch.0 << 32));
    cfg.net = NetConfig {
        reconnect_backoff_min_ms: 50,
        reconnect_backoff_max_ms: 500,
        ..NetConfig::default()
    };
    let actor = PingPong::new(epoch, vec![peer], PING_INTERVAL, Duration::from_secs(3600));
    let stats = actor.stats();
    let (host, handle) = match Host::start(cfg).await {
        Ok(x) => x,
        Err(e) => panic!("{me} did not start: {e}"),
    };
    *slot.lock().unwrap_or_else(|p| p.into_inner()) = Some((stats, handle));
    host.run(actor).await;
}

fn current(slot: &Slot) -> (SharedStats, HostHandle<DemoMsg>) {
    match slot.lock().unwrap_or_else(|p| p.into_inner()).clone() {
        Some(x) => x,
        None => panic!("node has not started"),
    }
}

fn seen(slot: &Slot, peer: NodeId) -> PeerStats {
    stats_snapshot(&current(slot).0)
        .get(&peer)
        .cloned()
        .unwrap_or_default()
}

#[madsim::test]
async fn clog_kill_and_restart() {
    let handle = Handle::current();
    let slot_a = Slot::default();
    let slot_b = Slot::default();
    let b_incarnations = Arc::new(AtomicU64::new(0));

    let sa = slot_a.clone();
    let node_a = handle
        .create_node()
        .name("a")
        .ip(addr_of(A).ip())
        .init(move || run_node(A, B, Epoch(1), sa.clone()))
        .build();
    let sb = slot_b.clone();
    let inc = b_incarnations.clone();
    let node_b = handle
        .create_node()
        .name("b")
        .ip(addr_of(B).ip())
        .init(move || {
            let epoch = Epoch(inc.fetch_add(1, Ordering::SeqCst) + 1);
            run_node(B, A, epoch, sb.clone())
        })
        .build();

    // 1. Both talk.
    madsim::time::sleep(Duration::from_secs(3)).await;
    assert!(
        seen(&slot_a, B).pongs_received >= 10,
        "{:?}",
        seen(&slot_a, B)
    );
    assert!(
        seen(&slot_b, A).pongs_received >= 10,
        "{:?}",
        seen(&slot_b, A)
    );
    assert_eq!(seen(&slot_a, B).pong_epoch_last, Some(Epoch(1)));

    // 2. Clog the link both ways: nothing gets through, but nothing is lost either.
    let net = NetSim::current();
    net.clog_link(node_a.id(), node_b.id());
    net.clog_link(node_b.id(), node_a.id());
    madsim::time::sleep(Duration::from_millis(200)).await; // let in-flight packets land
    let pongs_at_clog = seen(&slot_a, B).pongs_received;
    let pings_at_clog = seen(&slot_b, A).pings_received;
    madsim::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        seen(&slot_a, B).pongs_received,
        pongs_at_clog,
        "a clogged link delivered"
    );
    assert_eq!(
        seen(&slot_b, A).pings_received,
        pings_at_clog,
        "a clogged link delivered"
    );
    let sent_during_clog = seen(&slot_a, B).pings_sent;
    assert!(
        sent_during_clog >= pings_at_clog + 25,
        "A kept pinging into the clog"
    );

    net.unclog_link(node_a.id(), node_b.id());
    net.unclog_link(node_b.id(), node_a.id());
    madsim::time::sleep(Duration::from_secs(10)).await;
    let b_view = seen(&slot_b, A);
    assert!(
        b_view.pings_received >= sent_during_clog,
        "every ping held by the clog arrived: {b_view:?}, sent {sent_during_clog}"
    );
    assert_eq!(
        b_view.ping_seq_max.map(|m| m + 1),
        Some(b_view.pings_received),
        "in order, no gaps, no duplicates"
    );
    assert!(seen(&slot_a, B).pongs_received > pongs_at_clog + 25);
    let dialed_before_kill = current(&slot_a).1.stats().connections_dialed;

    // 3. Kill B: A's pongs stop, A keeps redialling with backoff.
    handle.kill(node_b.id());
    madsim::time::sleep(Duration::from_millis(200)).await;
    let pongs_at_kill = seen(&slot_a, B).pongs_received;
    madsim::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        seen(&slot_a, B).pongs_received,
        pongs_at_kill,
        "a dead node answered"
    );

    // 4. Restart B as a new incarnation: the conversation resumes with epoch 2.
    handle.restart(node_b.id());
    madsim::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(b_incarnations.load(Ordering::SeqCst), 2);
    let a_view = seen(&slot_a, B);
    assert_eq!(a_view.pong_epoch_last, Some(Epoch(2)), "{a_view:?}");
    assert!(a_view.pongs_received >= pongs_at_kill + 10, "{a_view:?}");
    assert!(seen(&slot_b, A).pongs_received >= 10, "the new B hears A");
    let a_stats = current(&slot_a).1.stats();
    assert!(
        a_stats.connections_dialed > dialed_before_kill,
        "A redialled: {a_stats:?}"
    );
    assert_eq!(a_stats.bad_frames, 0);
    assert_eq!(a_stats.handshakes_refused, 0);
}

/// Two nodes talking for a few simulated seconds; what each saw, round-trip times included
/// (they depend on the simulated latencies, so on the seed).
async fn short_conversation() -> Vec<PeerStats> {
    let handle = Handle::current();
    let slots = [Slot::default(), Slot::default()];
    for (me, peer, slot) in [(A, B, &slots[0]), (B, A, &slots[1])] {
        let slot = slot.clone();
        handle
            .create_node()
            .ip(addr_of(me).ip())
            .init(move || run_node(me, peer, Epoch(1), slot.clone()))
            .build();
    }
    madsim::time::sleep(Duration::from_secs(2)).await;
    vec![seen(&slots[0], B), seen(&slots[1], A)]
}

#[test]
fn the_same_seed_replays_the_same_run() {
    let run = |seed| {
        madsim::runtime::Runtime::with_seed_and_config(seed, madsim::Config::default())
            .block_on(short_conversation())
    };
    let first = run(7);
    assert!(first.iter().all(|s| s.pongs_received >= 5), "{first:?}");
    assert_eq!(first, run(7), "same seed, same run");
    assert_ne!(first, run(8), "another seed, other latencies");
}
