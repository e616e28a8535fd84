//! A small replicated counter run on the executor, and the checker that judges a run from the
//! outside.
//!
//! Clients send `Incr{id}` to a primary and retry until acknowledged. The primary appends the
//! id to its durable log, syncs it with a job (group commit), replicates it to a backup (which
//! does the same with its own log), and acks only once both copies are synced. Increments are
//! idempotent by id. A crash hook truncates each log to its synced prefix, as a disk that loses
//! unsynced writes. The checker then requires: no id twice in either log (no double count),
//! every acknowledged id in both logs (no lost ack), nothing in a log that no client sent, and,
//! after the faults are healed, every increment acknowledged (liveness).
//!
//! `Mode` can break the primary on purpose, so a test can show the checker catches bugs.
#![allow(dead_code)]

use rand::Rng;
use serde::{Deserialize, Serialize};
use shale_actors::{Actor, Ctx, JobError, JobId, JobSpec, NodeId, Time, TimerId};
use shale_sim::{Fault, JobConfig, NetConfig, Sim, SimConfig, Stats};
use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::rc::Rc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub const PRIMARY: NodeId = NodeId(1);
pub const BACKUP: NodeId = NodeId(2);
pub const CLIENTS: [NodeId; 3] = [NodeId(10), NodeId(11), NodeId(12)];
pub const ALL: [NodeId; 5] = [PRIMARY, BACKUP, CLIENTS[0], CLIENTS[1], CLIENTS[2]];
const INCRS_PER_CLIENT: u64 = 16;
const CLIENT_WINDOW: usize = 2;
/// A client waits this long (uniformly, up to the max) between an ack and its next increment,
/// so the workload spans the whole fault window instead of finishing before the first fault.
const CLIENT_THINK_MS_MAX: u64 = 40;
const CLIENT_RETRY: Duration = Duration::from_millis(25);
const REPLICATE_RETRY: Duration = Duration::from_millis(30);
const SYNC_ESTIMATE: Duration = Duration::from_millis(2);
/// Faults are scheduled before this; then everything heals.
pub const FAULTS_END_MS: u64 = 400;
const LIVENESS_DEADLINE_MS: u64 = FAULTS_END_MS + 5_000;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Correct,
    /// Bug: ack as soon as the id is appended, before it is synced or replicated.
    AckOnAppend,
    /// Bug: append every `Incr`, even an id already in the log.
    NoDedup,
}

/// A log on a simulated disk: `entries[..synced]` survives a crash, the rest does not.
#[derive(Default, Debug)]
pub struct DurableLog {
    pub entries: Vec<u64>,
    pub synced: usize,
}

pub type SharedLog = Arc<Mutex<DurableLog>>;

fn lock(log: &SharedLog) -> std::sync::MutexGuard<'_, DurableLog> {
    log.lock()
        .expect("the log is only used on the executor's thread; no poisoning")
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum Msg {
    Incr { id: u64 },
    Ack { id: u64 },
    Replicate { id: u64 },
    Replicated { id: u64 },
}

#[derive(Clone, Debug)]
pub enum Tick {
    NextIncr,
    RetryClient { id: u64 },
    Replicate,
}

/// One node's log replica: the in-memory index over a durable log plus group commit.
struct Replica {
    log: SharedLog,
    /// Every id in the log (synced or not) and its position.
    index: BTreeMap<u64, usize>,
    syncing: bool,
}

impl Replica {
    /// Rebuilds the index from what the disk kept.
    fn open(log: SharedLog) -> Self {
        let index = lock(&log)
            .entries
            .iter()
            .enumerate()
            .map(|(i, id)| (*id, i))
            .collect();
        Self {
            log,
            index,
            syncing: false,
        }
    }

    fn append(&mut self, id: u64) {
        let mut log = lock(&self.log);
        self.index.insert(id, log.entries.len());
        log.entries.push(id);
    }

    fn is_synced(&self, id: u64) -> bool {
        self.index
            .get(&id)
            .is_some_and(|i| *i < lock(&self.log).synced)
    }

