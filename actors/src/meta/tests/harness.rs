//! A hand-cranked host for one [`MetaStore`]: delivers messages, runs jobs when told (so a
//! test decides what is durable when), fires timers as time advances, and crashes the
//! backend and restarts the actor over it.

use crate::kernel::{Actor, Ctx, Effect, IdGen, JobFn, JobId, NodeId, Time, TimerId};
use crate::meta::*;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use std::collections::{BTreeSet, VecDeque};
use std::sync::Arc;
use std::time::Duration;

pub const META: NodeId = NodeId(100);
pub const MASTER: NodeId = NodeId(1);
pub const MASTER2: NodeId = NodeId(2);

pub fn config() -> MetaConfig {
    MetaConfig {
        master_lease: Duration::from_secs(10),
        node_lease: Duration::from_secs(6),
        node_down_margin: Duration::from_secs(2),
        node_check_interval: Duration::from_secs(1),
        ..MetaConfig::default()
    }
}

pub struct Harness {
    pub backend: MemBackend,
    pub store: MetaStore,
    config: MetaConfig,
    rng: ChaCha8Rng,
    ids: IdGen,
    pub now: Time,
    jobs: VecDeque<(JobId, JobFn<MetaJobOutput>)>,
    timers: Vec<(Time, TimerId, MetaTimer)>,
    cancelled: BTreeSet<TimerId>,
    /// Every response sent, in order.
    pub sent: Vec<(NodeId, MetaResponse)>,
    next_request: u64,
}

impl Harness {
    /// A fresh store over a fresh disk, booted and serving.
    pub fn new() -> Self {
        Self::with(config(), MemBackend::new())
    }

    pub fn with(config: MetaConfig, backend: MemBackend) -> Self {
        let store = MetaStore::new(config.clone(), Arc::new(backend.clone()));
        let mut h = Self {
            backend,
            store,
            config,
            rng: ChaCha8Rng::seed_from_u64(7),
            ids: IdGen::new(),
            now: Time::from_millis(1_000_000),
            jobs: VecDeque::new(),
            timers: Vec::new(),
            cancelled: BTreeSet::new(),
            sent: Vec::new(),
            next_request: 1,
        };
        h.step(|s, ctx| s.on_start(ctx));
        h.run_jobs();
        assert!(h.store.is_serving(), "store serves after boot");
        h
    }

