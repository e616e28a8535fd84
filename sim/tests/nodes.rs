//! Node-level behaviour: crash (drops timers, jobs and inbound messages, runs the hook),
//! restart through the factory and `on_start`, stop, clock offsets, pauses, timers and their
//! cancellation, and jobs (when the closure runs, durations, failure injection).

mod common;

use common::{fixed_probes, got, ms, probes, send, Msg, Probe};
use shale_actors::{JobError, JobSpec, NodeId, Time, TimerId};
use shale_sim::{JobConfig, NetConfig, NodeStatus, Sim, SimConfig, SimError};
use std::cell::RefCell;
use std::rc::Rc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

const N1: NodeId = NodeId(1);
const N2: NodeId = NodeId(2);

fn exact_jobs() -> SimConfig {
    let cfg = SimConfig::new(3).with_net(NetConfig::fixed(Duration::from_millis(1)));
    cfg.with_jobs(JobConfig {
        duration_jitter: 0.0,
        fail_probability: 0.0,
    })
}

fn job(sim: &mut Sim<Probe>, node: NodeId, est_ms: u64, ran: &Arc<AtomicU32>, value: u64) {
    let ran = ran.clone();
    sim.invoke(node, move |_, ctx| {
        ctx.start_job(
            JobSpec::new("test", Duration::from_millis(est_ms)),
            move || {
                ran.fetch_add(1, Ordering::SeqCst);
                value
            },
        )
    })
    .expect("node is up");
}

fn timer(sim: &mut Sim<Probe>, node: NodeId, after_ms: u64, tag: u32) -> TimerId {
    sim.invoke(node, |_, ctx| {
        ctx.set_timer(Duration::from_millis(after_ms), tag)
    })
    .expect("node is up")
}

#[test]
fn crash_drops_timers_jobs_and_inbound_messages_and_calls_the_hook() {
    let (mut sim, _) = probes(exact_jobs(), 2);
    let hook_calls = Rc::new(RefCell::new(Vec::new()));
    let calls = hook_calls.clone();
    sim.set_crash_hook(N2, move |id, _rng| calls.borrow_mut().push(id))
        .expect("known");
    let ran = Arc::new(AtomicU32::new(0));
    timer(&mut sim, N2, 10, 1);
    job(&mut sim, N2, 10, &ran, 7);
    send(&mut sim, 1, 2, 1);
    // Node 2's own message to node 1 is already on the wire and still arrives.
    send(&mut sim, 2, 1, 2);
    sim.crash(N2).expect("up");

    assert_eq!(hook_calls.borrow().as_slice(), &[N2]);
    assert_eq!(sim.status(N2), Some(NodeStatus::Down));
    assert!(sim.actor(N2).is_none());
    let s = *sim.stats();
    assert_eq!((s.timers_dropped_crash, s.jobs_dropped_crash), (1, 1));
    assert_eq!(s.messages_dropped_node_down, 1);

    send(&mut sim, 1, 2, 3);
    sim.run_for(Duration::from_millis(100));
    assert_eq!(
        ran.load(Ordering::SeqCst),
        0,
        "a dropped job never runs its closure"
    );
    assert_eq!(sim.stats().timers_fired, 0);
    assert_eq!(sim.stats().messages_dropped_node_down, 2);
    assert_eq!(got(&sim, 1), vec![2]);
}

