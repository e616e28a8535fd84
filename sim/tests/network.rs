//! The simulated network's faults, one test each: loss, duplication, reordering (and FIFO when
//! it is off), symmetric and one-way partitions, in-flight cuts, clogs of nodes and directed
//! links, heal, scheduled changes, and the bound on held messages.

mod common;

use common::{fixed_probes, got, ms, probes, send};
use shale_actors::NodeId;
use shale_sim::{Fault, NetConfig, SimConfig};
use std::time::Duration;

fn net(f: impl FnOnce(&mut NetConfig)) -> SimConfig {
    let mut net = NetConfig::fixed(Duration::from_millis(1));
    f(&mut net);
    SimConfig::new(42).with_net(net)
}

#[test]
fn loss_drops_about_the_configured_fraction_and_counts_it() {
    let (mut sim, _) = probes(net(|n| n.loss_probability = 0.3), 2);
    for i in 0..2000 {
        send(&mut sim, 1, 2, i);
    }
    sim.run_for(Duration::from_secs(1));
    let delivered = got(&sim, 2).len() as u64;
    let s = sim.stats();
    assert_eq!(delivered + s.messages_dropped_loss, 2000);
    assert_eq!(s.messages_delivered, delivered);
    assert!(
        (1200..1600).contains(&delivered),
        "delivered {delivered} of 2000 at 30% loss"
    );
}

#[test]
fn total_loss_delivers_nothing_and_no_loss_delivers_everything() {
    for (p, expect) in [(1.0, 0), (0.0, 100)] {
        let (mut sim, _) = probes(net(|n| n.loss_probability = p), 2);
        for i in 0..100 {
            send(&mut sim, 1, 2, i);
        }
        sim.run_for(Duration::from_secs(1));
        assert_eq!(got(&sim, 2).len(), expect, "loss probability {p}");
    }
}

#[test]
fn duplication_delivers_extra_copies_and_never_more_than_two() {
    let (mut sim, _) = probes(net(|n| n.duplicate_probability = 0.5), 2);
    for i in 0..1000 {
        send(&mut sim, 1, 2, i);
    }
    sim.run_for(Duration::from_secs(1));
    let seen = got(&sim, 2);
    let dups = sim.stats().messages_duplicated;
    assert_eq!(seen.len() as u64, 1000 + dups);
    assert!((400..600).contains(&dups), "{dups} duplicates at 50%");
    let mut counts = vec![0u32; 1000];
    for n in seen {
        counts[n as usize] += 1;
    }
    assert!(counts.iter().all(|&c| c == 1 || c == 2));
}

fn arrival_order(reorder: bool) -> Vec<u64> {
    let cfg = net(|n| {
        n.latency_min = Duration::from_millis(1);
        n.latency_max = Duration::from_millis(50);
        n.reorder = reorder;
    });
    let (mut sim, _) = probes(cfg, 2);
    for i in 0..200 {
        send(&mut sim, 1, 2, i);
        sim.run_for(Duration::from_micros(500));
    }
    sim.run_for(Duration::from_secs(1));
    got(&sim, 2)
}

#[test]
fn random_latency_reorders_unless_links_are_fifo() {
    let reordered = arrival_order(true);
    assert_eq!(reordered.len(), 200);
    assert!(
        reordered.windows(2).any(|w| w[0] > w[1]),
        "expected some reordering"
    );
    let fifo = arrival_order(false);
    assert_eq!(fifo, (0..200).collect::<Vec<_>>());
}

#[test]
fn latency_stays_within_the_configured_bounds() {
    let cfg = net(|n| {
        n.latency_min = Duration::from_millis(3);
        n.latency_max = Duration::from_millis(7);
        // FIFO would push later copies of a burst towards the slowest earlier one.
        n.reorder = true;
    });
    let (mut sim, _) = probes(cfg, 2);
    for i in 0..300 {
        send(&mut sim, 1, 2, i);
    }
    sim.run_for(Duration::from_secs(1));
    let probe = sim.actor(NodeId(2)).expect("up");
    assert_eq!(probe.got.len(), 300);
    assert!(probe
        .got
        .iter()
        .all(|(_, _, at)| (ms(3)..=ms(7)).contains(at)));
    // Uniform, not constant: both halves of the range are used.
    assert!(probe.got.iter().any(|(_, _, at)| *at < ms(5)));
    assert!(probe.got.iter().any(|(_, _, at)| *at > ms(5)));
}

