//! The meta store's backend conformance suite: every catalog and registry call, good and bad
//! input, and restarts, driven through the real actor over any [`MetaBackend`].
//!
//! Owns: [`Driver`] (a hand-cranked host for one store over a shared backend) and
//! [`run_all`]; the cases themselves are in `conformance/cases.rs`. The embedded backends run it in `meta::tests`; `shale-meta-mysql` runs it
//! against a real MariaDB. Built only for tests or with the `testkit` feature. Must not:
//! depend on a particular backend (a restart here is a new actor over the same backend; crash
//! semantics of each backend are tested next to it).

mod cases;

use super::catalog::ColumnSpec;
use super::*;
use crate::kernel::{Actor, Addr, Ctx, Effect, Epoch, IdGen, JobFn, JobId, NodeId, Time, TimerId};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use shale_storage::ts::{check_values, ColumnType, Value, ValueError};
use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

const META: NodeId = NodeId(100);
const CLIENT: NodeId = NodeId(1 << 63);
const DAY_MS: u64 = 86_400_000;
/// 2024-03-01T00:00:00Z.
const MAR1: u64 = 19_783 * DAY_MS;

pub struct Driver {
    backend: Arc<dyn MetaBackend>,
    config: MetaConfig,
    pub store: MetaStore,
    rng: ChaCha8Rng,
    ids: IdGen,
    pub now: Time,
    jobs: VecDeque<(JobId, JobFn<MetaJobOutput>)>,
    timers: Vec<(Time, TimerId, MetaTimer)>,
    sent: BTreeMap<(NodeId, RequestId), Result<MetaReply, MetaError>>,
    next_request: u64,
}

impl Driver {
    pub fn new(backend: Arc<dyn MetaBackend>) -> Self {
        let config = MetaConfig::default();
        let store = MetaStore::new(config.clone(), backend.clone());
        let mut d = Self {
            backend,
            config,
            store,
            rng: ChaCha8Rng::seed_from_u64(7),
            ids: IdGen::new(),
            now: Time::from_millis(MAR1),
            jobs: VecDeque::new(),
            timers: Vec::new(),
            sent: BTreeMap::new(),
            next_request: 1,
        };
        d.boot();
        d
    }

    fn boot(&mut self) {
        self.step(|s, ctx| s.on_start(ctx));
        self.run_jobs();
        assert!(self.store.is_serving(), "store serves after boot");
    }

