//! The cluster's one actor type: [`ClusterNode`] wraps whichever role a process runs (meta
//! store, master, tablet node, client), so a host runs one
//! actor with `Msg = ClusterMsg` per process.
//!
//! Each role keeps its own timer and job types; they are lifted into [`ClusterTimer`] and
//! [`ClusterJob`] through `Ctx::nest`, so timer and job ids stay unique across roles. A message,
//! timer or job result of the wrong kind for the role is logged and dropped, never a panic.
//!
//! Must not: contain role behaviour; it only routes.

use crate::client::{ClientError, ClientRole, ClientTimer, OpId, OpInput};
use crate::kernel::{Actor, Ctx, JobError, JobId, NodeId, TimerId};
use crate::master::{Master, MasterJobOutput, MasterTimer};
use crate::meta::{MetaJobOutput, MetaMsg, MetaStore, MetaTimer};
use crate::node::{NodeJobOutput, NodeTimer, TabletNode};
use crate::proto::ClusterMsg;
use tracing::debug;

/// One process's role.
pub enum ClusterNode {
    Meta(MetaStore),
    Master(Master),
    Node(TabletNode),
    Client(ClientRole),
}

#[derive(Clone, Debug)]
pub enum ClusterTimer {
    Meta(MetaTimer),
    Master(MasterTimer),
    Node(NodeTimer),
    Client(ClientTimer),
}

#[derive(Debug)]
pub enum ClusterJob {
    Meta(MetaJobOutput),
    Master(MasterJobOutput),
    Node(NodeJobOutput),
    Client(()),
}

fn meta_msg(m: MetaMsg) -> ClusterMsg {
    ClusterMsg::Meta(m)
}
fn same(m: ClusterMsg) -> ClusterMsg {
    m
}

impl ClusterNode {
    pub fn role(&self) -> &'static str {
        match self {
            ClusterNode::Meta(_) => "meta",
            ClusterNode::Master(_) => "master",
            ClusterNode::Node(_) => "node",
            ClusterNode::Client(_) => "client",
        }
    }
    pub fn as_meta(&self) -> Option<&MetaStore> {
        match self {
            ClusterNode::Meta(m) => Some(m),
            _ => None,
        }
    }
    pub fn as_master(&self) -> Option<&Master> {
        match self {
            ClusterNode::Master(m) => Some(m),
            _ => None,
        }
    }
    pub fn as_node(&self) -> Option<&TabletNode> {
        match self {
            ClusterNode::Node(n) => Some(n),
            _ => None,
        }
    }
    pub fn as_client(&self) -> Option<&ClientRole> {
        match self {
            ClusterNode::Client(c) => Some(c),
            _ => None,
        }
    }

    /// Start a client operation (from a test or workload driving this process). `None` if
    /// this process is not a client.
    pub fn start_op(
        &mut self,
        input: OpInput,
        ctx: &mut Ctx<'_, Self>,
    ) -> Option<Result<OpId, ClientError>> {
        let ClusterNode::Client(role) = self else {
            return None;
        };
        Some(
            ctx.nest(same, ClusterTimer::Client, ClusterJob::Client, |c| {
                role.start(input, c)
            }),
        )
    }
}

impl Actor for ClusterNode {
    type Msg = ClusterMsg;
    type Timer = ClusterTimer;
    type JobOutput = ClusterJob;

    fn on_start(&mut self, ctx: &mut Ctx<'_, Self>) {
        match self {
            ClusterNode::Meta(m) => ctx.nest(meta_msg, ClusterTimer::Meta, ClusterJob::Meta, |c| {
                m.on_start(c)
            }),
            ClusterNode::Master(m) => {
                ctx.nest(same, ClusterTimer::Master, ClusterJob::Master, |c| {
                    m.on_start(c)
                })
            }
            ClusterNode::Node(n) => ctx.nest(same, ClusterTimer::Node, ClusterJob::Node, |c| {
                n.on_start(c)
            }),
            ClusterNode::Client(r) => {
                ctx.nest(same, ClusterTimer::Client, ClusterJob::Client, |c| {
                    r.on_start(c)
                })
            }
        }
    }