#[test]
fn symmetric_partition_cuts_both_ways_spares_others_and_heals() {
    let mut sim = fixed_probes(3);
    sim.partition(&[NodeId(1)], &[NodeId(2)]);
    assert_eq!(sim.partitioned_links(), 2);
    send(&mut sim, 1, 2, 10);
    send(&mut sim, 2, 1, 20);
    send(&mut sim, 3, 1, 30);
    send(&mut sim, 3, 2, 31);
    sim.run_for(Duration::from_millis(10));
    assert_eq!(got(&sim, 1), vec![30]);
    assert_eq!(got(&sim, 2), vec![31]);
    assert_eq!(sim.stats().messages_dropped_partition, 2);

    sim.heal();
    assert_eq!(sim.partitioned_links(), 0);
    send(&mut sim, 1, 2, 11);
    send(&mut sim, 2, 1, 21);
    sim.run_for(Duration::from_millis(10));
    assert_eq!(got(&sim, 1), vec![30, 21]);
    assert_eq!(got(&sim, 2), vec![31, 11]);
}

#[test]
fn one_way_partition_delivers_one_direction_only() {
    let mut sim = fixed_probes(2);
    sim.partition_one_way(&[NodeId(1)], &[NodeId(2)]);
    send(&mut sim, 1, 2, 1);
    send(&mut sim, 2, 1, 2);
    sim.run_for(Duration::from_millis(10));
    assert_eq!(got(&sim, 2), Vec::<u64>::new());
    assert_eq!(got(&sim, 1), vec![2]);
}

#[test]
fn a_partition_cuts_messages_already_in_flight() {
    let mut sim = fixed_probes(2);
    send(&mut sim, 1, 2, 1);
    sim.run_for(Duration::from_micros(500));
    sim.partition(&[NodeId(1)], &[NodeId(2)]);
    sim.run_for(Duration::from_millis(10));
    assert!(got(&sim, 2).is_empty());
    assert_eq!(sim.stats().messages_dropped_partition, 1);
}

#[test]
fn clogged_node_holds_messages_both_ways_until_unclogged() {
    let mut sim = fixed_probes(3);
    sim.clog(NodeId(2));
    send(&mut sim, 1, 2, 1);
    send(&mut sim, 1, 2, 2);
    send(&mut sim, 2, 1, 3);
    send(&mut sim, 3, 1, 4);
    sim.run_for(Duration::from_millis(100));
    assert!(got(&sim, 2).is_empty());
    assert_eq!(got(&sim, 1), vec![4]);
    assert_eq!(sim.held_messages(), 3);
    assert_eq!(sim.stats().messages_held, 3);

    sim.unclog(NodeId(2));
    assert_eq!(sim.held_messages(), 0);
    sim.run_for(Duration::from_millis(10));
    // Held, not lost: delivered after the unclog, in the order they were held.
    assert_eq!(got(&sim, 2), vec![1, 2]);
    assert_eq!(got(&sim, 1), vec![4, 3]);
    assert_eq!(sim.stats().messages_released, 3);
    let arrival = sim.actor(NodeId(2)).expect("up").got[0].2;
    assert!(
        arrival >= ms(101),
        "delivered after the unclog at 100 ms, got {arrival}"
    );
}

#[test]
fn clogged_link_is_directed() {
    let mut sim = fixed_probes(2);
    sim.clog_link(NodeId(1), NodeId(2));
    send(&mut sim, 1, 2, 1);
    send(&mut sim, 2, 1, 2);
    sim.run_for(Duration::from_millis(10));
    assert!(got(&sim, 2).is_empty());
    assert_eq!(got(&sim, 1), vec![2]);
    sim.unclog_link(NodeId(1), NodeId(2));
    sim.run_for(Duration::from_millis(10));
    assert_eq!(got(&sim, 2), vec![1]);
}