    /// Starts a sync job covering everything appended so far, unless one is running.
    fn maybe_sync<A: Actor<JobOutput = usize>>(&mut self, ctx: &mut Ctx<'_, A>) {
        let target = lock(&self.log).entries.len();
        if self.syncing || target == lock(&self.log).synced {
            return;
        }
        self.syncing = true;
        let log = self.log.clone();
        ctx.start_job(JobSpec::new("log-sync", SYNC_ESTIMATE), move || {
            // Runs at completion: the data is durable exactly when the actor hears so.
            let mut log = log.lock().expect("single-threaded; no poisoning");
            log.synced = log.synced.max(target);
            target
        });
    }

    /// Ids that became durable with this sync.
    fn synced_ids_below(&self, target: usize) -> Vec<u64> {
        lock(&self.log).entries[..target].to_vec()
    }
}

pub struct Primary {
    mode: Mode,
    replica: Replica,
    /// Ids not yet acknowledged: (clients waiting, backup has it durably).
    pending: BTreeMap<u64, (BTreeSet<NodeId>, bool)>,
}

pub struct Backup {
    replica: Replica,
    /// Ids the primary asked for that are not synced here yet.
    asked: BTreeSet<u64>,
}

pub struct Client {
    todo: Vec<u64>,
    in_flight: BTreeMap<u64, TimerId>,
    /// The outside observer's record of acknowledged ids (survives anything).
    acked: Rc<RefCell<BTreeSet<u64>>>,
}

pub enum Node {
    Primary(Primary),
    Backup(Backup),
    Client(Client),
}

impl Primary {
    fn committed(&self, id: u64) -> bool {
        self.replica.index.contains_key(&id) && !self.pending.contains_key(&id)
    }

    fn on_incr(&mut self, from: NodeId, id: u64, ctx: &mut Ctx<'_, Node>) {
        let known = self.replica.index.contains_key(&id);
        if self.committed(id) && self.mode != Mode::NoDedup {
            ctx.send(from, Msg::Ack { id });
            return;
        }
        if !known || self.mode == Mode::NoDedup {
            self.replica.append(id);
            ctx.send(BACKUP, Msg::Replicate { id });
            self.replica.maybe_sync(ctx);
        }
        if self.mode == Mode::AckOnAppend {
            ctx.send(from, Msg::Ack { id });
            return;
        }
        self.pending
            .entry(id)
            .or_insert_with(|| (BTreeSet::new(), false))
            .0
            .insert(from);
    }

    /// Acks every pending id that is durable here and at the backup.
    fn ack_ready(&mut self, ctx: &mut Ctx<'_, Node>) {
        let ready: Vec<u64> = self
            .pending
            .iter()
            .filter(|(id, (_, backed))| *backed && self.replica.is_synced(**id))
            .map(|(id, _)| *id)
            .collect();
        for id in ready {
            let (clients, _) = self.pending.remove(&id).expect("listed above");
            for c in clients {
                ctx.send(c, Msg::Ack { id });
            }
        }
    }
}

impl Actor for Node {
    type Msg = Msg;
    type Timer = Tick;
    type JobOutput = usize;

    fn on_start(&mut self, ctx: &mut Ctx<'_, Self>) {
        match self {
            Node::Primary(p) => {
                // After a restart nothing is known about the backup: re-replicate everything.
                p.pending = p
                    .replica
                    .index
                    .keys()
                    .map(|id| (*id, (BTreeSet::new(), false)))
                    .collect();
                for id in p.pending.keys() {
                    ctx.send(BACKUP, Msg::Replicate { id: *id });
                }
                ctx.set_timer(REPLICATE_RETRY, Tick::Replicate);
            }
            Node::Backup(_) => {}
            Node::Client(_) => {
                for _ in 0..CLIENT_WINDOW {
                    think(ctx);
                }
            }
        }
    }

