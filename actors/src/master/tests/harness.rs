//! A hand-cranked cluster for master tests: the real meta store (over a `MemBackend`), one or
//! more masters, scripted fake tablet nodes and an admin client, on one FIFO network and one
//! clock. Jobs run as soon as they are started; timers fire as time advances.
//!
//! Fake nodes (`fake_node.rs`) are deliberately simple responders. Meta requests from masters
//! can be failed by a filter (`fail_meta`), answered `Unavailable` as a recovering meta store
//! would, so tests can fail chosen writes without a reboot.

use super::fake_node::fake_answer;
pub use super::fake_node::{Cmd, FakeNode};
use crate::kernel::{Actor, Addr, Ctx, Effect, Epoch, IdGen, JobFn, JobId, NodeId, Time, TimerId};
use crate::master::{Master, MasterConfig, MasterJobOutput, MasterTimer, Phase};
use crate::meta::*;
use crate::proto::admin::{AdminCall, AdminError, AdminMsg, AdminReply, AdminRequest};
use crate::proto::control::*;
use crate::proto::ClusterMsg;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use shale_storage::fs::{FileStore, SimFs, SimFsConfig};
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::Arc;
use std::time::Duration;

pub const META: NodeId = NodeId(100);
pub const M1: NodeId = NodeId(1);
pub const M2: NodeId = NodeId(2);
pub const CLIENT: NodeId = NodeId(900);

/// Whose timer: the meta store (None) or a master incarnation.
type Owner = Option<(NodeId, u64)>;

enum TimerFor {
    Meta(MetaTimer),
    Master(NodeId, u64, MasterTimer),
}
enum JobFor {
    Meta(JobId, JobFn<MetaJobOutput>),
    Master(NodeId, u64, JobId, JobFn<MasterJobOutput>),
}

pub struct Cluster {
    pub now: Time,
    pub _backend: MemBackend,
    pub meta: MetaStore,
    meta_ids: IdGen,
    pub masters: BTreeMap<NodeId, Option<Master>>,
    master_ids: BTreeMap<NodeId, (IdGen, u64)>,
    pub mcfg: MasterConfig,
    pub nodes: BTreeMap<NodeId, FakeNode>,
    pub fs: Arc<SimFs>,
    rng: ChaCha8Rng,
    net: VecDeque<(NodeId, NodeId, ClusterMsg)>,
    timers: Vec<(Time, u64, Owner, TimerId, TimerFor)>,
    cancelled: BTreeSet<(Owner, u64)>,
    timer_seq: u64,
    jobs: VecDeque<JobFor>,
    pub admin_answers: BTreeMap<RequestId, Result<AdminReply, AdminError>>,
    next_req: u64,
    next_heartbeat: Time,
    /// DDL transactions (those writing a table record) from masters to drop.
    pub drop_meta_txns: u32,
    /// Meta requests from masters for which this returns true are answered `Unavailable`
    /// (not applied) instead of reaching the meta store.
    pub fail_meta: Option<MetaFilter>,
    /// Meta requests from masters for which this returns true are refused (`BadRequest`),
    /// which makes the master resync.
    pub refuse_meta: Option<MetaFilter>,
}

/// Decides which master requests to the meta store fail (see `Cluster::fail_meta`).
pub type MetaFilter = Box<dyn FnMut(&MetaRequest) -> bool>;

pub fn meta_config() -> MetaConfig {
    MetaConfig {
        master_lease: Duration::from_secs(10),
        node_lease: Duration::from_secs(6),
        node_down_margin: Duration::from_secs(2),
        node_check_interval: Duration::from_secs(1),
        ..MetaConfig::default()
    }
}

pub fn master_config() -> MasterConfig {
    let mut c = MasterConfig::new(META, Addr("master:1".into()));
    c.query_interval_ms = 1_000;
    c.query_deadline_ms = 500;
    c.control_timeout_ms = 300;
    c.control_retries_max = 2;
    c.proc_retry_ms = 300;
    c.acquire_retry_ms = 500;
    c.lease_renew_interval_ms = 2_000;
    c.gc_grace_ms = 3_000;
    c.gc_list_every_rounds = 1;
    c.trash_grace_ms = 5_000;
    c.clock_skew_margin_ms = 1_000;
    c.load_retry_ms = 300;
    // The balancer is off unless a test turns it on.
    c.anti_flap_ms = 0;
    c.split_size_bytes = u64::MAX;
    c.merge_size_bytes = 0;
    c.moves_per_round_max = 0;
    c
}

