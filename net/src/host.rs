//! The async host: runs one [`Actor`] on the transport, on tokio in production and inside madsim
//! under `--cfg madsim`.
//!
//! One loop per actor. The transport's reader tasks feed a bounded inbox channel (never a
//! socket read inside `select!`: only cancel-safe channel receives and timers are raced). Each
//! turn the loop waits for the first of: the stop signal, the next timer deadline, a finished
//! job, an incoming message; calls the actor once with a fresh [`Ctx`]; then carries out the
//! effects the actor pushed: sends go to the transport, timers into a deadline-ordered map,
//! jobs onto a blocking thread (a plain task under madsim, which has no blocking pool).
//!
//! A job marked [`JobSpec::cheap`] (a point read) runs inline instead when
//! [`HostConfig::inline_cheap_jobs`] is on: handing a few-microsecond read to the blocking
//! pool and back costs two thread wake-ups, more than the read itself. Its result still comes
//! back as its own `on_job_done` turn, before the loop waits for anything else.
//!
//! `ctx.now` is the system clock (simulated under madsim); the RNG is seeded from the config, or
//! from OS entropy when no seed is given (madsim makes that deterministic too).
//!
//! Code outside the actor (a client library, the CLI) runs work *on* the actor through an
//! [`Invoker`]: the closure gets the actor and a real [`Ctx`] on the loop's own turn, and its
//! effects are carried out like any handler's (the simulator's `Sim::invoke` is the same idea).
//!
//! Owns: the event loop, timers, job dispatch, the stop/inject handle, invocations.
//! Must not: interpret messages, or let a slow or panicking job block or kill the loop.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use shale_actors::kernel::IdGen;
use shale_actors::{Actor, Ctx, Effect, Epoch, JobError, JobId, JobSpec, NodeId, Time, TimerId};
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tracing::{debug, error, info, warn};

use crate::transport::{Identity, NetStats, PeerError, SendError, Transport};
use crate::wire::{ClusterId, Envelope, NetConfig};

/// How to run one host.
#[derive(Clone, Debug)]
pub struct HostConfig {
    pub cluster: ClusterId,
    pub node: NodeId,
    /// This incarnation's epoch; a restarted node must come back with a larger one.
    pub epoch: Epoch,
    /// Address to accept connections on (port 0 picks one); `None` for a dial-only client.
    pub listen: Option<SocketAddr>,
    /// Initial peer table; extend it at runtime with [`HostHandle::add_peer`].
    pub peers: BTreeMap<NodeId, SocketAddr>,
    /// Seed for the actor's RNG and the transport's jitter; `None` draws one from the OS.
    pub rng_seed: Option<u64>,
    pub net: NetConfig,
    /// Timers pending at once; more are dropped with an error log (an actor bug).
    pub timers_len_max: usize,
    /// Timers fired in one go before other events get a turn.
    pub timers_fired_per_turn_max: usize,
    /// Jobs running at once; more fail at once with [`JobError::Aborted`].
    pub jobs_in_flight_max: usize,
    /// Invocations queued and not yet run; beyond it [`Invoker::invoke`] says `Full`.
    pub invocations_len_max: usize,
    /// Run jobs marked cheap on the loop's own thread (see the module docs). Off, every job
    /// goes to the blocking pool.
    pub inline_cheap_jobs: bool,
}