    fn on_msg(&mut self, from: NodeId, msg: Msg, ctx: &mut Ctx<'_, Self>) {
        match (self, msg) {
            (Node::Primary(p), Msg::Incr { id }) => p.on_incr(from, id, ctx),
            (Node::Primary(p), Msg::Replicated { id }) => {
                if let Some(entry) = p.pending.get_mut(&id) {
                    entry.1 = true;
                }
                p.ack_ready(ctx);
            }
            (Node::Backup(b), Msg::Replicate { id }) => {
                if b.replica.is_synced(id) {
                    ctx.send(from, Msg::Replicated { id });
                } else {
                    if !b.replica.index.contains_key(&id) {
                        b.replica.append(id);
                    }
                    b.asked.insert(id);
                    b.replica.maybe_sync(ctx);
                }
            }
            (Node::Client(c), Msg::Ack { id }) => {
                if let Some(timer) = c.in_flight.remove(&id) {
                    ctx.cancel_timer(timer);
                    c.acked.borrow_mut().insert(id);
                    think(ctx);
                }
            }
            // Anything else is a stray (e.g. a duplicate meant for another role): ignore.
            _ => {}
        }
    }

    fn on_timer(&mut self, _: TimerId, tick: Tick, ctx: &mut Ctx<'_, Self>) {
        match (self, tick) {
            (Node::Client(c), Tick::NextIncr) => c.send_next(ctx),
            (Node::Client(c), Tick::RetryClient { id }) if c.in_flight.contains_key(&id) => {
                ctx.send(PRIMARY, Msg::Incr { id });
                let t = ctx.set_timer(CLIENT_RETRY, Tick::RetryClient { id });
                c.in_flight.insert(id, t);
            }
            (Node::Primary(p), Tick::Replicate) => {
                for (id, (_, backed)) in &p.pending {
                    if !backed {
                        ctx.send(BACKUP, Msg::Replicate { id: *id });
                    }
                }
                ctx.set_timer(REPLICATE_RETRY, Tick::Replicate);
            }
            _ => {}
        }
    }

    fn on_job_done(&mut self, _: JobId, result: Result<usize, JobError>, ctx: &mut Ctx<'_, Self>) {
        match self {
            Node::Primary(p) => {
                p.replica.syncing = false;
                if result.is_ok() {
                    p.ack_ready(ctx);
                }
                // Failed or not, sync whatever is still unsynced.
                p.replica.maybe_sync(ctx);
            }
            Node::Backup(b) => {
                b.replica.syncing = false;
                if let Ok(target) = result {
                    for id in b.replica.synced_ids_below(target) {
                        if b.asked.remove(&id) {
                            ctx.send(PRIMARY, Msg::Replicated { id });
                        }
                    }
                }
                b.replica.maybe_sync(ctx);
            }
            Node::Client(_) => {}
        }
    }
}

/// Schedules a client's next increment after a random think time.
fn think(ctx: &mut Ctx<'_, Node>) {
    let ms = ctx.rng().gen_range(0..=CLIENT_THINK_MS_MAX);
    ctx.set_timer(Duration::from_millis(ms), Tick::NextIncr);
}

impl Client {
    fn send_next(&mut self, ctx: &mut Ctx<'_, Node>) {
        if let Some(id) = self.todo.pop() {
            ctx.send(PRIMARY, Msg::Incr { id });
            let t = ctx.set_timer(CLIENT_RETRY, Tick::RetryClient { id });
            self.in_flight.insert(id, t);
        }
    }
}

/// What a checked run produced.
#[derive(Debug)]
pub struct Report {
    pub stats: Stats,
    pub acked: usize,
}