impl Cluster {
    /// Meta store, `nodes` fake nodes (ids 11, 12, ...) registered, and master M1 leading.
    pub fn new(nodes: u64) -> Self {
        Self::with(nodes, master_config())
    }

    pub fn with(nodes: u64, mcfg: MasterConfig) -> Self {
        let backend = MemBackend::new();
        let meta = MetaStore::new(meta_config(), Arc::new(backend.clone()));
        let mut c = Cluster {
            now: Time::from_millis(1_000_000),
            _backend: backend,
            meta,
            meta_ids: IdGen::new(),
            masters: BTreeMap::new(),
            master_ids: BTreeMap::new(),
            mcfg,
            nodes: BTreeMap::new(),
            fs: Arc::new(SimFs::new(SimFsConfig::default())),
            rng: ChaCha8Rng::seed_from_u64(42),
            net: VecDeque::new(),
            timers: Vec::new(),
            cancelled: BTreeSet::new(),
            timer_seq: 0,
            jobs: VecDeque::new(),
            admin_answers: BTreeMap::new(),
            next_req: 1,
            next_heartbeat: Time::ZERO,
            drop_meta_txns: 0,
            fail_meta: None,
            refuse_meta: None,
        };
        c.step_meta(|m, ctx| m.on_start(ctx));
        c.settle();
        for i in 0..nodes {
            c.add_node(NodeId(11 + i));
        }
        c.start_master(M1);
        c.run_for(Duration::from_secs(2));
        c
    }

    pub fn add_node(&mut self, id: NodeId) {
        self.nodes.insert(
            id,
            FakeNode {
                alive: true,
                ..Default::default()
            },
        );
        self.register(id);
    }

    /// (Re-)register: a new epoch, nothing served.
    pub fn register(&mut self, id: NodeId) {
        let rid = self.req();
        let call = MetaCall::RegisterNode {
            name: format!("node{}", id.0),
            addr: Addr(format!("node{}:1", id.0)),
            total_disk_bytes: 0,
        };
        self.net.push_back((
            id,
            META,
            ClusterMsg::Meta(MetaMsg::Request(MetaRequest { id: rid, call })),
        ));
        self.settle();
    }

    fn req(&mut self) -> RequestId {
        self.next_req += 1;
        RequestId(self.next_req)
    }

    pub fn start_master(&mut self, id: NodeId) {
        let m = Master::new(self.mcfg.clone(), self.fs.clone() as Arc<dyn FileStore>);
        self.masters.insert(id, Some(m));
        let inc = self.master_ids.get(&id).map_or(1, |(_, i)| i + 1);
        self.master_ids.insert(id, (IdGen::new(), inc));
        self.step_master(id, |m, ctx| m.on_start(ctx));
    }

    pub fn crash_master(&mut self, id: NodeId) {
        self.masters.insert(id, None);
    }

    pub fn master(&self, id: NodeId) -> &Master {
        match self.masters.get(&id) {
            Some(Some(m)) => m,
            _ => panic!("master {id} is not running"),
        }
    }

    pub fn leader(&self) -> Option<NodeId> {
        self.masters
            .iter()
            .find(|(_, m)| m.as_ref().is_some_and(|m| m.phase() == Phase::Leading))
            .map(|(id, _)| *id)
    }