    fn on_msg(&mut self, from: NodeId, msg: ClusterMsg, ctx: &mut Ctx<'_, Self>) {
        match (self, msg) {
            (ClusterNode::Meta(m), ClusterMsg::Meta(mm)) => {
                ctx.nest(meta_msg, ClusterTimer::Meta, ClusterJob::Meta, |c| {
                    m.on_msg(from, mm, c)
                })
            }
            (ClusterNode::Master(m), msg) => {
                ctx.nest(same, ClusterTimer::Master, ClusterJob::Master, |c| {
                    m.on_msg(from, msg, c)
                })
            }
            (ClusterNode::Node(n), msg) => {
                ctx.nest(same, ClusterTimer::Node, ClusterJob::Node, |c| {
                    n.on_msg(from, msg, c)
                })
            }
            (ClusterNode::Client(r), msg) => {
                ctx.nest(same, ClusterTimer::Client, ClusterJob::Client, |c| {
                    r.on_msg(from, msg, c)
                })
            }
            (node, msg) => {
                debug!(role = node.role(), %from, ?msg, "message of the wrong kind dropped")
            }
        }
    }

    fn on_timer(&mut self, id: TimerId, timer: ClusterTimer, ctx: &mut Ctx<'_, Self>) {
        match (self, timer) {
            (ClusterNode::Meta(m), ClusterTimer::Meta(t)) => {
                ctx.nest(meta_msg, ClusterTimer::Meta, ClusterJob::Meta, |c| {
                    m.on_timer(id, t, c)
                })
            }
            (ClusterNode::Master(m), ClusterTimer::Master(t)) => {
                ctx.nest(same, ClusterTimer::Master, ClusterJob::Master, |c| {
                    m.on_timer(id, t, c)
                })
            }
            (ClusterNode::Node(n), ClusterTimer::Node(t)) => {
                ctx.nest(same, ClusterTimer::Node, ClusterJob::Node, |c| {
                    n.on_timer(id, t, c)
                })
            }
            (ClusterNode::Client(r), ClusterTimer::Client(t)) => {
                ctx.nest(same, ClusterTimer::Client, ClusterJob::Client, |c| {
                    r.on_timer(id, t, c)
                })
            }
            (node, timer) => debug!(
                role = node.role(),
                ?timer,
                "timer of the wrong kind dropped"
            ),
        }
    }

    fn on_job_done(
        &mut self,
        id: JobId,
        result: Result<ClusterJob, JobError>,
        ctx: &mut Ctx<'_, Self>,
    ) {
        // A host failure carries no output, so it goes to whichever role this process runs.
        match (self, result) {
            (ClusterNode::Meta(m), Ok(ClusterJob::Meta(o))) => {
                ctx.nest(meta_msg, ClusterTimer::Meta, ClusterJob::Meta, |c| {
                    m.on_job_done(id, Ok(o), c)
                })
            }
            (ClusterNode::Meta(m), Err(e)) => {
                ctx.nest(meta_msg, ClusterTimer::Meta, ClusterJob::Meta, |c| {
                    m.on_job_done(id, Err(e), c)
                })
            }
            (ClusterNode::Master(m), Ok(ClusterJob::Master(o))) => {
                ctx.nest(same, ClusterTimer::Master, ClusterJob::Master, |c| {
                    m.on_job_done(id, Ok(o), c)
                })
            }
            (ClusterNode::Master(m), Err(e)) => {
                ctx.nest(same, ClusterTimer::Master, ClusterJob::Master, |c| {
                    m.on_job_done(id, Err(e), c)
                })
            }
            (ClusterNode::Node(n), Ok(ClusterJob::Node(o))) => {
                ctx.nest(same, ClusterTimer::Node, ClusterJob::Node, |c| {
                    n.on_job_done(id, Ok(o), c)
                })
            }
            (ClusterNode::Node(n), Err(e)) => {
                ctx.nest(same, ClusterTimer::Node, ClusterJob::Node, |c| {
                    n.on_job_done(id, Err(e), c)
                })
            }
            (ClusterNode::Client(_), _) => {}
            (node, result) => {
                debug!(
                    role = node.role(),
                    ?result,
                    "job result of the wrong kind dropped"
                )
            }
        }
    }
}

#[cfg(test)]
mod tests;
