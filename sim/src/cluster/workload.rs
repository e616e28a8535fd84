//! Client operations as checker data, and the closed-loop driver that issues a planned
//! workload through the cluster's client processes and records every outcome.
//!
//! Each row of the KV model is one column (`cf:q`) of one Shale row. A logical client
//! ([`ClientId`]) has one operation open at a time (the recorder's rule), so a planned
//! operation waits until its client's previous one finished and its planned time came.
//! Logical client `c` runs on client process `c % clients`.
//!
//! Outcomes: an answer becomes the operation's output; a refusal that means "not applied"
//! (`Failed`) or an unknown outcome (timeout, crash) leaves the operation pending, which the
//! linearizability checker may place anywhere after its call or nowhere. Call and return
//! times are the executor's true time at invoke and at the step that produced the answer.
//!
//! Must not: decide faults or judge results (the verdict does).

use super::client_id;
use crate::check::{ClientId, HistoryRecorder, KvInput, KvOp, KvOutput, Operation, RecordError};
use crate::scenario::PlannedOp;
use crate::Sim;
use shale_actors::client::{ClientError, OpId, OpInput, OpOutput, OpResult};
use shale_actors::cluster::ClusterNode;
use shale_actors::proto::data::{
    ColumnSpec, Condition, DataError, Mutation, ReadFilter, RowMutation,
};
use shale_actors::{NodeId, Time};
use std::collections::{BTreeMap, BTreeSet, VecDeque};

pub const FAMILY: &str = "cf";
pub const QUALIFIER: &[u8] = b"q";

fn put(value: &[u8]) -> Mutation {
    Mutation::Put {
        family: FAMILY.into(),
        qualifier: QUALIFIER.to_vec(),
        ts: None,
        value: value.to_vec(),
    }
}

fn delete() -> Mutation {
    Mutation::DeleteColumn {
        family: FAMILY.into(),
        qualifier: QUALIFIER.to_vec(),
    }
}

/// The client operation that performs `input` on the model's column.
pub fn kv_to_op(input: &KvInput) -> OpInput {
    let table = input.key.table.clone();
    let row = input.key.row.clone();
    let write = |m: Mutation| OpInput::Write {
        table: table.clone(),
        rows: vec![RowMutation {
            row: row.clone(),
            mutations: vec![m],
        }],
    };
    match &input.op {
        KvOp::Put(v) => write(put(v)),
        KvOp::Delete => write(delete()),
        KvOp::Get => OpInput::Get {
            table,
            row,
            filter: ReadFilter {
                columns: vec![ColumnSpec {
                    family: FAMILY.into(),
                    qualifier: Some(QUALIFIER.to_vec()),
                }],
                time_range: None,
                max_versions: Some(1),
            },
        },
        KvOp::CheckAndMutate { expected, then } => OpInput::CheckAndMutate {
            table,
            row,
            check: match expected {
                None => Condition::Absent {
                    family: FAMILY.into(),
                    qualifier: QUALIFIER.to_vec(),
                },
                Some(v) => Condition::Equals {
                    family: FAMILY.into(),
                    qualifier: QUALIFIER.to_vec(),
                    value: v.clone(),
                },
            },
            on_match: vec![match then {
                Some(v) => put(v),
                None => delete(),
            }],
            on_miss: vec![],
        },
        KvOp::Increment(delta) => OpInput::Increment {
            table,
            row,
            family: FAMILY.into(),
            qualifier: QUALIFIER.to_vec(),
            delta: *delta,
        },
        KvOp::Append(suffix) => OpInput::Append {
            table,
            row,
            family: FAMILY.into(),
            qualifier: QUALIFIER.to_vec(),
            suffix: suffix.clone(),
        },
    }
}

/// The model output an answer stands for; `None` when the operation did not happen or its
/// outcome is unknown (the history keeps it pending).
pub fn op_output_to_kv(op: &KvOp, result: &OpResult) -> Option<KvOutput> {
    match (op, result) {
        (KvOp::Put(_) | KvOp::Delete, OpResult::Done(OpOutput::Written)) => Some(KvOutput::Done),
        (KvOp::Get, OpResult::Done(OpOutput::Row(row))) => Some(KvOutput::Read(
            row.cells
                .iter()
                .find(|c| c.family == FAMILY && c.qualifier == QUALIFIER)
                .map(|c| c.value.clone()),
        )),
        (KvOp::CheckAndMutate { .. }, OpResult::Done(OpOutput::Checked(b))) => {
            Some(KvOutput::Checked(*b))
        }
        (KvOp::Increment(_), OpResult::Done(OpOutput::Counter(n))) => Some(KvOutput::Counter(*n)),
        (KvOp::Increment(_), OpResult::Failed(ClientError::Data(DataError::NotACounter))) => {
            Some(KvOutput::NotACounter)
        }
        (KvOp::Append(_), OpResult::Done(OpOutput::Appended(v))) => {
            Some(KvOutput::Appended(v.clone()))
        }
        _ => None,
    }
}

/// Counts of what the driver did, for reports.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WorkloadCounts {
    pub started: u64,
    pub answered: u64,
    /// Refused ("did not happen") or unknown: left pending.
    pub pending: u64,
    /// Planned operations the client refused at the call (never sent).
    pub refused_at_call: u64,
}

