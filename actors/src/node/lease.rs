//! Registration, heartbeats and the node lease.
//!
//! Each incarnation registers anew and gets a new, larger epoch. The lease runs from when the
//! registration or heartbeat was *sent*, on this node's clock (the meta store counts from when
//! it received it, so the node always believes in a shorter lease than the store grants).
//! When the lease lapses the node stops serving, drops its tablets and registers again under
//! a new epoch; the master may reassign the tablets once the lease plus its margin is over.
//!
//! Must not: serve anything while the lease is not valid.

use super::actor::{NodeTimer, TabletNode};
use crate::kernel::{Ctx, Epoch, Time};
use crate::meta::{
    MetaCall, MetaError, MetaMsg, MetaReply, MetaRequest, MetaResponse, NodeStatus, RequestId,
};
use crate::proto::ClusterMsg;
use rand::Rng;
use std::time::Duration;
use tracing::{info, warn};

/// Unanswered heartbeats remembered; older ones are forgotten (their replies then count for
/// nothing, which can only shorten the lease).
const HEARTBEATS_PENDING_MAX: usize = 8;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reg {
    Idle,
    Registering { req: RequestId, sent_at: Time },
    Registered { epoch: Epoch, lease_until: Time },
}

impl TabletNode {
    /// Is the lease valid now? Only then does the node serve.
    pub(super) fn lease_valid(&self, now: Time) -> bool {
        #[cfg(feature = "planted-bugs")]
        if self.config.planted.lease_fencing_off && matches!(self.reg, Reg::Registered { .. }) {
            return true;
        }
        matches!(self.reg, Reg::Registered { lease_until, .. } if now < lease_until)
    }

    pub(super) fn start_registration(&mut self, ctx: &mut Ctx<'_, Self>) {
        if self.next_req == 0 {
            // Request ids must not repeat across incarnations (the meta store remembers
            // registrations by id): start each incarnation at a random high base.
            self.next_req = u64::from(ctx.rng().gen::<u32>()) << 32;
        }
        let req = self.next_request_id();
        let sent_at = ctx.now();
        self.reg = Reg::Registering { req, sent_at };
        self.heartbeats.clear();
        self.send_registration(req, ctx);
    }

    fn send_registration(&mut self, req: RequestId, ctx: &mut Ctx<'_, Self>) {
        let call = MetaCall::RegisterNode {
            name: self.config.name.clone(),
            addr: self.config.addr.clone(),
            total_disk_bytes: self.config.total_disk_bytes,
        };
        ctx.send(
            self.config.meta,
            ClusterMsg::Meta(MetaMsg::Request(MetaRequest { id: req, call })),
        );
        ctx.set_timer(
            self.config.register_retry_interval,
            NodeTimer::RegisterRetry(req),
        );
    }

    pub(super) fn on_register_retry(&mut self, req: RequestId, ctx: &mut Ctx<'_, Self>) {
        if let Reg::Registering { req: r, .. } = self.reg {
            if r == req {
                // Same id: the meta store answers a retry with the original epoch. The lease
                // still counts from the first send, which is never later than the truth.
                ctx.mark("node.register_retried");
                self.send_registration(req, ctx);
            }
        }
    }

    pub(super) fn send_heartbeat(&mut self, ctx: &mut Ctx<'_, Self>) {
        let Reg::Registered { epoch, .. } = self.reg else {
            return;
        };
        let req = self.next_request_id();
        while self.heartbeats.len() >= HEARTBEATS_PENDING_MAX {
            self.heartbeats.pop_first();
        }
        self.heartbeats.insert(req, ctx.now());
        let call = MetaCall::Heartbeat {
            epoch,
            status: NodeStatus::Up,
        };
        ctx.send(
            self.config.meta,
            ClusterMsg::Meta(MetaMsg::Request(MetaRequest { id: req, call })),
        );
    }

    /// Report used disk (fire and forget: a lost report is replaced by the next one, and
    /// the answer, matched to no heartbeat, is dropped in `on_meta_response`).
    pub(super) fn send_storage_report(&mut self, ctx: &mut Ctx<'_, Self>) {
        if !matches!(self.reg, Reg::Registered { .. }) {
            return;
        }
        let used_disk_bytes = self.config.used_disk_bytes.unwrap_or_else(|| {
            self.tablets
                .values()
                .filter_map(|s| s.tablet.as_ref())
                .map(|t| super::control::size_of(t))
                .fold(0u64, u64::saturating_add)
        });
        let req = self.next_request_id();
        let call = MetaCall::ReportStorage {
            node: ctx.me(),
            used_disk_bytes,
        };
        self.counters.storage_reports += 1;
        ctx.send(
            self.config.meta,
            ClusterMsg::Meta(MetaMsg::Request(MetaRequest { id: req, call })),
        );
    }

