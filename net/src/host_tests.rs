//! The host loop without a network: timers (order, cancel), jobs (output, panic, limit, cheap
//! jobs inline), injected messages, self-sends, and both ways of stopping. Runs under tokio
//! and madsim.

use super::*;
use serde::{Deserialize, Serialize};
use std::sync::Mutex;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
enum ProbeMsg {
    Hello(u64),
    Echo(u64),
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Event {
    Started(NodeId),
    Timer(&'static str),
    Job(Result<u64, String>),
    Msg(NodeId, ProbeMsg),
}

type Log = Arc<Mutex<Vec<Event>>>;

/// Records everything that happens to it; on start sets three timers (cancelling one) and
/// starts a good job and a panicking one.
struct Probe {
    log: Log,
}

impl Probe {
    fn record(&self, e: Event) {
        self.log.lock().unwrap_or_else(|p| p.into_inner()).push(e);
    }
}

impl Actor for Probe {
    type Msg = ProbeMsg;
    type Timer = &'static str;
    type JobOutput = u64;

    fn on_start(&mut self, ctx: &mut Ctx<'_, Self>) {
        self.record(Event::Started(ctx.me()));
        ctx.set_timer(Duration::from_millis(60), "late");
        ctx.set_timer(Duration::from_millis(20), "early");
        let doomed = ctx.set_timer(Duration::from_millis(40), "cancelled");
        ctx.cancel_timer(doomed);
        ctx.start_job(JobSpec::new("answer", Duration::from_millis(1)), || 42);
        ctx.start_job(JobSpec::new("boom", Duration::from_millis(1)), || {
            panic!("job exploded on purpose")
        });
    }

    fn on_msg(&mut self, from: NodeId, msg: ProbeMsg, ctx: &mut Ctx<'_, Self>) {
        if let ProbeMsg::Hello(n) = msg {
            // To ourselves: must come back through the inbox as from == me.
            ctx.send(ctx.me(), ProbeMsg::Echo(n + 1));
        }
        self.record(Event::Msg(from, msg));
    }

    fn on_timer(&mut self, _id: TimerId, timer: &'static str, _ctx: &mut Ctx<'_, Self>) {
        self.record(Event::Timer(timer));
    }

    fn on_job_done(&mut self, _id: JobId, result: Result<u64, JobError>, _ctx: &mut Ctx<'_, Self>) {
        self.record(Event::Job(result.map_err(|e| e.to_string())));
    }
}

fn events(log: &Log) -> Vec<Event> {
    log.lock().unwrap_or_else(|p| p.into_inner()).clone()
}

async fn wait_for_events(log: &Log, want: impl Fn(&[Event]) -> bool) -> Vec<Event> {
    for _ in 0..300 {
        let seen = events(log);
        if want(&seen) {
            return seen;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("condition not reached; events so far: {:?}", events(log));
}

fn config() -> HostConfig {
    let mut cfg = HostConfig::new(ClusterId("test".into()), NodeId(7), Epoch(1));
    cfg.rng_seed = Some(1);
    cfg
}

#[tokio::test]
async fn timers_jobs_and_messages_reach_the_actor() {
    let log = Log::default();
    let (handle, task) = match spawn_host(Probe { log: log.clone() }, config()).await {
        Ok(x) => x,
        Err(e) => panic!("host did not start: {e}"),
    };
    assert_eq!(handle.local_addr(), None, "no listen address was asked for");
    assert_eq!(handle.inject(NodeId(99), ProbeMsg::Hello(1)), Ok(()));
    let seen = wait_for_events(&log, |e| {
        e.iter().filter(|e| matches!(e, Event::Timer(_))).count() == 2
            && e.iter().filter(|e| matches!(e, Event::Job(_))).count() == 2
            && e.contains(&Event::Msg(NodeId(7), ProbeMsg::Echo(2)))
    })
    .await;
    assert_eq!(seen.first(), Some(&Event::Started(NodeId(7))));
    let timers: Vec<_> = seen
        .iter()
        .filter(|e| matches!(e, Event::Timer(_)))
        .collect();
    assert_eq!(
        timers,
        [&Event::Timer("early"), &Event::Timer("late")],
        "deadline order, cancelled one never fires"
    );
    assert!(seen.contains(&Event::Job(Ok(42))));
    assert!(
        seen.iter().any(
            |e| matches!(e, Event::Job(Err(m)) if m.contains("panicked") && m.contains("exploded"))
        ),
        "a panicking job reports Aborted: {seen:?}"
    );
    assert!(
        seen.contains(&Event::Msg(NodeId(99), ProbeMsg::Hello(1))),
        "injected message carries its sender"
    );

    // Past the cancelled timer's deadline, it still has not fired.
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(!events(&log).contains(&Event::Timer("cancelled")));

    handle.stop();
    let actor = match task.await {
        Ok(actor) => actor,
        Err(e) => panic!("host task failed: {e}"),
    };
    assert_eq!(events(&actor.log), events(&log));
    assert_eq!(
        handle.inject(NodeId(1), ProbeMsg::Hello(5)),
        Err(InjectError::Stopped)
    );
}

#[tokio::test]
async fn jobs_over_the_limit_fail_at_once() {
    let log = Log::default();
    let mut cfg = config();
    cfg.jobs_in_flight_max = 1;
    let (handle, task) = match spawn_host(Probe { log: log.clone() }, cfg).await {
        Ok(x) => x,
        Err(e) => panic!("host did not start: {e}"),
    };
    let seen = wait_for_events(&log, |e| {
        e.iter().filter(|e| matches!(e, Event::Job(_))).count() == 2
    })
    .await;
    assert!(
        seen.contains(&Event::Job(Ok(42))),
        "the first job runs: {seen:?}"
    );
    assert!(
        seen.iter()
            .any(|e| matches!(e, Event::Job(Err(m)) if m.contains("jobs_in_flight_max"))),
        "the second is refused, not run: {seen:?}"
    );
    handle.stop();
    assert!(task.await.is_ok());
}

#[tokio::test]
async fn dropping_every_handle_stops_the_host() {
    let log = Log::default();
    let (handle, task) = match spawn_host(Probe { log: log.clone() }, config()).await {
        Ok(x) => x,
        Err(e) => panic!("host did not start: {e}"),
    };
    let second = handle.clone();
    drop(handle);
    assert_eq!(
        second.inject(NodeId(3), ProbeMsg::Hello(0)),
        Ok(()),
        "one handle still holds it up"
    );
    wait_for_events(&log, |e| {
        e.contains(&Event::Msg(NodeId(3), ProbeMsg::Hello(0)))
    })
    .await;
    drop(second);
    match tokio::time::timeout(Duration::from_secs(2), task).await {
        Ok(Ok(_actor)) => {}
        Ok(Err(e)) => panic!("host task failed: {e}"),
        Err(_) => panic!("host kept running without handles"),
    }
}

#[tokio::test]
async fn invocations_run_on_the_actor_with_a_real_context() {
    let log = Log::default();
    let (handle, invoker, task) =
        match spawn_host_with_invoker(Probe { log: log.clone() }, config()).await {
            Ok(x) => x,
            Err(e) => panic!("host did not start: {e}"),
        };
    // The closure's effects are carried out: a self-send comes back through the inbox and a
    // timer fires.
    let me = invoker
        .call(|_probe: &mut Probe, ctx: &mut Ctx<'_, Probe>| {
            ctx.send(ctx.me(), ProbeMsg::Hello(10));
            ctx.set_timer(Duration::from_millis(5), "invoked");
            ctx.me()
        })
        .await;
    assert_eq!(me, Ok(NodeId(7)));
    let seen = wait_for_events(&log, |e| {
        e.contains(&Event::Msg(NodeId(7), ProbeMsg::Echo(11)))
            && e.contains(&Event::Timer("invoked"))
    })
    .await;
    assert!(seen.contains(&Event::Msg(NodeId(7), ProbeMsg::Hello(10))));
    // The closure sees the actor's state.
    let count = invoker
        .call(|probe: &mut Probe, _ctx: &mut Ctx<'_, Probe>| events(&probe.log).len())
        .await;
    assert!(matches!(count, Ok(n) if n >= seen.len()), "{count:?}");
    handle.stop();
    assert!(task.await.is_ok());
    assert_eq!(
        invoker.invoke(|_: &mut Probe, _: &mut Ctx<'_, Probe>| {}),
        Err(InjectError::Stopped)
    );
    assert_eq!(
        invoker
            .call(|_: &mut Probe, _: &mut Ctx<'_, Probe>| 1)
            .await,
        Err(InjectError::Stopped)
    );
}

#[tokio::test]
async fn invocations_over_the_limit_are_refused() {
    let mut cfg = config();
    cfg.invocations_len_max = 2;
    // Not running yet, so nothing drains the queue.
    let (host, _handle) = match Host::<Probe>::start(cfg).await {
        Ok(x) => x,
        Err(e) => panic!("host did not start: {e}"),
    };
    let invoker = host.invoker();
    let noop = |_: &mut Probe, _: &mut Ctx<'_, Probe>| {};
    assert_eq!(invoker.invoke(noop), Ok(()));
    assert_eq!(invoker.invoke(noop), Ok(()));
    assert_eq!(invoker.invoke(noop), Err(InjectError::Full));
}

#[test]
fn wall_clock_is_after_2020() {
    assert!(wall_clock() > Time::from_millis(1_577_836_800_000));
}

/// A value that differs between threads, as a job output.
fn thread_tag() -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    std::thread::current().id().hash(&mut h);
    h.finish()
}

/// Start a cheap job reporting its thread and a cheap job that panics; returns the loop's
/// thread tag and the events once all four jobs (two from `on_start`) have reported.
async fn run_cheap_jobs(inline: bool) -> (u64, Vec<Event>) {
    let log = Log::default();
    let mut cfg = config();
    cfg.inline_cheap_jobs = inline;
    let (handle, invoker, task) =
        match spawn_host_with_invoker(Probe { log: log.clone() }, cfg).await {
            Ok(x) => x,
            Err(e) => panic!("host did not start: {e}"),
        };
    let cheap = JobSpec::new("cheap", Duration::from_micros(5)).cheap();
    let host_thread = invoker
        .call(move |_a: &mut Probe, ctx| {
            ctx.start_job(cheap, thread_tag);
            ctx.start_job(cheap, || panic!("cheap job exploded on purpose"));
            thread_tag()
        })
        .await;
    let Ok(host_thread) = host_thread else {
        panic!("invocation failed: {host_thread:?}");
    };
    let seen = wait_for_events(&log, |e| {
        e.iter().filter(|e| matches!(e, Event::Job(_))).count() == 4
    })
    .await;
    handle.stop();
    assert!(task.await.is_ok());
    (host_thread, seen)
}

#[tokio::test]
async fn cheap_jobs_run_inline_and_still_report_as_jobs() {
    let (host_thread, seen) = run_cheap_jobs(true).await;
    assert!(
        seen.contains(&Event::Job(Ok(host_thread))),
        "ran on the loop's own thread: {seen:?}"
    );
    assert!(
        seen.iter()
            .any(|e| matches!(e, Event::Job(Err(m)) if m.contains("cheap job exploded"))),
        "an inline panic is Aborted, not fatal to the loop: {seen:?}"
    );
}

/// With inlining off a cheap job goes to the blocking pool like any other (madsim has no
/// pool: its jobs are tasks on the node's own thread either way).
#[cfg(not(madsim))]
#[tokio::test]
async fn cheap_jobs_go_to_the_pool_when_inlining_is_off() {
    let (host_thread, seen) = run_cheap_jobs(false).await;
    let ok: Vec<_> = seen
        .iter()
        .filter(|e| matches!(e, Event::Job(Ok(v)) if *v != 42))
        .collect();
    assert_eq!(ok.len(), 1, "{seen:?}");
    assert_ne!(ok[0], &Event::Job(Ok(host_thread)), "ran off the loop");
}