/// Runs the counter under `faults` (true time in ms, fault), heals at `FAULTS_END_MS`, and
/// checks safety then liveness. `Err` describes the first violation.
pub fn run_counter(seed: u64, faults: &[(u64, Fault)], mode: Mode) -> Result<Report, String> {
    let net = NetConfig {
        latency_min: Duration::from_micros(500),
        latency_max: Duration::from_millis(4),
        ..NetConfig::default()
    };
    let cfg = SimConfig::new(seed)
        .with_net(net.clone())
        .with_jobs(JobConfig {
            duration_jitter: 0.5,
            fail_probability: 0.0,
        });
    let mut sim: Sim<Node> = Sim::new(cfg).map_err(|e| e.to_string())?;
    let logs: [SharedLog; 2] = Default::default();
    for (id, log) in [PRIMARY, BACKUP].into_iter().zip(logs.iter().cloned()) {
        let durable = log.clone();
        sim.add_node(id, move |id| {
            let replica = Replica::open(durable.clone());
            if id == PRIMARY {
                Node::Primary(Primary {
                    mode,
                    replica,
                    pending: BTreeMap::new(),
                })
            } else {
                Node::Backup(Backup {
                    replica,
                    asked: BTreeSet::new(),
                })
            }
        })
        .map_err(|e| e.to_string())?;
        sim.set_crash_hook(id, move |_, _| {
            let mut log = lock(&log);
            let keep = log.synced;
            log.entries.truncate(keep);
        })
        .map_err(|e| e.to_string())?;
    }
    let acked = Rc::new(RefCell::new(BTreeSet::new()));
    let mut sent = BTreeSet::new();
    for (n, client) in CLIENTS.into_iter().enumerate() {
        let ids: Vec<u64> = (0..INCRS_PER_CLIENT)
            .map(|k| (n as u64 + 1) * 1000 + k)
            .collect();
        sent.extend(ids.iter().copied());
        let acked = acked.clone();
        sim.add_node(client, move |_| {
            let todo = ids.clone();
            Node::Client(Client {
                todo,
                in_flight: BTreeMap::new(),
                acked: acked.clone(),
            })
        })
        .map_err(|e| e.to_string())?;
    }
    for (at, fault) in faults {
        sim.schedule(Time::from_millis(*at), fault.clone())
            .map_err(|e| e.to_string())?;
    }

    // Safety phase: faults run; then heal everything and bring crashed nodes back.
    sim.run_until(Time::from_millis(FAULTS_END_MS));
    check_safety(&logs, &acked.borrow(), &sent)?;
    sim.heal_all();
    sim.set_net(net).map_err(|e| e.to_string())?;
    sim.set_jobs(JobConfig {
        duration_jitter: 0.5,
        fail_probability: 0.0,
    })
    .map_err(|e| e.to_string())?;
    for id in ALL {
        sim.set_clock_offset(id, 0).map_err(|e| e.to_string())?;
        if sim.actor(id).is_none() {
            sim.restart(id).map_err(|e| e.to_string())?;
        }
    }

    // Liveness phase: every increment must be acknowledged within the deadline.
    let total = sent.len();
    let deadline = Time::from_millis(LIVENESS_DEADLINE_MS);
    sim.run_while(deadline, |_| acked.borrow().len() < total);
    check_safety(&logs, &acked.borrow(), &sent)?;
    let done = acked.borrow().len();
    if done < total {
        return Err(format!(
            "liveness: only {done} of {total} increments acknowledged after heal"
        ));
    }
    Ok(Report {
        stats: *sim.stats(),
        acked: done,
    })
}

fn check_safety(
    logs: &[SharedLog; 2],
    acked: &BTreeSet<u64>,
    sent: &BTreeSet<u64>,
) -> Result<(), String> {
    for (name, log) in ["primary", "backup"].into_iter().zip(logs) {
        let log = lock(log);
        let mut seen = BTreeSet::new();
        for id in &log.entries {
            if !seen.insert(*id) {
                return Err(format!("double count: id {id} twice in the {name} log"));
            }
            if !sent.contains(id) {
                return Err(format!("{name} log holds id {id} that no client sent"));
            }
        }
        let durable: BTreeSet<u64> = log.entries[..log.synced].iter().copied().collect();
        if let Some(lost) = acked.iter().find(|id| !durable.contains(id)) {
            return Err(format!(
                "lost: acknowledged id {lost} is not durable in the {name} log"
            ));
        }
    }
    Ok(())
}