    /// Run one event handler and collect its effects.
    fn step(&mut self, f: impl FnOnce(&mut MetaStore, &mut Ctx<'_, MetaStore>)) {
        let mut out: Vec<Effect<MetaStore>> = Vec::new();
        let mut ctx = Ctx::new(META, self.now, &mut self.rng, &mut self.ids, &mut out);
        f(&mut self.store, &mut ctx);
        for e in out {
            match e {
                Effect::Send { to, msg } => match msg {
                    MetaMsg::Response(resp) => self.sent.push((to, resp)),
                    MetaMsg::Request(req) => panic!("meta store sent a request: {req:?}"),
                },
                Effect::SetTimer { id, after, timer } => {
                    self.timers.push((self.now.plus(after), id, timer))
                }
                Effect::CancelTimer { id } => {
                    self.cancelled.insert(id);
                }
                Effect::StartJob { id, work, .. } => self.jobs.push_back((id, work)),
            }
        }
    }

    /// Deliver a request; returns its id. Nothing else runs.
    pub fn send(&mut self, from: NodeId, call: MetaCall) -> RequestId {
        let id = RequestId(self.next_request);
        self.next_request += 1;
        self.send_with_id(from, id, call);
        id
    }

    pub fn send_with_id(&mut self, from: NodeId, id: RequestId, call: MetaCall) {
        let msg = MetaMsg::Request(MetaRequest { id, call });
        self.step(|s, ctx| s.on_msg(from, msg, ctx));
    }

    /// The response to request `id` from `to`, if one was sent.
    pub fn response(&self, to: NodeId, id: RequestId) -> Option<Result<MetaReply, MetaError>> {
        self.sent
            .iter()
            .find(|(t, r)| *t == to && r.id == id)
            .map(|(_, r)| r.result.clone())
    }

    /// Send, run jobs until idle, and return the answer (which must have come).
    pub fn call(&mut self, from: NodeId, call: MetaCall) -> Result<MetaReply, MetaError> {
        let id = self.send(from, call);
        self.run_jobs();
        match self.response(from, id) {
            Some(r) => r,
            None => panic!("no response to request {id:?}"),
        }
    }

    pub fn txn(&mut self, from: NodeId, txn: Txn) -> Result<u64, MetaError> {
        match self.call(from, MetaCall::Txn(txn))? {
            MetaReply::Committed { revision } => Ok(revision),
            other => panic!("txn answered {other:?}"),
        }
    }

    pub fn get(&mut self, key: RecordKey) -> Option<Versioned<Record>> {
        match self.call(MASTER, MetaCall::Get(key)) {
            Ok(MetaReply::Record(r)) => r,
            other => panic!("get answered {other:?}"),
        }
    }

    pub fn version(&mut self, key: RecordKey) -> Option<u64> {
        self.get(key).map(|v| v.version)
    }

    pub fn jobs_queued(&self) -> usize {
        self.jobs.len()
    }

    /// Run the oldest job and deliver its result. False if there was none.
    pub fn run_one_job(&mut self) -> bool {
        let Some((id, work)) = self.jobs.pop_front() else {
            return false;
        };
        let out = work();
        self.step(|s, ctx| s.on_job_done(id, Ok(out), ctx));
        true
    }

    /// Run jobs (and the jobs they start) until none is left. Returns how many ran.
    pub fn run_jobs(&mut self) -> usize {
        let mut n = 0;
        while self.run_one_job() {
            n += 1;
            assert!(n < 100_000, "jobs never settle");
        }
        n
    }

    /// Run the oldest job's work but never deliver its result (the process dies right after).
    pub fn run_job_undelivered(&mut self) -> bool {
        match self.jobs.pop_front() {
            Some((_, work)) => {
                let _ = work();
                true
            }
            None => false,
        }
    }

    /// Fail the oldest job as the host would (fault injection).
    pub fn fail_one_job(&mut self) -> bool {
        let Some((id, _)) = self.jobs.pop_front() else {
            return false;
        };
        self.step(|s, ctx| s.on_job_done(id, Err(crate::kernel::JobError::Injected), ctx));
        true
    }

    /// Move time forward, firing due timers in order (and running the jobs they start).
    pub fn advance(&mut self, d: Duration) {
        let until = self.now.plus(d);
        loop {
            self.timers.sort_by_key(|(at, id, _)| (*at, *id));
            let due = self
                .timers
                .first()
                .filter(|(at, _, _)| *at <= until)
                .cloned();
            let Some((at, id, timer)) = due else { break };
            self.timers.remove(0);
            self.now = at;
            if self.cancelled.remove(&id) {
                continue;
            }
            self.step(|s, ctx| s.on_timer(id, timer, ctx));
            self.run_jobs();
        }
        self.now = until;
    }

    /// The process dies: unsynced bytes are lost, queued jobs and timers vanish, and a new
    /// actor boots over the same disk.
    pub fn crash(&mut self) {
        self.backend.crash();
        self.restart();
    }

    /// A new incarnation over the same disk (without losing unsynced bytes).
    pub fn restart(&mut self) {
        self.jobs.clear();
        self.timers.clear();
        self.cancelled.clear();
        self.ids = IdGen::new();
        self.store = MetaStore::new(self.config.clone(), Arc::new(self.backend.clone()));
        self.step(|s, ctx| s.on_start(ctx));
        self.run_jobs();
    }
}

// Builders for records.

pub fn family(name: &str) -> FamilyDesc {
    FamilyDesc {
        name: name.into(),
        locality_group: "default".into(),
        max_versions: 3,
        min_versions: 0,
        ttl_secs: 0,
    }
}

pub fn table(name: &str) -> TableRecord {
    TableRecord {
        name: name.into(),
        schema: Schema {
            families: vec![family("cf")],
        },
        status: TableStatus::Enabled,
        created_at: Time::from_millis(5),
    }
}

pub fn tablet(id: u64, table: &str, start: &str, end: &str) -> TabletRecord {
    TabletRecord {
        id: TabletId(id),
        table: table.into(),
        start: start.as_bytes().to_vec(),
        end: end.as_bytes().to_vec(),
        path: format!("{table}/tablet{id:08}"),
        assigned: None,
        status: TabletStatus::Offline,
        size_bytes: 0,
        version: 1,
        parents: Vec::new(),
    }
}

pub fn procedure(id: u64, kind: ProcedureKind) -> ProcedureRecord {
    ProcedureRecord {
        id: ProcedureId(id),
        kind,
        phase: "start".into(),
        tablets: Vec::new(),
        table: None,
        payload: vec![1, 2, 3],
        started_at: Time::from_millis(9),
    }
}

pub fn stat(subject: StatSubject, round: u64) -> StatRow {
    StatRow {
        subject,
        round,
        at: Time::from_millis(round),
        size_bytes: round * 10,
        reads_per_sec: 1,
        writes_per_sec: 2,
        scans_per_sec: 3,
        tablet_count: 0,
        inherited_files: vec!["t1/000001.sst".into()],
    }
}

pub fn tkey(name: &str) -> RecordKey {
    RecordKey::Table(name.into())
}
/// The bytes of a log file: a format header of `header`'s version (none: a log from before
/// format versions), then one frame per record.
pub fn log_image(header: Option<u32>, records: impl IntoIterator<Item = LogRecord>) -> Vec<u8> {
    let mut out = Vec::new();
    if let Some(version) = header {
        crate::meta::codec::encode_log_header_as(version, &mut out);
    }
    for r in records {
        crate::meta::codec::encode_frame(&r, &mut out).expect("encode");
    }
    out
}

pub fn tbkey(id: u64) -> RecordKey {
    RecordKey::Tablet(TabletId(id))
}
