//! Test harness for cluster integration tests: a meta store, tablet nodes and a client in the
//! deterministic executor, plus a test-only fake master that drives control commands and
//! meta writes directly (the real master is tested on its own).
//!
//! Must not: be used outside tests; it panics on setup failures to keep tests short.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use shale_actors::client::{ClientConfig, ClientRole, Completion, OpId, OpInput};
use shale_actors::cluster::{ClusterJob, ClusterNode, ClusterTimer};
use shale_actors::meta::{
    Assignment, FamilyDesc, MemBackend, MetaCall, MetaConfig, MetaMsg, MetaReply, MetaRequest,
    MetaStore, Op, RequestId, Schema, TableRecord, TableStatus, TabletId, TabletRecord,
    TabletStatus, Txn,
};
use shale_actors::node::{NodeConfig, TabletNode};
use shale_actors::proto::control::{
    ControlCmd, ControlError, ControlMsg, ControlReply, ControlRequest, TabletSpec,
};
use shale_actors::proto::data::{DataMsg, DataRequest, DataResponse};
use shale_actors::proto::ClusterMsg;
use shale_actors::{Actor, Addr, Ctx, Epoch, JobError, JobId, NodeId, Time, TimerId};
use shale_sim::{NetConfig, Sim, SimConfig};
use shale_storage::fs::{SimFs, SimFsConfig};
use std::sync::Arc;
use std::time::Duration;

pub const META: NodeId = NodeId(1);
pub const MASTER: NodeId = NodeId(2);
pub const CLIENT: NodeId = NodeId(3);
pub const NODES: [NodeId; 3] = [NodeId(11), NodeId(12), NodeId(13)];
pub const TABLE: &str = "t";
pub const FAMILY: &str = "cf";

/// What the test's fake master heard back.
#[derive(Default)]
pub struct FakeMaster {
    pub control: Vec<shale_actors::proto::control::ControlResponse>,
    pub meta: Vec<shale_actors::meta::MetaResponse>,
    pub data: Vec<DataResponse>,
}

/// The executor's actor: a real cluster role, or the fake master.
pub enum World {
    Cluster(Box<ClusterNode>),
    Master(FakeMaster),
}

impl World {
    pub fn node(&self) -> Option<&TabletNode> {
        match self {
            World::Cluster(c) => c.as_node(),
            World::Master(_) => None,
        }
    }
    pub fn meta(&self) -> Option<&MetaStore> {
        match self {
            World::Cluster(c) => c.as_meta(),
            World::Master(_) => None,
        }
    }
    pub fn client(&self) -> Option<&ClientRole> {
        match self {
            World::Cluster(c) => c.as_client(),
            World::Master(_) => None,
        }
    }
    pub fn master(&self) -> Option<&FakeMaster> {
        match self {
            World::Master(m) => Some(m),
            World::Cluster(_) => None,
        }
    }
}

fn id<T>(t: T) -> T {
    t
}

impl Actor for World {
    type Msg = ClusterMsg;
    type Timer = ClusterTimer;
    type JobOutput = ClusterJob;
    fn on_start(&mut self, ctx: &mut Ctx<'_, Self>) {
        if let World::Cluster(c) = self {
            ctx.nest(id, id, id, |x| c.on_start(x));
        }
    }
    fn on_msg(&mut self, from: NodeId, msg: ClusterMsg, ctx: &mut Ctx<'_, Self>) {
        match self {
            World::Cluster(c) => ctx.nest(id, id, id, |x| c.on_msg(from, msg, x)),
            World::Master(m) => match msg {
                ClusterMsg::Control(ControlMsg::Response(r)) => m.control.push(r),
                ClusterMsg::Meta(MetaMsg::Response(r)) => m.meta.push(r),
                ClusterMsg::Data(DataMsg::Response(r)) => m.data.push(r),
                _ => {}
            },
        }
    }
    fn on_timer(&mut self, tid: TimerId, t: ClusterTimer, ctx: &mut Ctx<'_, Self>) {
        if let World::Cluster(c) = self {
            ctx.nest(id, id, id, |x| c.on_timer(tid, t, x));
        }
    }
    fn on_job_done(&mut self, j: JobId, r: Result<ClusterJob, JobError>, ctx: &mut Ctx<'_, Self>) {
        if let World::Cluster(c) = self {
            ctx.nest(id, id, id, |x| c.on_job_done(j, r, x));
        }
    }
}

pub fn schema() -> Schema {
    Schema {
        families: vec![FamilyDesc {
            name: FAMILY.into(),
            locality_group: "default".into(),
            max_versions: 3,
            min_versions: 0,
            ttl_secs: 0,
        }],
    }
}