    fn step_meta(&mut self, f: impl FnOnce(&mut MetaStore, &mut Ctx<'_, MetaStore>)) {
        let mut out: Vec<Effect<MetaStore>> = Vec::new();
        let mut ctx = Ctx::new(META, self.now, &mut self.rng, &mut self.meta_ids, &mut out);
        f(&mut self.meta, &mut ctx);
        for e in out {
            match e {
                Effect::Send { to, msg } => self.net.push_back((META, to, ClusterMsg::Meta(msg))),
                Effect::SetTimer { id, after, timer } => {
                    self.push_timer(self.now.plus(after), None, id, TimerFor::Meta(timer))
                }
                Effect::CancelTimer { id } => {
                    self.cancelled.insert((None, id.0));
                }
                Effect::StartJob { id, work, .. } => self.jobs.push_back(JobFor::Meta(id, work)),
            }
        }
    }

    fn push_timer(&mut self, at: Time, owner: Owner, id: TimerId, t: TimerFor) {
        self.timer_seq += 1;
        self.timers.push((at, self.timer_seq, owner, id, t));
    }

    pub fn step_master(&mut self, id: NodeId, f: impl FnOnce(&mut Master, &mut Ctx<'_, Master>)) {
        let Some(Some(mut m)) = self.masters.remove(&id) else {
            self.masters.insert(id, None);
            return;
        };
        let Some((mut ids, inc)) = self.master_ids.remove(&id) else {
            panic!("no ids for master {id}");
        };
        let mut out: Vec<Effect<Master>> = Vec::new();
        {
            let mut ctx = Ctx::new(id, self.now, &mut self.rng, &mut ids, &mut out);
            f(&mut m, &mut ctx);
        }
        self.masters.insert(id, Some(m));
        self.master_ids.insert(id, (ids, inc));
        let owner = Some((id, inc));
        for e in out {
            match e {
                Effect::Send { to, msg } => self.net.push_back((id, to, msg)),
                Effect::SetTimer {
                    id: tid,
                    after,
                    timer,
                } => self.push_timer(
                    self.now.plus(after),
                    owner,
                    tid,
                    TimerFor::Master(id, inc, timer),
                ),
                Effect::CancelTimer { id: tid } => {
                    self.cancelled.insert((owner, tid.0));
                }
                Effect::StartJob { id: jid, work, .. } => {
                    self.jobs.push_back(JobFor::Master(id, inc, jid, work))
                }
            }
        }
    }

    fn master_inc(&self, id: NodeId) -> Option<u64> {
        match self.masters.get(&id) {
            Some(Some(_)) => self.master_ids.get(&id).map(|(_, i)| *i),
            _ => None,
        }
    }

    /// Deliver messages and run jobs until nothing is left (time does not move).
    pub fn settle(&mut self) {
        let mut n = 0;
        loop {
            n += 1;
            assert!(n < 200_000, "the cluster never settles");
            if let Some((from, to, msg)) = self.net.pop_front() {
                self.deliver(from, to, msg);
                continue;
            }
            if let Some(job) = self.jobs.pop_front() {
                match job {
                    JobFor::Meta(id, work) => {
                        let out = work();
                        self.step_meta(|m, ctx| m.on_job_done(id, Ok(out), ctx));
                    }
                    JobFor::Master(node, inc, id, work) => {
                        if self.master_inc(node) == Some(inc) {
                            let out = work();
                            self.step_master(node, |m, ctx| m.on_job_done(id, Ok(out), ctx));
                        }
                    }
                }
                continue;
            }
            break;
        }
    }

    fn deliver(&mut self, from: NodeId, to: NodeId, msg: ClusterMsg) {
        if to == META {
            if let ClusterMsg::Meta(MetaMsg::Request(req)) = msg {
                let ddl = matches!(&req.call, MetaCall::Txn(t) if t.ops.iter().any(|o| matches!(o, Op::PutTable(_) | Op::DeleteTable(_))));
                if self.drop_meta_txns > 0 && ddl && self.masters.contains_key(&from) {
                    self.drop_meta_txns -= 1;
                    return;
                }
                let fail = self.masters.contains_key(&from)
                    && self.fail_meta.as_mut().is_some_and(|f| f(&req));
                let refuse = self.masters.contains_key(&from)
                    && self.refuse_meta.as_mut().is_some_and(|f| f(&req));
                if fail || refuse {
                    let error = match refuse {
                        true => MetaError::BadRequest("refused by the test".into()),
                        false => MetaError::Unavailable,
                    };
                    let resp = MetaResponse {
                        id: req.id,
                        result: Err(error),
                    };
                    self.net
                        .push_back((META, from, ClusterMsg::Meta(MetaMsg::Response(resp))));
                    return;
                }
                self.step_meta(|m, ctx| m.on_msg(from, MetaMsg::Request(req), ctx));
            }
            return;
        }
        if to == CLIENT {
            if let ClusterMsg::Admin(AdminMsg::Response(r)) = msg {
                self.admin_answers.insert(r.id, r.result);
            }
            return;
        }
        if self.masters.contains_key(&to) {
            if self.master_inc(to).is_some() {
                self.step_master(to, |m, ctx| m.on_msg(from, msg, ctx));
            }
            return;
        }
        if self.nodes.contains_key(&to) {
            self.node_msg(from, to, msg);
        }
    }

    fn node_msg(&mut self, from: NodeId, to: NodeId, msg: ClusterMsg) {
        let fs = self.fs.clone();
        let Some(node) = self.nodes.get_mut(&to) else {
            return;
        };
        match msg {
            ClusterMsg::Meta(MetaMsg::Response(r)) => {
                if let Ok(MetaReply::Registered { epoch, .. }) = r.result {
                    node.epoch = epoch;
                    node.served.clear();
                }
            }
            ClusterMsg::Control(ControlMsg::Request(req)) => {
                if !node.alive || node.mute {
                    return;
                }
                let query = matches!(req.cmd, ControlCmd::Query { .. });
                let result = fake_answer(node, &req, fs.as_ref());
                let resp = ClusterMsg::Control(ControlMsg::Response(ControlResponse {
                    id: req.id,
                    result,
                }));
                if query && node.hold_reports {
                    node.held.push((from, resp));
                } else {
                    self.net.push_back((to, from, resp));
                }
            }
            _ => {}
        }
    }

    /// Move time forward by `d`, firing timers in order and heartbeating live nodes.
    pub fn run_for(&mut self, d: Duration) {
        let until = self.now.plus(d);
        loop {
            self.settle();
            if self.now >= self.next_heartbeat {
                self.heartbeat();
                self.next_heartbeat = self.now.plus(Duration::from_millis(1_000));
                continue;
            }
            self.timers.sort_by_key(|(at, seq, ..)| (*at, *seq));
            let next_at = self.timers.first().map(|t| t.0).unwrap_or(until);
            let at = next_at.min(self.next_heartbeat);
            if at > until {
                break;
            }
            self.now = self.now.max(at);
            if next_at <= self.next_heartbeat && !self.timers.is_empty() {
                let (_, _, owner, tid, t) = self.timers.remove(0);
                if self.cancelled.remove(&(owner, tid.0)) {
                    continue;
                }
                match t {
                    TimerFor::Meta(t) => self.step_meta(|m, ctx| m.on_timer(tid, t, ctx)),
                    TimerFor::Master(node, inc, t) => {
                        if self.master_inc(node) == Some(inc) {
                            self.step_master(node, |m, ctx| m.on_timer(tid, t, ctx));
                        }
                    }
                }
            }
        }
        self.now = until;
        self.settle();
    }

    fn heartbeat(&mut self) {
        let beats: Vec<(NodeId, Epoch)> = self
            .nodes
            .iter()
            .filter(|(_, n)| n.alive)
            .map(|(id, n)| (*id, n.epoch))
            .collect();
        for (id, epoch) in beats {
            let rid = self.req();
            let call = MetaCall::Heartbeat {
                epoch,
                status: crate::meta::NodeStatus::Up,
            };
            self.net.push_back((
                id,
                META,
                ClusterMsg::Meta(MetaMsg::Request(MetaRequest { id: rid, call })),
            ));
        }
    }

    /// Send an admin call to `master` and run until it answers (at most 20 s).
    pub fn admin_to(&mut self, master: NodeId, call: AdminCall) -> Result<AdminReply, AdminError> {
        let id = self.req();
        self.net.push_back((
            CLIENT,
            master,
            ClusterMsg::Admin(AdminMsg::Request(AdminRequest { id, call })),
        ));
        for _ in 0..200 {
            self.settle();
            if let Some(r) = self.admin_answers.remove(&id) {
                return r;
            }
            self.run_for(Duration::from_millis(100));
        }
        panic!("no admin answer");
    }

    pub fn admin(&mut self, call: AdminCall) -> Result<AdminReply, AdminError> {
        let m = self.leader().unwrap_or(M1);
        self.admin_to(m, call)
    }

    pub fn snapshot(&self) -> MetaSnapshot {
        self.meta.state().snapshot().clone()
    }

    /// Deliver up to `n` messages or jobs (time does not move). False when idle earlier.
    pub fn step_n(&mut self, n: usize) -> bool {
        for _ in 0..n {
            if let Some((from, to, msg)) = self.net.pop_front() {
                self.deliver(from, to, msg);
            } else if let Some(job) = self.jobs.pop_front() {
                self.jobs.push_front(job);
                let before = self.jobs.len();
                // Run exactly one job through settle's path.
                if let Some(job) = self.jobs.pop_front() {
                    match job {
                        JobFor::Meta(id, work) => {
                            let out = work();
                            self.step_meta(|m, ctx| m.on_job_done(id, Ok(out), ctx));
                        }
                        JobFor::Master(node, inc, id, work) => {
                            if self.master_inc(node) == Some(inc) {
                                let out = work();
                                self.step_master(node, |m, ctx| m.on_job_done(id, Ok(out), ctx));
                            }
                        }
                    }
                }
                let _ = before;
            } else {
                return false;
            }
        }
        true
    }

    /// Send an admin call without waiting for the answer.
    pub fn admin_send(&mut self, master: NodeId, call: AdminCall) -> RequestId {
        let id = self.req();
        self.net.push_back((
            CLIENT,
            master,
            ClusterMsg::Admin(AdminMsg::Request(AdminRequest { id, call })),
        ));
        id
    }

    pub fn tablets(&self, table: &str) -> Vec<TabletRecord> {
        let mut v: Vec<TabletRecord> = self
            .snapshot()
            .tablets
            .values()
            .map(|t| t.value.clone())
            .filter(|t| t.table == table)
            .collect();
        v.sort_by(|a, b| a.start.cmp(&b.start));
        v
    }

    /// Every tablet of `table` Ready, served by exactly its assigned node, keys covered.
    pub fn assert_table_healthy(&self, table: &str) {
        let ts = self.tablets(table);
        assert!(!ts.is_empty(), "table {table} has tablets");
        assert!(ts[0].start.is_empty(), "coverage starts at -inf");
        assert!(ts[ts.len() - 1].end.is_empty(), "coverage ends at +inf");
        for w in ts.windows(2) {
            assert_eq!(w[0].end, w[1].start, "no gap or overlap");
        }
        for t in &ts {
            assert_eq!(t.status, TabletStatus::Ready, "{t:?}");
            let a = t.assigned.expect("ready tablets are assigned");
            let servers: Vec<NodeId> = self
                .nodes
                .iter()
                .filter(|(_, n)| n.alive && n.served.get(&t.id) == Some(&t.version))
                .map(|(id, _)| *id)
                .collect();
            assert_eq!(
                servers,
                vec![a.node],
                "tablet {} served once, by its node",
                t.id
            );
        }
    }

    /// Memory of the leader agrees with meta (invariant 6).
    pub fn assert_memory_matches_meta(&self) {
        let Some(l) = self.leader() else {
            panic!("no leader")
        };
        let snap = self.snapshot();
        let m = self.master(l);
        let mem: BTreeMap<TabletId, TabletRecord> = m
            .state()
            .tablets
            .iter()
            .map(|(k, v)| (*k, v.rec.clone()))
            .collect();
        let meta: BTreeMap<TabletId, TabletRecord> = snap
            .tablets
            .iter()
            .map(|(k, v)| (*k, v.value.clone()))
            .collect();
        assert_eq!(mem, meta, "master memory and meta agree on tablets");
        let procs: BTreeSet<ProcedureId> = m.procedures().keys().copied().collect();
        let meta_procs: BTreeSet<ProcedureId> = snap.procedures.keys().copied().collect();
        assert_eq!(procs, meta_procs, "and on procedures");
    }

    pub fn kill_node(&mut self, id: NodeId) {
        if let Some(n) = self.nodes.get_mut(&id) {
            n.alive = false;
            n.served.clear();
        }
    }

    /// Send the query reports `node` held back, and stop holding them.
    pub fn release_reports(&mut self, node: NodeId) {
        if let Some(n) = self.nodes.get_mut(&node) {
            n.hold_reports = false;
            for (to, msg) in std::mem::take(&mut n.held) {
                self.net.push_back((node, to, msg));
            }
        }
    }

    pub fn fail_next(&mut self, node: NodeId, cmd: Cmd, e: ControlError) {
        if let Some(n) = self.nodes.get_mut(&node) {
            n.fail_next.entry(cmd).or_default().push_back(e);
        }
    }
}
