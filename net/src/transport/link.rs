//! An outbound link: our own connection to one peer from the peer table, redialled after every
//! failure with exponential backoff (bounded by `reconnect_backoff_max_ms`, jittered from a
//! seeded RNG so a restarted cluster does not reconnect in lockstep).
//!
//! The link owns the peer's queue across reconnects, so messages sent while the peer is away
//! wait (up to `outbound_queue_len_max`) and go out once it is back.
//!
//! Must not: spin without sleeping, or outlive the transport's shutdown.

use rand::Rng;
use rand_chacha::ChaCha8Rng;
use shale_actors::NodeId;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tracing::{debug, info, warn};

use super::conn::{dial, serve, ConnError};
use super::{bump, Shared};
use crate::wire::NetConfig;

/// Consecutive failures after which the delay stops growing (2^20 × min is past any max).
const BACKOFF_DOUBLINGS_MAX: u32 = 20;

/// The delay before redial number `failures` (0 after a connection that worked): the minimum
/// doubled per failure, capped at the maximum, then jittered down by up to half.
pub(crate) fn backoff_delay(cfg: &NetConfig, failures: u32, rng: &mut ChaCha8Rng) -> Duration {
    let doublings = failures.min(BACKOFF_DOUBLINGS_MAX);
    let min = cfg.reconnect_backoff_min_ms.max(1);
    let max = cfg.reconnect_backoff_max_ms.max(min);
    let base = min.saturating_mul(1u64 << doublings).min(max);
    Duration::from_millis(rng.gen_range(base / 2..=base))
}

pub(crate) async fn run_link<T>(
    s: Arc<Shared<T>>,
    peer: NodeId,
    mut queue: mpsc::Receiver<T>,
    mut rng: ChaCha8Rng,
) where
    T: serde::Serialize + serde::de::DeserializeOwned + Send + 'static,
{
    let me = s.me.node;
    let mut shutdown = s.shutdown.subscribe();
    let mut failures: u32 = 0;
    loop {
        let Some(addr) = s.peer_addr(peer) else {
            warn!(%me, %peer, "peer left the table; link stops");
            return;
        };
        // Cancelling a dial on shutdown only drops a half-open socket; nothing is lost.
        let dialed = tokio::select! {
            biased;
            _ = shutdown.wait_for(|stop| *stop) => return,
            dialed = dial(&s, peer, addr) => dialed,
        };
        match dialed {
            Ok(stream) => {
                failures = 0;
                bump(&s.counters.connections_dialed);
                info!(%me, %peer, %addr, "connected");
                match serve(&s, stream, peer, &mut queue).await {
                    ConnError::Shutdown => return,
                    why if why.is_bad_frame() => {
                        bump(&s.counters.bad_frames);
                        warn!(%me, %peer, %addr, "closing link: {why}");
                    }
                    why => info!(%me, %peer, %addr, "link lost: {why}"),
                }
            }
            Err(why) => {
                if matches!(why, ConnError::Refused(_) | ConnError::RefusedByPeer(_)) {
                    bump(&s.counters.handshakes_refused);
                    warn!(%me, %peer, %addr, "handshake failed: {why}");
                } else if why.is_bad_frame() {
                    bump(&s.counters.bad_frames);
                    warn!(%me, %peer, %addr, "handshake failed: {why}");
                } else if failures == 0 {
                    info!(%me, %peer, %addr, "cannot connect: {why}");
                } else {
                    debug!(%me, %peer, %addr, failures, "cannot connect: {why}");
                }
                failures = failures.saturating_add(1);
            }
        }
        let delay = backoff_delay(&s.cfg, failures, &mut rng);
        tokio::select! {
            biased;
            _ = shutdown.wait_for(|stop| *stop) => return,
            _ = tokio::time::sleep(delay) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn backoff_doubles_up_to_the_cap_with_jitter() {
        let cfg = NetConfig {
            reconnect_backoff_min_ms: 10,
            reconnect_backoff_max_ms: 1000,
            ..NetConfig::default()
        };
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        for failures in 0..40u32 {
            let want = (10u64 << failures.min(20)).min(1000);
            for _ in 0..20 {
                let d = backoff_delay(&cfg, failures, &mut rng).as_millis() as u64;
                assert!(
                    d >= want / 2 && d <= want,
                    "failures {failures}: {d} not in [{}, {want}]",
                    want / 2
                );
            }
        }
        // Jitter: two seeds give different schedules.
        let mut a = ChaCha8Rng::seed_from_u64(1);
        let mut b = ChaCha8Rng::seed_from_u64(2);
        let sa: Vec<_> = (0..8).map(|_| backoff_delay(&cfg, 6, &mut a)).collect();
        let sb: Vec<_> = (0..8).map(|_| backoff_delay(&cfg, 6, &mut b)).collect();
        assert_ne!(sa, sb);
    }
}