pub fn node_config(i: usize) -> NodeConfig {
    let mut c = NodeConfig::new(format!("node{i}"), Addr(format!("10.0.0.{i}:7000")), META);
    c.heartbeat_interval = Duration::from_millis(500);
    c
}

pub struct Cluster {
    pub sim: Sim<World>,
    pub fs: SimFs,
    next_req: u64,
    pub term: u64,
}

impl Cluster {
    pub fn new(seed: u64) -> Cluster {
        Self::with_net(seed, NetConfig::default())
    }

    pub fn with_net(seed: u64, net: NetConfig) -> Cluster {
        Self::with_nodes(seed, net, |_, _| {})
    }

    /// Like [`Cluster::with_net`], with each node's config (node index from 1) adjusted.
    pub fn with_nodes(
        seed: u64,
        net: NetConfig,
        tune: impl Fn(usize, &mut NodeConfig) + Clone + 'static,
    ) -> Cluster {
        let cfg = SimConfig::new(seed).with_net(net);
        let mut sim: Sim<World> = Sim::new(cfg).unwrap();
        let backend = Arc::new(MemBackend::new());
        sim.add_node(META, move |_| {
            World::Cluster(Box::new(ClusterNode::Meta(MetaStore::new(
                MetaConfig::default(),
                backend.clone(),
            ))))
        })
        .unwrap();
        sim.add_node(MASTER, |_| World::Master(FakeMaster::default()))
            .unwrap();
        let fs = SimFs::new(SimFsConfig {
            seed,
            ..SimFsConfig::default()
        });
        for (i, n) in NODES.iter().enumerate() {
            let fs = fs.clone();
            let tune = tune.clone();
            sim.add_node(*n, move |_| {
                let mut config = node_config(i + 1);
                tune(i + 1, &mut config);
                World::Cluster(Box::new(ClusterNode::Node(TabletNode::new(
                    config,
                    Arc::new(fs.clone()),
                ))))
            })
            .unwrap();
        }
        sim.add_node(CLIENT, |_| {
            World::Cluster(Box::new(ClusterNode::Client(ClientRole::new(
                ClientConfig::new(META),
                1_000_000,
            ))))
        })
        .unwrap();
        let mut c = Cluster {
            sim,
            fs,
            next_req: 0,
            term: 1,
        };
        c.run_for(Duration::from_millis(1500));
        for n in NODES {
            assert!(c.epoch(n).is_some(), "{n} registered");
        }
        c.create_table();
        c
    }

    pub fn run_for(&mut self, d: Duration) {
        self.sim.run_for(d);
    }

    pub fn node(&self, n: NodeId) -> &TabletNode {
        self.sim
            .actor(n)
            .and_then(World::node)
            .expect("a running node")
    }

    pub fn epoch(&self, n: NodeId) -> Option<Epoch> {
        self.sim
            .actor(n)
            .and_then(World::node)
            .and_then(|x| x.epoch())
    }

    fn master(&self) -> &FakeMaster {
        self.sim
            .actor(MASTER)
            .and_then(World::master)
            .expect("fake master")
    }

    fn req(&mut self) -> RequestId {
        self.next_req += 1;
        RequestId(self.next_req)
    }

    /// A meta call from the fake master, run until answered.
    pub fn meta_call(
        &mut self,
        call: MetaCall,
    ) -> Result<MetaReply, shale_actors::meta::MetaError> {
        let id = self.req();
        self.sim.send_external(
            MASTER,
            META,
            ClusterMsg::Meta(MetaMsg::Request(MetaRequest { id, call })),
        );
        let deadline = self.sim.now().plus(Duration::from_secs(5));
        self.sim.run_while(deadline, |s| {
            !s.actor(MASTER)
                .and_then(World::master)
                .is_some_and(|m| m.meta.iter().any(|r| r.id == id))
        });
        let m = self.master();
        m.meta
            .iter()
            .find(|r| r.id == id)
            .expect("meta answered")
            .result
            .clone()
    }

    pub fn txn(&mut self, ops: Vec<Op>) {
        let txn = Txn {
            checks: vec![],
            ops,
        };
        let r = self.meta_call(MetaCall::Txn(txn));
        assert!(matches!(r, Ok(MetaReply::Committed { .. })), "txn: {r:?}");
    }

    fn create_table(&mut self) {
        self.txn(vec![Op::PutTable(TableRecord {
            name: TABLE.into(),
            schema: schema(),
            status: TableStatus::Enabled,
            created_at: Time::ZERO,
        })]);
    }

    /// A control command to `node` with the node's current epoch, run until answered.
    pub fn control(&mut self, node: NodeId, cmd: ControlCmd) -> Result<ControlReply, ControlError> {
        let epoch = self.epoch(node).unwrap_or_default();
        self.control_as(node, self.term, epoch, cmd)
    }