#[test]
fn restart_rebuilds_through_the_factory_and_on_start_with_fresh_ids() {
    // The "disk": what survives a crash. The factory reads it; the actor's memory does not.
    let disk = Rc::new(RefCell::new(vec![1u64]));
    let mut sim: Sim<Probe> = Sim::new(exact_jobs()).expect("valid");
    let d = disk.clone();
    sim.add_node(N1, move |_| Probe {
        boot: d.borrow().len() as u64,
        ..Probe::default()
    })
    .expect("new");
    let first = timer(&mut sim, N1, 50, 1);
    sim.run_for(Duration::from_millis(10));
    disk.borrow_mut().push(2);
    sim.crash(N1).expect("up");
    sim.run_for(Duration::from_millis(10));
    sim.restart(N1).expect("down");

    let probe = sim.actor(N1).expect("restarted");
    assert_eq!(probe.boot, 2, "the factory saw the durable state");
    assert_eq!(
        probe.started_at,
        Some(ms(20)),
        "on_start ran at restart time"
    );
    assert!(probe.fired.is_empty());
    let second = timer(&mut sim, N1, 100, 2);
    assert_eq!(
        first, second,
        "a fresh IdGen restarts ids; the old timer must not fire as it"
    );
    sim.run_for(Duration::from_millis(200));
    let fired: Vec<u32> = sim
        .actor(N1)
        .expect("up")
        .fired
        .iter()
        .map(|f| f.1)
        .collect();
    assert_eq!(fired, vec![2]);
    assert_eq!((sim.stats().crashes, sim.stats().restarts), (1, 1));
}

#[test]
fn lifecycle_errors_name_the_mistake() {
    let mut sim = fixed_probes(2);
    assert_eq!(sim.restart(N1), Err(SimError::NodeUp(N1)));
    assert_eq!(sim.crash(NodeId(9)), Err(SimError::UnknownNode(NodeId(9))));
    assert!(matches!(
        sim.add_node(N1, |_| Probe::default()),
        Err(SimError::DuplicateNode(_))
    ));
    sim.crash(N1).expect("up");
    assert_eq!(sim.crash(N1), Err(SimError::NodeNotUp(N1)));
    assert!(matches!(
        sim.invoke(N1, |_, _| ()),
        Err(SimError::NodeNotUp(_))
    ));
    sim.stop(N2).expect("up");
    assert_eq!(sim.restart(N2), Err(SimError::NodeStopped(N2)));
    assert_eq!(sim.status(N2), Some(NodeStatus::Stopped));
    sim.stop(N1).expect("a down node can be stopped for good");
    let s = sim.stats();
    assert_eq!((s.crashes, s.stops), (2, 2));
}

#[test]
fn scheduled_lifecycle_faults_apply_or_are_counted_as_noops() {
    let (mut sim, boots) = probes(exact_jobs(), 1);
    sim.schedule(ms(10), shale_sim::Fault::Crash(N1))
        .expect("valid");
    sim.schedule(ms(20), shale_sim::Fault::Restart(N1))
        .expect("valid");
    sim.schedule(ms(30), shale_sim::Fault::Restart(N1))
        .expect("valid");
    sim.schedule(ms(40), shale_sim::Fault::Reboot(N1))
        .expect("valid");
    sim.run_for(Duration::from_millis(50));
    assert_eq!(boots.get(), 3);
    assert_eq!(
        sim.stats().faults_noop,
        1,
        "restarting a running node does nothing"
    );
    assert_eq!(sim.actor(N1).expect("up").started_at, Some(ms(40)));
}

#[test]
fn stopped_node_drops_messages_for_good() {
    let mut sim = fixed_probes(2);
    sim.stop(N2).expect("up");
    send(&mut sim, 1, 2, 1);
    sim.run_for(Duration::from_millis(10));
    assert_eq!(sim.stats().messages_dropped_node_down, 1);
}