    pub(super) fn on_meta_response(&mut self, resp: MetaResponse, ctx: &mut Ctx<'_, Self>) {
        match (self.reg, resp.result) {
            (Reg::Registering { req, sent_at }, result) if req == resp.id => match result {
                Ok(MetaReply::Registered {
                    epoch, lease_ms, ..
                }) => {
                    let lease_until = sent_at.plus(Duration::from_millis(lease_ms));
                    info!(node = %self.config.name, %epoch, "registered");
                    self.counters.registrations += 1;
                    self.reg = Reg::Registered { epoch, lease_until };
                    self.arm_lease_check(ctx);
                }
                Ok(other) => warn!(?other, "unexpected answer to a registration"),
                Err(e) => {
                    // Busy, unavailable, or a conflict with our own previous incarnation still
                    // marked up: try again with a fresh request after the retry interval. A
                    // store that is still loading (every cluster start) or busy is expected,
                    // not worth a warning.
                    if matches!(e, MetaError::Unavailable | MetaError::Busy) {
                        info!(error = %e, "registration refused; retrying");
                    } else {
                        warn!(error = %e, "registration refused; retrying");
                    }
                    ctx.mark("node.register_refused");
                    self.reg = Reg::Idle;
                    let retry = self.next_request_id();
                    self.reg = Reg::Registering {
                        req: retry,
                        sent_at: ctx.now(),
                    };
                    ctx.set_timer(
                        self.config.register_retry_interval,
                        NodeTimer::RegisterRetry(retry),
                    );
                }
            },
            (Reg::Registered { epoch, lease_until }, result) => {
                let Some(sent_at) = self.heartbeats.remove(&resp.id) else {
                    return;
                };
                match result {
                    Ok(MetaReply::HeartbeatAck { lease_ms }) => {
                        let until = sent_at.plus(Duration::from_millis(lease_ms));
                        if until > lease_until {
                            self.reg = Reg::Registered {
                                epoch,
                                lease_until: until,
                            };
                        }
                    }
                    Err(MetaError::NodeUnknown { .. } | MetaError::NodeDown(_)) => {
                        // The store no longer knows this incarnation: stop serving at once.
                        warn!(node = %self.config.name, %epoch, "meta store dropped this node");
                        ctx.mark("node.registration_lost");
                        self.lapse(ctx);
                    }
                    Ok(other) => warn!(?other, "unexpected answer to a heartbeat"),
                    Err(e) => warn!(error = %e, "heartbeat refused"),
                }
            }
            _ => {}
        }
    }

    fn arm_lease_check(&mut self, ctx: &mut Ctx<'_, Self>) {
        if let Reg::Registered { lease_until, .. } = self.reg {
            if let Some(t) = self.lease_timer.take() {
                ctx.cancel_timer(t);
            }
            let after = lease_until.since(ctx.now());
            self.lease_timer = Some(ctx.set_timer(after, NodeTimer::LeaseCheck));
        }
    }

    pub(super) fn on_lease_check(&mut self, ctx: &mut Ctx<'_, Self>) {
        self.lease_timer = None;
        #[cfg(feature = "planted-bugs")]
        if self.config.planted.lease_fencing_off {
            return;
        }
        match self.reg {
            Reg::Registered { lease_until, .. } if ctx.now() >= lease_until => {
                warn!(node = %self.config.name, "lease lapsed; stopping service");
                ctx.mark("node.lease_lapsed");
                self.lapse(ctx);
            }
            // Renewed meanwhile: check again at the new expiry. One check is armed per
            // registration, so checks never pile up.
            Reg::Registered { .. } => self.arm_lease_check(ctx),
            _ => {}
        }
    }

    /// The lease is gone: drop every tablet and register again (a new epoch).
    fn lapse(&mut self, ctx: &mut Ctx<'_, Self>) {
        self.counters.lease_lapses += 1;
        self.drop_all_tablets(ctx);
        self.start_registration(ctx);
    }
}
