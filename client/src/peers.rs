//! Address learning: actors name peers by [`NodeId`], the transport dials socket addresses.
//! The meta store's answers carry both (tablet locations with their node's address, node
//! records, the master lease), so a host learns where to dial by reading those answers as they
//! pass, before the actor sees them, and the actor's sends in the same turn find the peer.
//!
//! [`Learning`] wraps any cluster actor with this; the client actor uses [`PeerBook`] directly.
//!
//! Must not: change, drop or reorder messages, or resolve host names (a blocking DNS lookup
//! inside an actor turn would stall the loop): an address that is not `ip:port` is skipped.

use shale_actors::meta::{MetaMsg, MetaReply, Record};
use shale_actors::proto::admin::{AdminMsg, AdminReply};
use shale_actors::proto::ClusterMsg;
use shale_actors::{Actor, Addr, Ctx, JobError, JobId, NodeId, TimerId};
use shale_net::HostHandle;
use std::collections::HashMap;
use std::net::SocketAddr;
use tracing::debug;

/// The addresses a host has told its transport about, so repeats cost nothing.
pub struct PeerBook {
    handle: HostHandle<ClusterMsg>,
    known: HashMap<NodeId, SocketAddr>,
}

impl PeerBook {
    pub fn new(handle: HostHandle<ClusterMsg>) -> Self {
        Self {
            handle,
            known: HashMap::new(),
        }
    }

    /// Tell the transport about every (node, address) pair `msg` carries.
    pub fn learn(&mut self, msg: &ClusterMsg) {
        match msg {
            ClusterMsg::Meta(MetaMsg::Response(r)) => match &r.result {
                Ok(MetaReply::Locations(locs)) => {
                    for l in locs {
                        if let (Some(a), Some(addr)) = (l.assigned, &l.addr) {
                            self.note(a.node, addr);
                        }
                    }
                }
                Ok(MetaReply::Lease { lease, .. }) | Ok(MetaReply::LeaseState(Some(lease))) => {
                    self.note(lease.holder, &lease.addr)
                }
                Ok(MetaReply::Record(Some(v))) => self.note_record(&v.value),
                Ok(MetaReply::Records { records, .. }) => {
                    for v in records {
                        self.note_record(&v.value);
                    }
                }
                _ => {}
            },
            ClusterMsg::Admin(AdminMsg::Response(r)) => {
                if let Ok(AdminReply::Nodes(nodes)) = &r.result {
                    for n in nodes {
                        self.note(n.id, &n.addr);
                    }
                }
            }
            _ => {}
        }
    }

    fn note_record(&mut self, record: &Record) {
        if let Record::Node(n) = record {
            self.note(n.id, &n.addr);
        }
    }

    fn note(&mut self, node: NodeId, addr: &Addr) {
        let Ok(sock) = addr.0.parse::<SocketAddr>() else {
            debug!(%node, addr = %addr, "address is not ip:port; not dialable");
            return;
        };
        if self.known.get(&node) == Some(&sock) || node == self.handle.node() {
            return;
        }
        match self.handle.add_peer(node, sock) {
            Ok(()) => {
                debug!(%node, %sock, "learned a peer address");
                self.known.insert(node, sock);
            }
            Err(e) => debug!(%node, %sock, "peer not added: {e}"),
        }
    }
}

/// Any cluster actor, with the peer addresses its messages carry fed to its transport.
pub struct Learning<A> {
    pub inner: A,
    book: PeerBook,
}

impl<A> Learning<A> {
    pub fn new(inner: A, handle: HostHandle<ClusterMsg>) -> Self {
        Self {
            inner,
            book: PeerBook::new(handle),
        }
    }
}

impl<A: Actor<Msg = ClusterMsg>> Actor for Learning<A> {
    type Msg = ClusterMsg;
    type Timer = A::Timer;
    type JobOutput = A::JobOutput;

    fn on_start(&mut self, ctx: &mut Ctx<'_, Self>) {
        let inner = &mut self.inner;
        ctx.nest(|m| m, |t| t, |o| o, |c| inner.on_start(c));
    }
    fn on_msg(&mut self, from: NodeId, msg: ClusterMsg, ctx: &mut Ctx<'_, Self>) {
        self.book.learn(&msg);
        let inner = &mut self.inner;
        ctx.nest(|m| m, |t| t, |o| o, |c| inner.on_msg(from, msg, c));
    }
    fn on_timer(&mut self, id: TimerId, timer: A::Timer, ctx: &mut Ctx<'_, Self>) {
        let inner = &mut self.inner;
        ctx.nest(|m| m, |t| t, |o| o, |c| inner.on_timer(id, timer, c));
    }
    fn on_job_done(
        &mut self,
        id: JobId,
        result: Result<A::JobOutput, JobError>,
        ctx: &mut Ctx<'_, Self>,
    ) {
        let inner = &mut self.inner;
        ctx.nest(|m| m, |t| t, |o| o, |c| inner.on_job_done(id, result, c));
    }
}