#[test]
fn unclog_all_releases_only_what_is_no_longer_clogged() {
    let mut sim = fixed_probes(3);
    sim.clog(NodeId(2));
    sim.clog_link(NodeId(1), NodeId(3));
    send(&mut sim, 1, 2, 1);
    send(&mut sim, 1, 3, 2);
    sim.run_for(Duration::from_millis(10));
    sim.unclog(NodeId(2));
    assert_eq!(sim.held_messages(), 1, "the link clog still holds 1 -> 3");
    sim.heal_all();
    sim.run_for(Duration::from_millis(10));
    assert_eq!(got(&sim, 2), vec![1]);
    assert_eq!(got(&sim, 3), vec![2]);
}

#[test]
fn held_messages_are_bounded() {
    let mut cfg = net(|_| {});
    cfg.held_messages_max = 5;
    let (mut sim, _) = probes(cfg, 2);
    sim.clog(NodeId(2));
    for i in 0..8 {
        send(&mut sim, 1, 2, i);
    }
    sim.run_for(Duration::from_millis(10));
    assert_eq!(sim.held_messages(), 5);
    assert_eq!(sim.stats().messages_dropped_held_overflow, 3);
    sim.unclog_all();
    sim.run_for(Duration::from_millis(10));
    assert_eq!(got(&sim, 2), vec![0, 1, 2, 3, 4]);
}

#[test]
fn scheduled_partition_and_heal_apply_at_their_times() {
    let mut sim = fixed_probes(2);
    let fault = Fault::Partition {
        a: vec![NodeId(1)],
        b: vec![NodeId(2)],
    };
    sim.schedule(ms(10), fault).expect("valid");
    sim.schedule(ms(20), Fault::Heal).expect("valid");
    for (at, payload) in [(5, 1), (15, 2), (25, 3)] {
        sim.schedule_call(ms(at), move |sim| common::send(sim, 1, 2, payload));
    }
    sim.run_for(Duration::from_millis(50));
    assert_eq!(got(&sim, 2), vec![1, 3]);
    assert_eq!(sim.stats().faults_applied, 2);
}

#[test]
fn network_model_changes_at_runtime() {
    let mut sim = fixed_probes(2);
    send(&mut sim, 1, 2, 1);
    sim.run_for(Duration::from_millis(10));
    let lossy = NetConfig {
        loss_probability: 1.0,
        ..sim.net_config().clone()
    };
    sim.set_net(lossy).expect("valid");
    send(&mut sim, 1, 2, 2);
    sim.run_for(Duration::from_millis(10));
    let bad = NetConfig {
        duplicate_probability: 2.0,
        ..NetConfig::default()
    };
    assert!(sim.set_net(bad.clone()).is_err());
    assert!(sim.schedule(ms(100), Fault::SetNet(bad)).is_err());
    assert_eq!(got(&sim, 2), vec![1]);
}

#[test]
fn messages_to_unknown_nodes_are_counted_and_self_sends_are_loopback() {
    let mut sim = fixed_probes(1);
    sim.partition(&[NodeId(1)], &[NodeId(1)]);
    sim.clog(NodeId(1));
    send(&mut sim, 1, 9, 1);
    send(&mut sim, 1, 1, 2);
    sim.step();
    assert_eq!(sim.stats().messages_dropped_unknown_node, 1);
    let probe = sim.actor(NodeId(1)).expect("up");
    assert_eq!(probe.got, vec![(NodeId(1), 2, ms(0))]);
}

#[test]
fn external_senders_need_not_be_nodes() {
    let mut sim = fixed_probes(1);
    sim.send_external(NodeId(100), NodeId(1), common::Msg(5));
    sim.run_for(Duration::from_millis(5));
    assert_eq!(
        sim.actor(NodeId(1)).expect("up").got,
        vec![(NodeId(100), 5, ms(1))]
    );
}