#[test]
fn clock_offset_shows_in_ctx_now_and_saturates_at_zero() {
    let mut sim = fixed_probes(2);
    sim.run_for(Duration::from_millis(100));
    sim.set_clock_offset(N2, 5_000_000_000).expect("known");
    assert_eq!(sim.local_now(N2), Some(Time(5_100_000_000)));
    assert_eq!(sim.invoke(N2, |_, ctx| ctx.now()), Ok(Time(5_100_000_000)));
    assert_eq!(sim.invoke(N1, |_, ctx| ctx.now()), Ok(ms(100)));
    send(&mut sim, 1, 2, 1);
    sim.run_for(Duration::from_millis(10));
    assert_eq!(sim.actor(N2).expect("up").got[0].2, Time(5_101_000_000));

    sim.set_clock_offset(N1, -1_000_000_000).expect("known");
    assert_eq!(sim.invoke(N1, |_, ctx| ctx.now()), Ok(Time::ZERO));
    // Skew shifts the reading, not the rate: a timer still fires after its span of true time.
    timer(&mut sim, N2, 30, 9);
    sim.run_for(Duration::from_millis(30));
    assert_eq!(sim.actor(N2).expect("up").fired[0].2, Time(5_140_000_000));
    assert!(sim.set_clock_offset(NodeId(7), 1).is_err());
}

#[test]
fn cancelled_timers_never_fire() {
    let mut sim = fixed_probes(1);
    let a = timer(&mut sim, N1, 10, 1);
    let b = timer(&mut sim, N1, 20, 2);
    let c = timer(&mut sim, N1, 30, 3);
    sim.invoke(N1, |_, ctx| ctx.cancel_timer(b)).expect("up");
    // Cancelling twice, or cancelling a fired timer, is harmless and counted once.
    sim.run_for(Duration::from_millis(15));
    sim.invoke(N1, |_, ctx| {
        ctx.cancel_timer(b);
        ctx.cancel_timer(a);
    })
    .expect("up");
    sim.run_for(Duration::from_millis(100));
    let fired: Vec<(TimerId, u32, Time)> = sim.actor(N1).expect("up").fired.clone();
    assert_eq!(fired, vec![(a, 1, ms(10)), (c, 3, ms(30))]);
    let s = sim.stats();
    assert_eq!(
        (s.timers_set, s.timers_fired, s.timers_cancelled),
        (3, 2, 1)
    );
}

#[test]
fn a_timer_superseded_by_cancel_and_reset_fires_once_at_the_new_time() {
    let mut sim = fixed_probes(1);
    let old = timer(&mut sim, N1, 10, 1);
    sim.run_for(Duration::from_millis(5));
    sim.invoke(N1, |_, ctx| ctx.cancel_timer(old)).expect("up");
    timer(&mut sim, N1, 10, 1);
    sim.run_for(Duration::from_millis(100));
    let at: Vec<Time> = sim
        .actor(N1)
        .expect("up")
        .fired
        .iter()
        .map(|f| f.2)
        .collect();
    assert_eq!(at, vec![ms(15)]);
}

#[test]
fn job_closure_runs_at_completion_time() {
    let mut sim = fixed_probes(1);
    let cfg = JobConfig {
        duration_jitter: 0.0,
        fail_probability: 0.0,
    };
    sim.set_jobs(cfg).expect("valid");
    let ran = Arc::new(AtomicU32::new(0));
    job(&mut sim, N1, 20, &ran, 42);
    sim.run_for(Duration::from_millis(19));
    assert_eq!(ran.load(Ordering::SeqCst), 0);
    sim.run_for(Duration::from_millis(1));
    assert_eq!(ran.load(Ordering::SeqCst), 1);
    let jobs = &sim.actor(N1).expect("up").jobs;
    assert_eq!(jobs.len(), 1);
    assert_eq!((jobs[0].1.clone(), jobs[0].2), (Ok(42), ms(20)));
}

#[test]
fn job_durations_scatter_around_the_estimate_within_the_jitter() {
    let mut sim = fixed_probes(1);
    sim.set_jobs(JobConfig {
        duration_jitter: 0.5,
        fail_probability: 0.0,
    })
    .expect("valid");
    let ran = Arc::new(AtomicU32::new(0));
    for i in 0..200 {
        job(&mut sim, N1, 100, &ran, i);
    }
    sim.run_for(Duration::from_secs(1));
    let done: Vec<Time> = sim
        .actor(N1)
        .expect("up")
        .jobs
        .iter()
        .map(|j| j.2)
        .collect();
    assert_eq!(done.len(), 200);
    assert!(done.iter().all(|t| (ms(50)..=ms(150)).contains(t)));
    assert!(done.iter().any(|t| *t < ms(75)) && done.iter().any(|t| *t > ms(125)));
}

