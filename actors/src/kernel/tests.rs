use super::*;
use rand::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

/// A tiny actor: echoes pings, counts pongs, sets a timer at start and runs a job on it.
#[derive(Default)]
struct Echo {
    pongs: u32,
    job_results: Vec<u64>,
    fired: Vec<TimerId>,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
enum EchoMsg {
    Ping(u32),
    Pong(u32),
}

impl Actor for Echo {
    type Msg = EchoMsg;
    type Timer = &'static str;
    type JobOutput = u64;

    fn on_start(&mut self, ctx: &mut Ctx<'_, Self>) {
        ctx.set_timer(Duration::from_millis(10), "tick");
    }
    fn on_msg(&mut self, from: NodeId, msg: EchoMsg, ctx: &mut Ctx<'_, Self>) {
        match msg {
            EchoMsg::Ping(n) => ctx.send(from, EchoMsg::Pong(n)),
            EchoMsg::Pong(_) => self.pongs += 1,
        }
    }
    fn on_timer(&mut self, id: TimerId, _timer: &'static str, ctx: &mut Ctx<'_, Self>) {
        self.fired.push(id);
        ctx.start_job(JobSpec::new("add", Duration::from_millis(1)), || 40 + 2);
    }
    fn on_job_done(&mut self, _id: JobId, result: Result<u64, JobError>, _ctx: &mut Ctx<'_, Self>) {
        if let Ok(v) = result {
            self.job_results.push(v);
        }
    }
}

#[test]
fn ctx_allocates_distinct_ids_and_records_effects_in_order() {
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    let mut ids = IdGen::new();
    let mut out: Vec<Effect<Echo>> = Vec::new();
    let mut ctx = Ctx::new(
        NodeId(1),
        Time::from_millis(5),
        &mut rng,
        &mut ids,
        &mut out,
    );
    assert_eq!(ctx.me(), NodeId(1));
    assert_eq!(ctx.now(), Time::from_millis(5));
    let t1 = ctx.set_timer(Duration::from_secs(1), "a");
    let t2 = ctx.set_timer(Duration::from_secs(2), "b");
    assert_ne!(t1, t2);
    ctx.cancel_timer(t1);
    ctx.send(NodeId(2), EchoMsg::Ping(7));
    let j1 = ctx.start_job(JobSpec::new("x", Duration::ZERO), || 1);
    let j2 = ctx.start_job(JobSpec::new("y", Duration::ZERO), || 2);
    assert_ne!(j1, j2);
    assert_eq!(ctx.pending().len(), 6);
    let kinds: Vec<String> = out.iter().map(|e| format!("{e:?}")).collect();
    assert_eq!(
        kinds,
        vec![
            "SetTimer(0, 1s, \"a\")",
            "SetTimer(1, 2s, \"b\")",
            "CancelTimer(0)",
            "Send(n2, Ping(7))",
            "StartJob(0, x)",
            "StartJob(1, y)",
        ]
    );
}

#[test]
fn ids_continue_across_events_of_one_incarnation() {
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    let mut ids = IdGen::new();
    let mut out: Vec<Effect<Echo>> = Vec::new();
    let a = Ctx::new(NodeId(1), Time::ZERO, &mut rng, &mut ids, &mut out)
        .set_timer(Duration::ZERO, "a");
    let b = Ctx::new(NodeId(1), Time::ZERO, &mut rng, &mut ids, &mut out)
        .set_timer(Duration::ZERO, "b");
    assert_eq!((a, b), (TimerId(0), TimerId(1)));
}

#[test]
fn actor_reacts_to_each_kind_of_event() {
    let mut rng = ChaCha8Rng::seed_from_u64(9);
    let mut ids = IdGen::new();
    let mut out: Vec<Effect<Echo>> = Vec::new();
    let mut echo = Echo::default();
    echo.on_start(&mut Ctx::new(
        NodeId(1),
        Time::ZERO,
        &mut rng,
        &mut ids,
        &mut out,
    ));
    assert!(matches!(out.as_slice(), [Effect::SetTimer { .. }]));
    out.clear();
    echo.on_msg(
        NodeId(3),
        EchoMsg::Ping(4),
        &mut Ctx::new(NodeId(1), Time::ZERO, &mut rng, &mut ids, &mut out),
    );
    assert!(matches!(
        out.as_slice(),
        [Effect::Send {
            to: NodeId(3),
            msg: EchoMsg::Pong(4)
        }]
    ));
    out.clear();
    echo.on_timer(
        TimerId(0),
        "tick",
        &mut Ctx::new(NodeId(1), Time::ZERO, &mut rng, &mut ids, &mut out),
    );
    let Some(Effect::StartJob { id, work, .. }) = out.pop() else {
        panic!("expected a job");
    };
    let value = work();
    echo.on_job_done(
        id,
        Ok(value),
        &mut Ctx::new(NodeId(1), Time::ZERO, &mut rng, &mut ids, &mut out),
    );
    echo.on_job_done(
        id,
        Err(JobError::Injected),
        &mut Ctx::new(NodeId(1), Time::ZERO, &mut rng, &mut ids, &mut out),
    );
    assert_eq!(echo.job_results, vec![42]);
    assert_eq!(echo.fired, vec![TimerId(0)]);
}

#[test]
fn ctx_rng_is_the_hosts_seeded_generator() {
    let draw = |seed| {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut ids = IdGen::new();
        let mut out: Vec<Effect<Echo>> = Vec::new();
        let mut ctx = Ctx::new(NodeId(1), Time::ZERO, &mut rng, &mut ids, &mut out);
        ctx.rng().next_u64()
    };
    assert_eq!(draw(3), draw(3));
    assert_ne!(draw(3), draw(4));
}

#[test]
fn time_arithmetic_saturates() {
    let t = Time::from_millis(1500);
    assert_eq!(t.as_millis(), 1500);
    assert_eq!(t.plus(Duration::from_millis(500)), Time::from_millis(2000));
    assert_eq!(Time(u64::MAX).plus(Duration::from_secs(1)), Time(u64::MAX));
    assert_eq!(Time::ZERO.since(t), Duration::ZERO);
    assert_eq!(t.since(Time::ZERO), Duration::from_millis(1500));
    assert_eq!(format!("{t}"), "1.500000s");
}