    fn step(&mut self, f: impl FnOnce(&mut MetaStore, &mut Ctx<'_, MetaStore>)) {
        let mut out: Vec<Effect<MetaStore>> = Vec::new();
        let mut ctx = Ctx::new(META, self.now, &mut self.rng, &mut self.ids, &mut out);
        f(&mut self.store, &mut ctx);
        for e in out {
            match e {
                Effect::Send {
                    to,
                    msg: MetaMsg::Response(r),
                } => {
                    self.sent.insert((to, r.id), r.result);
                }
                Effect::Send { msg, .. } => panic!("meta store sent {msg:?}"),
                Effect::SetTimer { id, after, timer } => {
                    self.timers.push((self.now.plus(after), id, timer))
                }
                Effect::CancelTimer { id } => self.timers.retain(|t| t.1 != id),
                Effect::StartJob { id, work, .. } => self.jobs.push_back((id, work)),
            }
        }
    }

    fn run_jobs(&mut self) {
        let mut n = 0;
        while let Some((id, work)) = self.jobs.pop_front() {
            let out = work();
            self.step(|s, ctx| s.on_job_done(id, Ok(out), ctx));
            n += 1;
            assert!(n < 100_000, "jobs never settle");
        }
    }

    /// Send a call as `from`, run jobs until idle, and return the answer.
    pub fn call(&mut self, from: NodeId, call: MetaCall) -> Result<MetaReply, MetaError> {
        let id = RequestId(self.next_request);
        self.next_request += 1;
        let msg = MetaMsg::Request(MetaRequest { id, call });
        self.step(|s, ctx| s.on_msg(from, msg, ctx));
        self.run_jobs();
        match self.sent.remove(&(from, id)) {
            Some(r) => r,
            None => panic!("no response to request {id:?}"),
        }
    }

    /// Move time forward, firing due timers in order.
    pub fn advance(&mut self, d: Duration) {
        let until = self.now.plus(d);
        loop {
            self.timers.sort_by_key(|(at, id, _)| (*at, *id));
            let Some((at, id, timer)) = self.timers.first().filter(|t| t.0 <= until).cloned()
            else {
                break;
            };
            self.timers.remove(0);
            self.now = at;
            self.step(|s, ctx| s.on_timer(id, timer, ctx));
            self.run_jobs();
        }
        self.now = until;
    }

    /// A new incarnation over the same backend.
    pub fn restart(&mut self) {
        self.jobs.clear();
        self.timers.clear();
        self.ids = IdGen::new();
        self.store = MetaStore::new(self.config.clone(), self.backend.clone());
        self.boot();
    }

    pub fn register(
        &mut self,
        node: NodeId,
        name: &str,
        addr: &str,
        disk: u64,
    ) -> Result<Epoch, MetaError> {
        let call = MetaCall::RegisterNode {
            name: name.into(),
            addr: Addr(addr.into()),
            total_disk_bytes: disk,
        };
        match self.call(node, call)? {
            MetaReply::Registered { node: n, epoch, .. } if n == node => Ok(epoch),
            other => panic!("register answered {other:?}"),
        }
    }

    pub fn node_info(&mut self, node: NodeId) -> Result<NodeInfo, MetaError> {
        match self.call(CLIENT, MetaCall::GetNodeInfo { node })? {
            MetaReply::Node(n) => Ok(*n),
            other => panic!("node info answered {other:?}"),
        }
    }

    pub fn report(&mut self, node: NodeId, used: u64) -> Result<(), MetaError> {
        let call = MetaCall::ReportStorage {
            node,
            used_disk_bytes: used,
        };
        self.call(node, call).map(|_| ())
    }

    pub fn id_of(&mut self, key: &str) -> Result<u32, MetaError> {
        match self.call(CLIENT, MetaCall::IdOf { key: key.into() })? {
            MetaReply::Id(id) => Ok(id),
            other => panic!("id_of answered {other:?}"),
        }
    }

    pub fn insert_table(
        &mut self,
        table: &str,
        count: u32,
        cols: &[(&str, ColumnType)],
    ) -> Result<TsTableInfo, MetaError> {
        let columns = cols
            .iter()
            .enumerate()
            .map(|(i, (name, ty))| ColumnSpec {
                name: (*name).into(),
                column_type: *ty,
                index: i as u32,
                comment: format!("{name} column"),
            })
            .collect();
        let call = MetaCall::InsertTableInfo {
            table: table.into(),
            partition_count_per_day: count,
            columns,
        };
        match self.call(CLIENT, call)? {
            MetaReply::Table(t) => Ok(*t),
            other => panic!("insert_table_info answered {other:?}"),
        }
    }

    pub fn table(&mut self, table: &str) -> Result<TsTableInfo, MetaError> {
        match self.call(
            CLIENT,
            MetaCall::GetTableInfo {
                table: table.into(),
            },
        )? {
            MetaReply::Table(t) => Ok(*t),
            other => panic!("get_table_info answered {other:?}"),
        }
    }

    pub fn partitions(
        &mut self,
        table: &str,
        ts: u64,
        create: bool,
    ) -> Result<Vec<PartitionInfo>, MetaError> {
        let call = MetaCall::GetPartitionInfos {
            table: table.into(),
            timestamp_ms: ts,
            create,
        };
        match self.call(CLIENT, call)? {
            MetaReply::Partitions(p) => Ok(p),
            other => panic!("get_partition_infos answered {other:?}"),
        }
    }
}

/// Every case, each on a fresh backend from `make`.
pub fn run_all(make: &dyn Fn() -> Arc<dyn MetaBackend>) {
    type Case = (&'static str, fn(&mut Driver));
    let cases: [Case; 5] = [
        ("registry", cases::registry),
        ("storage_reports", cases::storage_reports),
        ("id_mapping", cases::id_mapping),
        ("schemas", cases::schemas),
        ("partitions", cases::partitions),
    ];
    for (name, case) in cases {
        tracing::info!(case = name, "meta conformance case");
        let mut d = Driver::new(make());
        case(&mut d);
    }
}
