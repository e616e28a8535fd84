//! Configuration of one simulation run: the seed, the network model, the job model and what the
//! trace keeps, plus validation of those numbers.
//!
//! Owns plain data only. Must not hold runtime state (partitions, clogs and crashed nodes live in
//! the executor and change through its API or scheduled [`crate::Fault`]s).

use crate::SimError;
use serde::{Deserialize, Serialize};
use shale_actors::Time;
use std::time::Duration;

/// How the simulated network treats a message between two different nodes.
///
/// Latency is drawn uniformly from `latency_min..=latency_max` for every copy of every message,
/// so messages on one link overtake each other unless `reorder` is off.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NetConfig {
    pub latency_min: Duration,
    pub latency_max: Duration,
    /// Chance that a message is lost on send.
    pub loss_probability: f64,
    /// Chance that a message is delivered twice (the copy gets its own latency).
    pub duplicate_probability: f64,
    /// When false, each directed link is FIFO (a message never arrives before one sent earlier
    /// on the same link), as over one TCP connection. When true, random latency reorders.
    pub reorder: bool,
}

impl Default for NetConfig {
    fn default() -> Self {
        Self {
            latency_min: Duration::from_millis(1),
            latency_max: Duration::from_millis(5),
            loss_probability: 0.0,
            duplicate_probability: 0.0,
            reorder: true,
        }
    }
}

impl NetConfig {
    /// A lossless FIFO network with one fixed latency: handy when a test wants exact timings.
    pub fn fixed(latency: Duration) -> Self {
        Self {
            latency_min: latency,
            latency_max: latency,
            loss_probability: 0.0,
            duplicate_probability: 0.0,
            reorder: false,
        }
    }

    pub fn validate(&self) -> Result<(), SimError> {
        if self.latency_min > self.latency_max {
            return Err(SimError::InvalidConfig(format!(
                "latency_min {:?} > latency_max {:?}",
                self.latency_min, self.latency_max
            )));
        }
        check_probability("loss_probability", self.loss_probability)?;
        check_probability("duplicate_probability", self.duplicate_probability)
    }
}

/// How jobs ([`shale_actors::Effect::StartJob`]) behave.
///
/// A job's simulated duration is its `JobSpec::estimate` scaled by a factor drawn uniformly from
/// `1 - duration_jitter ..= 1 + duration_jitter`. Its closure runs when it completes, right
/// before `on_job_done`; a failed or crash-dropped job never runs its closure.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct JobConfig {
    /// In `0.0..=1.0`.
    pub duration_jitter: f64,
    /// Chance that a job completes with `JobError::Injected` instead of running.
    pub fail_probability: f64,
}

impl Default for JobConfig {
    fn default() -> Self {
        Self {
            duration_jitter: 0.5,
            fail_probability: 0.0,
        }
    }
}

impl JobConfig {
    pub fn validate(&self) -> Result<(), SimError> {
        check_probability("duration_jitter", self.duration_jitter)?;
        check_probability("fail_probability", self.fail_probability)
    }
}

/// What the trace keeps besides its running hash.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TraceConfig {
    /// Keep one formatted line per event. Off by default: formatting costs far more than the
    /// event itself.
    pub keep_lines: bool,
    /// After this many lines, stop keeping lines (the hash goes on) and mark the trace truncated.
    pub lines_max: usize,
    /// Fold message payloads (their bincode bytes) into the hash, so that two runs that send
    /// different contents at the same times hash differently.
    pub hash_payloads: bool,
}

impl Default for TraceConfig {
    fn default() -> Self {
        Self {
            keep_lines: false,
            lines_max: 1_000_000,
            hash_payloads: true,
        }
    }
}

/// Everything [`crate::Sim::new`] needs.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SimConfig {
    /// The only source of randomness in a run.
    pub seed: u64,
    /// True time when the run begins (nodes see it plus their clock offset).
    pub start_time: Time,
    pub net: NetConfig,
    pub jobs: JobConfig,
    pub trace: TraceConfig,
    /// Code-level fault points (`ctx.buggify`). Off by default.
    pub buggify: crate::BuggifyConfig,
    /// Messages held by clogs beyond this many are dropped (and counted).
    pub held_messages_max: usize,
    /// A queue longer than this means a runaway actor (a message storm); the executor panics
    /// rather than eat the machine's memory.
    pub pending_events_max: usize,
}

impl SimConfig {
    pub fn new(seed: u64) -> Self {
        Self {
            seed,
            start_time: Time::ZERO,
            net: NetConfig::default(),
            jobs: JobConfig::default(),
            trace: TraceConfig::default(),
            buggify: crate::BuggifyConfig::default(),
            held_messages_max: 100_000,
            pending_events_max: 10_000_000,
        }
    }

    pub fn with_net(mut self, net: NetConfig) -> Self {
        self.net = net;
        self
    }

    pub fn with_jobs(mut self, jobs: JobConfig) -> Self {
        self.jobs = jobs;
        self
    }

    /// Turns buggify on with FoundationDB's 25% / 25%.
    pub fn with_buggify(mut self) -> Self {
        self.buggify = crate::BuggifyConfig::on();
        self
    }

    pub fn with_trace_lines(mut self) -> Self {
        self.trace.keep_lines = true;
        self
    }

    pub fn validate(&self) -> Result<(), SimError> {
        self.net.validate()?;
        self.jobs.validate()?;
        check_probability(
            "buggify.enable_probability",
            self.buggify.enable_probability,
        )?;
        check_probability("buggify.fire_probability", self.buggify.fire_probability)?;
        if self.held_messages_max == 0 || self.pending_events_max == 0 {
            return Err(SimError::InvalidConfig("limits must be positive".into()));
        }
        Ok(())
    }
}

fn check_probability(name: &str, p: f64) -> Result<(), SimError> {
    // `contains` is false for NaN, which is what we want.
    if (0.0..=1.0).contains(&p) {
        Ok(())
    } else {
        Err(SimError::InvalidConfig(format!(
            "{name} = {p} is not in 0..=1"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validation_rejects_bad_numbers() {
        assert!(SimConfig::new(1).validate().is_ok());
        let mut net = NetConfig {
            loss_probability: 1.5,
            ..NetConfig::default()
        };
        assert!(net.validate().is_err());
        net.loss_probability = f64::NAN;
        assert!(net.validate().is_err());
        let net = NetConfig {
            latency_min: Duration::from_millis(5),
            latency_max: Duration::from_millis(1),
            ..NetConfig::default()
        };
        assert!(net.validate().is_err());
        let jobs = JobConfig {
            duration_jitter: -0.1,
            fail_probability: 0.0,
        };
        assert!(jobs.validate().is_err());
        let mut cfg = SimConfig::new(1);
        cfg.held_messages_max = 0;
        assert!(cfg.validate().is_err());
    }
}