#[derive(Default)]
pub(super) struct Driver {
    clients: usize,
    planned: BTreeMap<ClientId, VecDeque<(Time, KvInput)>>,
    busy: BTreeSet<ClientId>,
    open: BTreeMap<(NodeId, OpId), (ClientId, KvInput)>,
    /// Completions of each client process's current incarnation already drained.
    consumed: BTreeMap<NodeId, usize>,
    pub recorder: HistoryRecorder<KvInput, KvOutput>,
    pub record_errors: Vec<RecordError>,
    pub counts: WorkloadCounts,
    /// Final-read answers: row -> value, filled by `collect` for ops started by `read_final`.
    pub final_reads: BTreeMap<ClientId, Option<KvOutput>>,
}

impl Driver {
    pub fn new(clients: usize) -> Self {
        Self {
            clients,
            ..Self::default()
        }
    }

    pub fn node_of(&self, c: ClientId) -> NodeId {
        client_id((c % self.clients.max(1) as u64) as usize)
    }

    pub fn add(&mut self, ops: impl IntoIterator<Item = PlannedOp>, start: Time) {
        for op in ops {
            self.planned
                .entry(op.client)
                .or_default()
                .push_back((start.plus(op.at), op.input));
        }
    }

    /// Forget every planned operation not yet started (the liveness phase stops the load).
    pub fn drop_planned(&mut self) {
        self.planned.clear();
    }

    /// True time of the next planned operation that could start now or later.
    pub fn next_due(&self) -> Option<Time> {
        self.planned
            .iter()
            .filter(|(c, _)| !self.busy.contains(c))
            .filter_map(|(_, q)| q.front().map(|(t, _)| *t))
            .min()
    }

    pub fn is_idle(&self) -> bool {
        self.open.is_empty() && self.planned.values().all(VecDeque::is_empty)
    }

    /// The open operations, for a liveness report: (client process, op, input).
    pub fn open_summary(&self) -> Vec<(NodeId, OpId, KvInput)> {
        self.open
            .iter()
            .take(4)
            .map(|((n, op), (_, input))| (*n, *op, input.clone()))
            .collect()
    }

    pub fn open_ops(&self) -> usize {
        self.open.len()
    }

    /// What `collect` compares: each client process's history length now.
    pub fn watch(&self) -> Vec<(NodeId, usize)> {
        self.consumed.iter().map(|(n, c)| (*n, *c)).collect()
    }

    /// Start every planned operation whose time came and whose client is free.
    pub fn issue_due(&mut self, sim: &mut Sim<ClusterNode>) {
        let now = sim.now();
        let due: Vec<ClientId> = self
            .planned
            .iter()
            .filter(|(c, q)| !self.busy.contains(c) && q.front().is_some_and(|(t, _)| *t <= now))
            .map(|(c, _)| *c)
            .collect();
        for c in due {
            let node = self.node_of(c);
            if sim.actor(node).is_none() {
                // The client process is down: its plan waits for the restart.
                continue;
            }
            let Some((_, input)) = self.planned.get_mut(&c).and_then(VecDeque::pop_front) else {
                continue;
            };
            self.start(sim, node, c, input);
        }
    }

    /// Start `input` as logical client `c` on process `node`; false if the client refused it.
    pub fn start(
        &mut self,
        sim: &mut Sim<ClusterNode>,
        node: NodeId,
        c: ClientId,
        input: KvInput,
    ) -> bool {
        let op = kv_to_op(&input);
        let started = sim
            .invoke(node, |n, ctx| n.start_op(op, ctx))
            .ok()
            .flatten();
        match started {
            Some(Ok(id)) => {
                if let Err(e) = self.recorder.invoke(c, sim.now(), input.clone()) {
                    self.record_errors.push(e);
                }
                self.consumed.entry(node).or_insert(0);
                self.busy.insert(c);
                self.open.insert((node, id), (c, input));
                self.counts.started += 1;
                true
            }
            _ => {
                self.counts.refused_at_call += 1;
                false
            }
        }
    }

    /// Drain new completions of every client process into the history.
    pub fn collect(&mut self, sim: &Sim<ClusterNode>) {
        let now = sim.now();
        let nodes: Vec<NodeId> = self.consumed.keys().copied().collect();
        for node in nodes {
            let Some(role) = sim.actor(node).and_then(ClusterNode::as_client) else {
                continue;
            };
            let seen = self.consumed.get(&node).copied().unwrap_or(0);
            for done in role.history().iter().skip(seen) {
                let Some((c, input)) = self.open.remove(&(node, done.op)) else {
                    continue;
                };
                self.busy.remove(&c);
                let r = match op_output_to_kv(&input.op, &done.result) {
                    Some(out) => {
                        self.counts.answered += 1;
                        self.final_reads.insert(c, Some(out.clone()));
                        self.recorder.complete(c, now, out)
                    }
                    None => {
                        self.counts.pending += 1;
                        self.final_reads.insert(c, None);
                        self.recorder.abandon(c)
                    }
                };
                if let Err(e) = r {
                    self.record_errors.push(e);
                }
            }
            self.consumed.insert(node, role.history().len());
        }
    }

    /// A client process crashed: its open operations stay pending for good.
    pub fn client_crashed(&mut self, node: NodeId) {
        let lost: Vec<(NodeId, OpId)> = self
            .open
            .keys()
            .filter(|(n, _)| *n == node)
            .copied()
            .collect();
        for k in lost {
            if let Some((c, _)) = self.open.remove(&k) {
                self.busy.remove(&c);
                self.counts.pending += 1;
                if let Err(e) = self.recorder.abandon(c) {
                    self.record_errors.push(e);
                }
            }
        }
        if self.consumed.contains_key(&node) {
            self.consumed.insert(node, 0);
        }
    }

    /// The history so far, without copying it.
    pub fn history_ref(&self) -> &[Operation<KvInput, KvOutput>] {
        self.recorder.operations()
    }
}
