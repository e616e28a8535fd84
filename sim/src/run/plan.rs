//! The fault schedule of one seed: the scenario's scripted faults plus its random plan drawn
//! into scripted faults at fixed times. Drawing the random plan up front (rather than while
//! running) makes every run's schedule a plain list, which is what the shrinker cuts down
//! and what a shrunk scenario file prints.
//!
//! Owns: the random draw (its own ChaCha8 stream, so it never shifts the executor's). Must
//! not: look at the cluster (targets like "any node" stay symbolic until they apply).

use crate::scenario::{Dur, FaultKind, RandomFaults, Scenario, ScriptedFault, SignedDur, Target};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::time::Duration;

/// Loss and duplication of a random `network_degrade`.
const DEGRADE_PROBABILITY: f64 = 0.05;
/// Error rate of a random `disk_error`.
const DISK_ERROR_PROBABILITY: f64 = 0.05;
/// Failure rate of a random `job_failure`.
const JOB_FAILURE_PROBABILITY: f64 = 0.2;
/// Random clock offsets stay inside the tablet node's clock-skew margin (500 ms in the
/// cluster runner's settings): beyond it, lease fencing is not promised.
const SKEW_MAX_NS: i64 = 300_000_000;

/// Every fault of the run: the script first, then the random draw, in time order among
/// timed faults (triggered faults keep their script order).
pub fn schedule(s: &Scenario, seed: u64) -> Vec<ScriptedFault> {
    let mut out = s.faults.script.clone();
    if let Some(r) = &s.faults.random {
        out.extend(draw_random(r, s.cluster.nodes, seed));
    }
    out
}

/// The scenario with its random plan replaced by the same faults, scripted: runs exactly
/// like the original for this seed.
pub fn scripted(s: &Scenario, seed: u64) -> Scenario {
    let mut out = s.clone();
    out.faults.script = schedule(s, seed);
    out.faults.random = None;
    out
}

fn draw_random(r: &RandomFaults, nodes: u32, seed: u64) -> Vec<ScriptedFault> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x0046_4155_4c54_5321);
    let (start, stop) = (r.start.0, r.stop.0);
    let lasting = r.duration.0;
    let mut events: Vec<(Duration, ScriptedFault)> = Vec::new();
    for (kind, rate) in &r.rates_per_min {
        if *rate <= 0.0 || matches!(kind, FaultKind::Restart) || is_admin(*kind) {
            continue;
        }
        // Exponential gaps: a Poisson process with `rate` arrivals per minute.
        let mean_ns = 60e9 / rate;
        let mut t = start;
        loop {
            let u: f64 = rng.gen_range(f64::EPSILON..1.0);
            t += Duration::from_nanos((-u.ln() * mean_ns) as u64);
            if t >= stop {
                break;
            }
            events.push((t, random_fault(*kind, t, lasting, nodes, &mut rng)));
        }
    }
    events.sort_by_key(|(t, _)| *t);
    limit_nodes_down(events, r.nodes_down_max, nodes)
}

fn random_fault(
    kind: FaultKind,
    at: Duration,
    lasting: Duration,
    nodes: u32,
    rng: &mut ChaCha8Rng,
) -> ScriptedFault {
    let node = Target::Node(rng.gen_range(1..=nodes));
    // Network faults hit masters too; process and disk faults hit tablet nodes.
    let node_or_master = if rng.gen_bool(0.25) {
        Target::ActiveMaster
    } else {
        node.clone()
    };
    let mut f = ScriptedFault {
        at: Some(Dur(at)),
        when: None,
        occurrence: None,
        fault: kind,
        target: None,
        peer: None,
        lasting: None,
        offset: None,
        probability: None,
        table: None,
        row: None,
    };
    let timed = Some(Dur(lasting));
    match kind {
        FaultKind::Crash => {
            f.target = Some(node);
            f.lasting = timed;
        }
        FaultKind::Reboot | FaultKind::Stop | FaultKind::TornWrite | FaultKind::Restart => {
            f.target = Some(node)
        }
        FaultKind::Partition | FaultKind::OneWayPartition | FaultKind::Clog => {
            f.target = Some(node_or_master);
            f.lasting = timed;
        }
        FaultKind::Pause => {
            f.target = Some(node_or_master);
            f.lasting = Some(Dur(lasting / 4));
        }
        FaultKind::ClockSkew => {
            f.target = Some(node);
            f.offset = Some(SignedDur {
                nanos: rng.gen_range(-SKEW_MAX_NS..=SKEW_MAX_NS),
            });
            f.lasting = timed;
        }
        FaultKind::Heal => {}
        FaultKind::NetworkDegrade => {
            f.probability = Some(DEGRADE_PROBABILITY);
            f.lasting = timed;
        }
        FaultKind::DiskError => {
            f.target = Some(node);
            f.probability = Some(DISK_ERROR_PROBABILITY);
            f.lasting = timed;
        }
        FaultKind::DiskFull | FaultKind::SlowDisk => {
            f.target = Some(node);
            f.lasting = timed;
        }
        FaultKind::JobFailure => {
            f.probability = Some(JOB_FAILURE_PROBABILITY);
            f.lasting = timed;
        }
        // Never drawn (they need a table); see `draw_random`.
        FaultKind::Split
        | FaultKind::DisableTable
        | FaultKind::EnableTable
        | FaultKind::DropTable => {}
    }
    f
}