#[test]
fn injected_job_failures_skip_the_closure() {
    for (p, expect_failed) in [(1.0, 50), (0.0, 0)] {
        let mut sim = fixed_probes(1);
        sim.set_jobs(JobConfig {
            duration_jitter: 0.0,
            fail_probability: p,
        })
        .expect("valid");
        let ran = Arc::new(AtomicU32::new(0));
        for i in 0..50 {
            job(&mut sim, N1, 5, &ran, i);
        }
        sim.run_for(Duration::from_secs(1));
        let jobs = &sim.actor(N1).expect("up").jobs;
        let failed = jobs
            .iter()
            .filter(|j| j.1 == Err(JobError::Injected))
            .count();
        assert_eq!(failed, expect_failed, "fail probability {p}");
        assert_eq!(ran.load(Ordering::SeqCst), 50 - expect_failed as u32);
        assert_eq!(sim.stats().jobs_failed, expect_failed as u64);
    }
    let mut sim = fixed_probes(1);
    sim.set_jobs(JobConfig {
        duration_jitter: 0.0,
        fail_probability: 0.5,
    })
    .expect("valid");
    let ran = Arc::new(AtomicU32::new(0));
    for i in 0..400 {
        job(&mut sim, N1, 5, &ran, i);
    }
    sim.run_for(Duration::from_secs(1));
    let failed = sim.stats().jobs_failed;
    assert!(
        (140..260).contains(&failed),
        "{failed} of 400 failed at 50%"
    );
}

#[test]
fn paused_node_handles_nothing_until_the_pause_ends_then_everything_in_order() {
    let mut sim = fixed_probes(2);
    timer(&mut sim, N2, 10, 1);
    sim.pause(N2, Duration::from_millis(50)).expect("up");
    send(&mut sim, 1, 2, 1);
    send(&mut sim, 1, 2, 2);
    sim.run_for(Duration::from_millis(49));
    let probe = sim.actor(N2).expect("up");
    assert!(probe.got.is_empty() && probe.fired.is_empty());
    sim.run_for(Duration::from_millis(10));
    let probe = sim.actor(N2).expect("up");
    assert_eq!(probe.payloads(), vec![1, 2]);
    assert!(probe.got.iter().all(|g| g.2 == ms(50)));
    assert_eq!(
        probe.fired.iter().map(|f| f.2).collect::<Vec<_>>(),
        vec![ms(50)]
    );
    assert_eq!(sim.stats().events_deferred_pause, 3);
}

#[test]
fn run_helpers_stop_where_they_say() {
    let mut sim = fixed_probes(2);
    sim.invoke(N2, |p, _| p.echo_below = Some(10)).expect("up");
    sim.invoke(N1, |p, _| p.echo_below = Some(10)).expect("up");
    send(&mut sim, 1, 2, 0);
    let hit = sim.run_while(ms(1000), |s| got(s, 1).len() < 3);
    assert!(hit);
    assert_eq!(got(&sim, 1), vec![1, 3, 5]);
    assert_eq!(sim.now(), ms(6));
    assert!(sim.run_until_quiet(ms(1000)));
    assert_eq!(got(&sim, 2), vec![0, 2, 4, 6, 8, 10]);
    assert_eq!(sim.now(), ms(1000));
    assert!(!sim.step(), "nothing left to do");
    timer(&mut sim, N1, 10_000, 1);
    assert!(
        !sim.run_until_quiet(ms(2000)),
        "a timer is still pending at the deadline"
    );
    assert!(!sim.run_while(ms(3000), |_| true));
    assert_eq!(sim.now(), ms(3000));
    let _ = Msg(0);
}