    pub fn control_as(
        &mut self,
        node: NodeId,
        term: u64,
        node_epoch: Epoch,
        cmd: ControlCmd,
    ) -> Result<ControlReply, ControlError> {
        let id = self.send_control(node, term, node_epoch, cmd);
        self.wait_control(id)
    }

    pub fn send_control(
        &mut self,
        node: NodeId,
        term: u64,
        node_epoch: Epoch,
        cmd: ControlCmd,
    ) -> RequestId {
        let id = self.req();
        let req = ControlRequest {
            id,
            term,
            node_epoch,
            cmd,
        };
        self.sim
            .send_external(MASTER, node, ClusterMsg::Control(ControlMsg::Request(req)));
        id
    }

    pub fn wait_control(&mut self, id: RequestId) -> Result<ControlReply, ControlError> {
        let deadline = self.sim.now().plus(Duration::from_secs(10));
        self.sim.run_while(deadline, |s| {
            !s.actor(MASTER)
                .and_then(World::master)
                .is_some_and(|m| m.control.iter().any(|r| r.id == id))
        });
        let m = self.master();
        m.control
            .iter()
            .find(|r| r.id == id)
            .expect("control answered")
            .result
            .clone()
    }

    /// A raw data request from the fake master (for fencing tests), run until answered.
    pub fn raw_data(&mut self, node: NodeId, mut req: DataRequest) -> DataResponse {
        let id = self.req();
        req.id = id;
        self.sim
            .send_external(MASTER, node, ClusterMsg::Data(DataMsg::Request(req)));
        let deadline = self.sim.now().plus(Duration::from_secs(5));
        self.sim.run_while(deadline, |s| {
            !s.actor(MASTER)
                .and_then(World::master)
                .is_some_and(|m| m.data.iter().any(|r| r.id == id))
        });
        self.master()
            .data
            .iter()
            .find(|r| r.id == id)
            .expect("data answered")
            .clone()
    }

    pub fn spec(id: u64, start: &[u8], end: &[u8], version: u64) -> TabletSpec {
        TabletSpec {
            id: TabletId(id),
            table: TABLE.into(),
            start: start.to_vec(),
            end: end.to_vec(),
            path: format!("tables/{TABLE}/tablet-{id}"),
            version,
            schema: schema(),
        }
    }

    /// Record a tablet in meta as Ready on `node` (or offline when `node` is None).
    pub fn record_tablet(
        &mut self,
        spec: &TabletSpec,
        node: Option<NodeId>,
        parents: Vec<TabletId>,
    ) -> Op {
        let assigned = node.map(|n| Assignment {
            node: n,
            epoch: self.epoch(n).unwrap_or_default(),
        });
        Op::PutTablet(TabletRecord {
            id: spec.id,
            table: TABLE.into(),
            start: spec.start.clone(),
            end: spec.end.clone(),
            path: spec.path.clone(),
            assigned,
            status: if node.is_some() {
                TabletStatus::Ready
            } else {
                TabletStatus::Offline
            },
            size_bytes: 0,
            version: spec.version,
            parents,
        })
    }

    /// Start a client operation; returns its id.
    pub fn start(&mut self, input: OpInput) -> OpId {
        self.sim
            .invoke(CLIENT, |w, ctx| match w {
                World::Cluster(c) => ctx.nest(id, id, id, |x| c.start_op(input, x)),
                World::Master(_) => None,
            })
            .unwrap()
            .expect("a client")
            .expect("accepted")
    }

    pub fn history(&self) -> &[Completion] {
        self.sim
            .actor(CLIENT)
            .and_then(World::client)
            .expect("client")
            .history()
    }

    pub fn completion(&self, op: OpId) -> Option<Completion> {
        self.history().iter().find(|c| c.op == op).cloned()
    }

    /// Run until every op in `ops` completed (or a simulated minute passed).
    pub fn wait_ops(&mut self, ops: &[OpId]) -> Vec<Completion> {
        let deadline = self.sim.now().plus(Duration::from_secs(60));
        let want: Vec<OpId> = ops.to_vec();
        self.sim.run_while(deadline, |s| {
            let h = s.actor(CLIENT).and_then(World::client).map(|c| c.history());
            !h.is_some_and(|h| want.iter().all(|o| h.iter().any(|c| c.op == *o)))
        });
        ops.iter()
            .map(|o| {
                self.completion(*o)
                    .unwrap_or_else(|| panic!("op {o:?} completed"))
            })
            .collect()
    }

    pub fn run_op(&mut self, input: OpInput) -> Completion {
        let op = self.start(input);
        self.wait_ops(&[op]).remove(0)
    }
}