/// Admin actions, not environment faults: only scripted.
pub fn is_admin(kind: FaultKind) -> bool {
    matches!(
        kind,
        FaultKind::Split | FaultKind::DisableTable | FaultKind::EnableTable | FaultKind::DropTable
    )
}

/// Drops process faults that would take more than `max` tablet nodes down at once (a crash
/// holds its node for its `for`, a stop for good), judged on the schedule alone so a
/// scripted copy of the plan replays the same way.
fn limit_nodes_down(
    events: Vec<(Duration, ScriptedFault)>,
    max: u32,
    nodes: u32,
) -> Vec<ScriptedFault> {
    // (node, down until; None = forever)
    let mut down: Vec<(u32, Option<Duration>)> = Vec::new();
    let mut out = Vec::new();
    for (t, f) in events {
        let holds = match f.fault {
            FaultKind::Crash => Some(f.lasting.map(|d| t + d.0)),
            FaultKind::Stop => Some(None),
            FaultKind::Reboot | FaultKind::TornWrite => Some(Some(t)),
            _ => None,
        };
        if let (Some(until), Some(Target::Node(n))) = (holds, &f.target) {
            down.retain(|(_, u)| u.is_none_or(|u| u > t));
            if down.iter().any(|(m, _)| m == n) {
                continue;
            }
            if until != Some(t) {
                if down.len() as u32 >= max.min(nodes.saturating_sub(1)) {
                    continue;
                }
                down.push((*n, until));
            }
        }
        out.push(f);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn random(rates: &[(FaultKind, f64)], max: u32) -> RandomFaults {
        RandomFaults {
            start: Dur(Duration::from_secs(1)),
            stop: Dur(Duration::from_secs(61)),
            rates_per_min: rates.iter().copied().collect::<BTreeMap<_, _>>(),
            nodes_down_max: max,
            duration: Dur(Duration::from_secs(5)),
        }
    }

    #[test]
    fn draws_are_seeded_in_window_and_near_the_rate() {
        let r = random(&[(FaultKind::Partition, 6.0)], 1);
        let a = draw_random(&r, 5, 7);
        assert_eq!(a, draw_random(&r, 5, 7));
        assert_ne!(a, draw_random(&r, 5, 8));
        let total: usize = (0..50).map(|s| draw_random(&r, 5, s).len()).sum();
        // 6 per minute over one minute, 50 seeds: 300 expected.
        assert!((200..400).contains(&total), "{total}");
        for f in &a {
            let at = f.at.expect("timed").0;
            assert!(at >= r.start.0 && at < r.stop.0);
        }
    }

    #[test]
    fn never_more_nodes_down_than_allowed() {
        let r = random(&[(FaultKind::Crash, 30.0), (FaultKind::Stop, 2.0)], 1);
        for seed in 0..20 {
            let plan = draw_random(&r, 3, seed);
            let mut down: Vec<(Duration, Duration)> = Vec::new();
            for f in &plan {
                let t = f.at.expect("timed").0;
                let until = match f.fault {
                    FaultKind::Crash => t + f.lasting.expect("crash has for").0,
                    FaultKind::Stop => Duration::MAX,
                    _ => continue,
                };
                down.retain(|(_, u)| *u > t);
                down.push((t, until));
                assert!(down.len() <= 1, "seed {seed}: {plan:?}");
            }
        }
    }
}