impl HostConfig {
    pub fn new(cluster: ClusterId, node: NodeId, epoch: Epoch) -> Self {
        Self {
            cluster,
            node,
            epoch,
            listen: None,
            peers: BTreeMap::new(),
            rng_seed: None,
            net: NetConfig::default(),
            timers_len_max: 65_536,
            timers_fired_per_turn_max: 1024,
            jobs_in_flight_max: 256,
            invocations_len_max: 1024,
            inline_cheap_jobs: true,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum HostError {
    #[error("cannot listen on {addr:?}: {source}")]
    Listen {
        addr: Option<SocketAddr>,
        source: std::io::Error,
    },
}

/// Why [`HostHandle::inject`] did not deliver.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InjectError {
    #[error("the host's inbox is full (inbox_len_max)")]
    Full,
    #[error("the host has stopped")]
    Stopped,
}

/// Controls a running host from outside: stop it, inject messages, manage peers. Cloneable;
/// when the last clone is dropped the host stops.
pub struct HostHandle<M> {
    node: NodeId,
    local_addr: Option<SocketAddr>,
    transport: Transport<M>,
    inject: mpsc::Sender<Envelope<M>>,
    stop: Arc<watch::Sender<bool>>,
}

impl<M> Clone for HostHandle<M> {
    fn clone(&self) -> Self {
        Self {
            node: self.node,
            local_addr: self.local_addr,
            transport: self.transport.clone(),
            inject: self.inject.clone(),
            stop: self.stop.clone(),
        }
    }
}

impl<M> HostHandle<M>
where
    M: serde::Serialize + serde::de::DeserializeOwned + Send + 'static,
{
    pub fn node(&self) -> NodeId {
        self.node
    }
    /// The address the host accepts connections on (with the real port if 0 was asked for).
    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.local_addr
    }
    /// Ask the host to stop: its loop ends, connections close, `run` returns the actor.
    pub fn stop(&self) {
        self.stop.send_replace(true);
    }
    /// Deliver `msg` to the actor as if `from` had sent it. Does not wait.
    pub fn inject(&self, from: NodeId, msg: M) -> Result<(), InjectError> {
        self.inject
            .try_send(Envelope { from, msg })
            .map_err(|e| match e {
                mpsc::error::TrySendError::Full(_) => InjectError::Full,
                mpsc::error::TrySendError::Closed(_) => InjectError::Stopped,
            })
    }
    /// Send `msg` to `to` from this host's node, as the actor would.
    pub fn send(&self, to: NodeId, msg: M) -> Result<(), SendError> {
        self.transport.send(to, msg)
    }
    pub fn add_peer(&self, node: NodeId, addr: SocketAddr) -> Result<(), PeerError> {
        self.transport.add_peer(node, addr)
    }
    pub fn stats(&self) -> NetStats {
        self.transport.stats()
    }
}

type JobDone<O> = (JobId, Result<O, JobError>);

/// Work to run on the actor's own turn, with a real context.
pub type Invocation<A> = Box<dyn FnOnce(&mut A, &mut Ctx<'_, A>) + Send>;

/// Runs closures on a host's actor from outside (see the module docs). Cloneable. It does not
/// keep the host alive: once every [`HostHandle`] is gone the host stops and calls fail with
/// [`InjectError::Stopped`].
pub struct Invoker<A: Actor> {
    tx: mpsc::Sender<Invocation<A>>,
}

impl<A: Actor> Clone for Invoker<A> {
    fn clone(&self) -> Self {
        Self {
            tx: self.tx.clone(),
        }
    }
}

impl<A: Actor> Invoker<A> {
    /// Queue `f` to run on the actor's next turn. Does not wait.
    pub fn invoke(
        &self,
        f: impl FnOnce(&mut A, &mut Ctx<'_, A>) + Send + 'static,
    ) -> Result<(), InjectError> {
        self.tx.try_send(Box::new(f)).map_err(|e| match e {
            mpsc::error::TrySendError::Full(_) => InjectError::Full,
            mpsc::error::TrySendError::Closed(_) => InjectError::Stopped,
        })
    }

    /// Run `f` on the actor and wait for what it returns. `Stopped` if the host ended first.
    pub async fn call<R: Send + 'static>(
        &self,
        f: impl FnOnce(&mut A, &mut Ctx<'_, A>) -> R + Send + 'static,
    ) -> Result<R, InjectError> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.invoke(move |a, ctx| {
            // The caller may have given up waiting; the work is done either way.
            let _ = tx.send(f(a, ctx));
        })?;
        rx.await.map_err(|_| InjectError::Stopped)
    }
}

/// One actor's host. Build it with [`Host::start`], then `run` it to completion.
pub struct Host<A: Actor> {
    me: NodeId,
    cfg: HostConfig,
    transport: Transport<A::Msg>,
    inbox: mpsc::Receiver<Envelope<A::Msg>>,
    stop: watch::Receiver<bool>,
    rng: ChaCha8Rng,
    ids: IdGen,
    out: Vec<Effect<A>>,
    timers: BTreeMap<(Instant, TimerId), A::Timer>,
    timer_deadlines: HashMap<TimerId, Instant>,
    jobs_tx: mpsc::UnboundedSender<JobDone<A::JobOutput>>,
    jobs_rx: mpsc::UnboundedReceiver<JobDone<A::JobOutput>>,
    jobs_in_flight: usize,
    /// Results of jobs run inline, delivered at the top of the next loop iteration.
    jobs_done_inline: VecDeque<JobDone<A::JobOutput>>,
    calls_tx: mpsc::Sender<Invocation<A>>,
    calls_rx: mpsc::Receiver<Invocation<A>>,
}

/// Start a host in its own task. The task's output is the actor once the host has stopped.
pub async fn spawn_host<A>(
    actor: A,
    cfg: HostConfig,
) -> Result<(HostHandle<A::Msg>, JoinHandle<A>), HostError>
where
    A: Actor + Send,
{
    let (host, handle) = Host::start(cfg).await?;
    Ok((handle, tokio::spawn(host.run(actor))))
}

/// [`spawn_host`], also returning an [`Invoker`] for running work on the actor.
pub async fn spawn_host_with_invoker<A>(
    actor: A,
    cfg: HostConfig,
) -> Result<(HostHandle<A::Msg>, Invoker<A>, JoinHandle<A>), HostError>
where
    A: Actor + Send,
{
    let (host, handle) = Host::start(cfg).await?;
    let invoker = host.invoker();
    Ok((handle, invoker, tokio::spawn(host.run(actor))))
}

impl<A: Actor> Host<A> {
    /// Bind the listener and start the transport. The actor does not run until [`Host::run`].
    pub async fn start(cfg: HostConfig) -> Result<(Self, HostHandle<A::Msg>), HostError> {
        let mut rng = match cfg.rng_seed {
            Some(seed) => ChaCha8Rng::seed_from_u64(seed),
            None => ChaCha8Rng::from_entropy(),
        };
        let identity = Identity {
            cluster: cfg.cluster.clone(),
            node: cfg.node,
            epoch: cfg.epoch,
        };
        let (inbox_tx, inbox) = mpsc::channel(cfg.net.inbox_len_max.max(1));
        let transport_seed = rng.gen::<u64>();
        let (transport, local_addr) = Transport::start(
            identity,
            cfg.net.clone(),
            cfg.listen,
            cfg.peers.clone(),
            inbox_tx.clone(),
            transport_seed,
        )
        .await
        .map_err(|source| HostError::Listen {
            addr: cfg.listen,
            source,
        })?;
        let (stop_tx, stop) = watch::channel(false);
        let (jobs_tx, jobs_rx) = mpsc::unbounded_channel();
        let (calls_tx, calls_rx) = mpsc::channel(cfg.invocations_len_max.max(1));
        let handle = HostHandle {
            node: cfg.node,
            local_addr,
            transport: transport.clone(),
            inject: inbox_tx,
            stop: Arc::new(stop_tx),
        };
        let host = Self {
            me: cfg.node,
            cfg,
            transport,
            inbox,
            stop,
            rng,
            ids: IdGen::new(),
            out: Vec::new(),
            timers: BTreeMap::new(),
            timer_deadlines: HashMap::new(),
            jobs_tx,
            jobs_rx,
            jobs_in_flight: 0,
            jobs_done_inline: VecDeque::new(),
            calls_tx,
            calls_rx,
        };
        Ok((host, handle))
    }

    /// A new [`Invoker`] for this host's actor.
    pub fn invoker(&self) -> Invoker<A> {
        Invoker {
            tx: self.calls_tx.clone(),
        }
    }

    /// Run `actor` until stopped (by [`HostHandle::stop`] or dropping every handle); returns it.
    pub async fn run(mut self, mut actor: A) -> A {
        info!(node = %self.me, epoch = %self.cfg.epoch, "host running");
        self.turn(&mut actor, |a, ctx| a.on_start(ctx));
        // Futures that live across turns are built once: the stop signal's and the timer's.
        // Rebuilding them every turn costs a registration (and a lock) per message.
        let mut stop_rx = self.stop.clone();
        let stopped = stop_rx.wait_for(|stop| *stop);
        tokio::pin!(stopped);
        // One timer future for the loop's life, moved only when the earliest deadline changes:
        // building a fresh one every turn costs a timer-wheel registration per message.
        let wake = tokio::time::sleep_until(Instant::now());
        tokio::pin!(wake);
        let mut armed: Option<Instant> = None;
        loop {
            if let Some((id, result)) = self.jobs_done_inline.pop_front() {
                if *self.stop.borrow() {
                    break;
                }
                self.jobs_in_flight = self.jobs_in_flight.saturating_sub(1);
                self.turn(&mut actor, |a, ctx| a.on_job_done(id, result, ctx));
                continue;
            }
            let next_deadline = self.timers.keys().next().map(|(deadline, _)| *deadline);
            if next_deadline != armed {
                if let Some(at) = next_deadline {
                    wake.as_mut().reset(at);
                }
                armed = next_deadline;
            }
            tokio::select! {
                biased;
                _ = &mut stopped => break,
                // Disabled while no timer is pending.
                _ = &mut wake, if armed.is_some() => {
                    // Fired: re-arm on the next turn even if the earliest deadline is the same
                    // (some due timers may wait for the next turn under the per-turn cap).
                    armed = None;
                    self.fire_due_timers(&mut actor);
                }
                Some((id, result)) = self.jobs_rx.recv() => {
                    self.jobs_in_flight = self.jobs_in_flight.saturating_sub(1);
                    self.turn(&mut actor, |a, ctx| a.on_job_done(id, result, ctx));
                }
                Some(call) = self.calls_rx.recv() => {
                    self.turn(&mut actor, call);
                }
                Some(Envelope { from, msg }) = self.inbox.recv() => {
                    self.turn(&mut actor, |a, ctx| a.on_msg(from, msg, ctx));
                }
                else => break,
            }
        }
        info!(node = %self.me, "host stopping");
        self.transport.shutdown();
        actor
    }

    /// Call the actor once, then carry out what it asked for.
    fn turn(&mut self, actor: &mut A, f: impl FnOnce(&mut A, &mut Ctx<'_, A>)) {
        let mut ctx = Ctx::new(
            self.me,
            wall_clock(),
            &mut self.rng,
            &mut self.ids,
            &mut self.out,
        );
        f(actor, &mut ctx);
        let mut effects = std::mem::take(&mut self.out);
        for effect in effects.drain(..) {
            self.apply(effect);
        }
        self.out = effects;
    }

    fn apply(&mut self, effect: Effect<A>) {
        match effect {
            Effect::Send { to, msg } => match self.transport.send(to, msg) {
                Ok(()) => {}
                Err(SendError::ShutDown) => {
                    debug!(node = %self.me, %to, "dropped a send: shutting down")
                }
                Err(e) => warn!(node = %self.me, %to, "dropped a send: {e}"),
            },
            Effect::SetTimer { id, after, timer } => self.set_timer(id, after, timer),
            Effect::CancelTimer { id } => {
                if let Some(deadline) = self.timer_deadlines.remove(&id) {
                    self.timers.remove(&(deadline, id));
                }
            }
            Effect::StartJob { id, spec, work } => self.start_job(id, spec, work),
        }
    }

    fn set_timer(&mut self, id: TimerId, after: Duration, timer: A::Timer) {
        if self.timers.len() >= self.cfg.timers_len_max {
            error!(node = %self.me, limit = self.cfg.timers_len_max, ?timer, "timer dropped: timers_len_max reached");
            return;
        }
        let Some(deadline) = Instant::now().checked_add(after) else {
            error!(node = %self.me, ?after, ?timer, "timer dropped: deadline out of range");
            return;
        };
        if let Some(old) = self.timer_deadlines.insert(id, deadline) {
            self.timers.remove(&(old, id));
        }
        self.timers.insert((deadline, id), timer);
    }

    fn fire_due_timers(&mut self, actor: &mut A) {
        for _ in 0..self.cfg.timers_fired_per_turn_max.max(1) {
            let now = Instant::now();
            let Some(entry) = self.timers.first_entry() else {
                return;
            };
            if entry.key().0 > now {
                return;
            }
            let ((_, id), timer) = entry.remove_entry();
            self.timer_deadlines.remove(&id);
            self.turn(actor, |a, ctx| a.on_timer(id, timer, ctx));
        }
    }

    fn start_job(
        &mut self,
        id: JobId,
        spec: JobSpec,
        work: shale_actors::kernel::JobFn<A::JobOutput>,
    ) {
        let done = self.jobs_tx.clone();
        self.jobs_in_flight += 1;
        if self.jobs_in_flight > self.cfg.jobs_in_flight_max {
            warn!(node = %self.me, job = spec.label, limit = self.cfg.jobs_in_flight_max, "job refused: jobs_in_flight_max reached");
            let refused = Err(JobError::Aborted(format!(
                "jobs_in_flight_max ({}) reached",
                self.cfg.jobs_in_flight_max
            )));
            // The receiver lives in `self`, so this cannot fail while the loop runs.
            let _ = done.send((id, refused));
            return;
        }
        debug!(node = %self.me, job = spec.label, id = id.0, "job started");
        if spec.cheap && self.cfg.inline_cheap_jobs {
            self.jobs_done_inline
                .push_back((id, run_job(spec.label, work)));
            return;
        }
        run_blocking(move || {
            // A stopped host no longer listens; the result has nowhere to go.
            let _ = done.send((id, run_job(spec.label, work)));
        });
    }
}

/// Run a job's closure, turning a panic into [`JobError::Aborted`].
fn run_job<O>(label: &str, work: impl FnOnce() -> O) -> Result<O, JobError> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(work)).map_err(|panic| {
        JobError::Aborted(format!("job {label} panicked: {}", panic_text(&*panic)))
    })
}

impl<A: Actor> Drop for Host<A> {
    /// A host dropped without running (or unwound by a panicking actor) still closes its
    /// connections and stops its transport tasks.
    fn drop(&mut self) {
        self.transport.shutdown();
    }
}

/// Run slow synchronous work off the event loop.
#[cfg(not(madsim))]
fn run_blocking(f: impl FnOnce() + Send + 'static) {
    drop(tokio::task::spawn_blocking(f));
}

/// Madsim has no blocking pool (its `spawn_blocking` is deprecated and runs inline); a task on
/// the node keeps the job inside the simulation, killed with the node.
#[cfg(madsim)]
fn run_blocking(f: impl FnOnce() + Send + 'static) {
    drop(tokio::task::spawn(async move { f() }));
}

fn panic_text(panic: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = panic.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = panic.downcast_ref::<String>() {
        s.clone()
    } else {
        "non-string panic payload".to_string()
    }
}

/// This node's wall clock as actor time (simulated under madsim).
pub fn wall_clock() -> Time {
    match SystemTime::now().duration_since(UNIX_EPOCH) {
        Ok(d) => Time(u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)),
        Err(_) => Time::ZERO,
    }
}

#[cfg(test)]
#[path = "host_tests.rs"]
mod tests;
