//! Property: under any schedule of environment faults (crashes and restarts of the primary and
//! backup, partitions, one-way partitions, clogs, loss, duplication, skew, pauses, failing
//! sync jobs), the replicated counter in `counter/` never double-counts and never loses an
//! acknowledged increment, and after healing it acknowledges every increment.
//!
//! Two deliberately broken primaries show the checker and the faults have teeth: a seed sweep
//! must catch each of them.

mod counter;

use counter::{run_counter, Mode, ALL, BACKUP, FAULTS_END_MS, PRIMARY};
use proptest::prelude::*;
use proptest::test_runner::FileFailurePersistence;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use shale_actors::NodeId;
use shale_sim::{Fault, JobConfig, NetConfig, Stats};
use std::time::Duration;

/// One fault decision; `to_faults` expands it into timed `Fault`s (with their undo).
#[derive(Clone, Debug)]
enum Choice {
    Crash { server: bool, down_ms: u64 },
    Partition { a: usize, b: usize, ms: u64 },
    OneWay { from: usize, to: usize, ms: u64 },
    Clog { node: usize, ms: u64 },
    ClogLink { from: usize, to: usize, ms: u64 },
    Net { loss_pct: u8, dup_pct: u8 },
    JobFail { pct: u8 },
    Skew { node: usize, offset_ms: i64 },
    Pause { node: usize, ms: u64 },
}

fn server(primary: bool) -> NodeId {
    if primary {
        PRIMARY
    } else {
        BACKUP
    }
}

fn to_faults(at: u64, choice: &Choice) -> Vec<(u64, Fault)> {
    let n = |i: usize| ALL[i % ALL.len()];
    match choice {
        Choice::Crash { server: s, down_ms } => vec![
            (at, Fault::Crash(server(*s))),
            (at + down_ms, Fault::Restart(server(*s))),
        ],
        Choice::Partition { a, b, ms } => vec![
            (
                at,
                Fault::Partition {
                    a: vec![n(*a)],
                    b: vec![n(*b)],
                },
            ),
            (at + ms, Fault::Heal),
        ],
        Choice::OneWay { from, to, ms } => vec![
            (
                at,
                Fault::PartitionOneWay {
                    from: vec![n(*from)],
                    to: vec![n(*to)],
                },
            ),
            (at + ms, Fault::Heal),
        ],
        Choice::Clog { node, ms } => {
            vec![
                (at, Fault::Clog(n(*node))),
                (at + ms, Fault::Unclog(n(*node))),
            ]
        }
        Choice::ClogLink { from, to, ms } => vec![
            (
                at,
                Fault::ClogLink {
                    from: n(*from),
                    to: n(*to),
                },
            ),
            (
                at + ms,
                Fault::UnclogLink {
                    from: n(*from),
                    to: n(*to),
                },
            ),
        ],
        Choice::Net { loss_pct, dup_pct } => {
            let net = NetConfig {
                latency_min: Duration::from_micros(500),
                latency_max: Duration::from_millis(8),
                loss_probability: f64::from(*loss_pct) / 100.0,
                duplicate_probability: f64::from(*dup_pct) / 100.0,
                reorder: true,
            };
            vec![(at, Fault::SetNet(net))]
        }
        Choice::JobFail { pct } => {
            let jobs = JobConfig {
                duration_jitter: 0.5,
                fail_probability: f64::from(*pct) / 100.0,
            };
            vec![(at, Fault::SetJobs(jobs))]
        }
        Choice::Skew { node, offset_ms } => {
            vec![(
                at,
                Fault::SetClockOffset {
                    node: n(*node),
                    offset_ns: offset_ms * 1_000_000,
                },
            )]
        }
        Choice::Pause { node, ms } => {
            vec![(
                at,
                Fault::Pause {
                    node: n(*node),
                    duration: Duration::from_millis(*ms),
                },
            )]
        }
    }
}

fn choice() -> impl Strategy<Value = Choice> {
    let node = 0..ALL.len();
    prop_oneof![
        3 => (any::<bool>(), 1..120u64).prop_map(|(server, down_ms)| Choice::Crash { server, down_ms }),
        1 => (node.clone(), node.clone(), 1..150u64).prop_map(|(a, b, ms)| Choice::Partition { a, b, ms }),
        1 => (node.clone(), node.clone(), 1..150u64).prop_map(|(from, to, ms)| Choice::OneWay { from, to, ms }),
        1 => (node.clone(), 1..150u64).prop_map(|(node, ms)| Choice::Clog { node, ms }),
        1 => (node.clone(), node.clone(), 1..150u64)
            .prop_map(|(from, to, ms)| Choice::ClogLink { from, to, ms }),
        1 => (0..40u8, 0..40u8).prop_map(|(loss_pct, dup_pct)| Choice::Net { loss_pct, dup_pct }),
        1 => (0..60u8).prop_map(|pct| Choice::JobFail { pct }),
        1 => (node.clone(), -5_000..5_000i64).prop_map(|(node, offset_ms)| Choice::Skew { node, offset_ms }),
        1 => (node, 1..100u64).prop_map(|(node, ms)| Choice::Pause { node, ms }),
    ]
}

fn schedule() -> impl Strategy<Value = Vec<(u64, Fault)>> {
    prop::collection::vec((0..FAULTS_END_MS, choice()), 0..12).prop_map(|choices| {
        choices
            .iter()
            .flat_map(|(at, c)| to_faults(*at, c))
            .collect()
    })
}

proptest! {
    // Modest case count: the whole sim suite must stay well under a minute in debug. Failures
    // are kept next to this file (integration tests have no lib.rs for proptest to find).
    #![proptest_config(ProptestConfig {
        cases: 128,
        failure_persistence: Some(Box::new(FileFailurePersistence::Direct(
            "tests/proptest-regressions/replicated_counter.txt",
        ))),
        ..ProptestConfig::default()
    })]

    #[test]
    fn counter_never_double_counts_or_loses_an_acked_increment(
        seed in any::<u64>(),
        faults in schedule(),
    ) {
        let report = run_counter(seed, &faults, Mode::Correct);
        prop_assert!(report.is_ok(), "seed {seed}: {report:?}\nfaults: {faults:#?}");
    }
}

/// A seeded schedule that always crashes both servers mid-traffic, plus random extras.
fn sweep_schedule(seed: u64) -> Vec<(u64, Fault)> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut faults = vec![(
        0,
        Fault::SetNet(NetConfig {
            latency_min: Duration::from_micros(500),
            latency_max: Duration::from_millis(8),
            loss_probability: 0.1,
            duplicate_probability: 0.1,
            reorder: true,
        }),
    )];
    for _ in 0..3 {
        let at = rng.gen_range(5..FAULTS_END_MS - 150);
        let down_ms = rng.gen_range(5..80);
        faults.extend(to_faults(
            at,
            &Choice::Crash {
                server: rng.gen_bool(0.6),
                down_ms,
            },
        ));
    }
    let (a, b) = (rng.gen_range(0..ALL.len()), rng.gen_range(0..ALL.len()));
    faults.extend(to_faults(
        rng.gen_range(0..300),
        &Choice::Partition { a, b, ms: 60 },
    ));
    let node = rng.gen_range(0..ALL.len());
    faults.extend(to_faults(
        rng.gen_range(0..300),
        &Choice::Clog { node, ms: 60 },
    ));
    faults.extend(to_faults(
        rng.gen_range(0..300),
        &Choice::JobFail { pct: 30 },
    ));
    faults
}

fn add(total: &mut Stats, s: &Stats) {
    total.crashes += s.crashes;
    total.restarts += s.restarts;
    total.jobs_dropped_crash += s.jobs_dropped_crash;
    total.jobs_failed += s.jobs_failed;
    total.messages_dropped_loss += s.messages_dropped_loss;
    total.messages_dropped_partition += s.messages_dropped_partition;
    total.messages_dropped_node_down += s.messages_dropped_node_down;
    total.messages_duplicated += s.messages_duplicated;
    total.messages_held += s.messages_held;
}

#[test]
fn seed_sweep_passes_and_proves_its_faults_fired() {
    let mut total = Stats::default();
    for seed in 0..24 {
        let faults = sweep_schedule(seed);
        match run_counter(seed, &faults, Mode::Correct) {
            Ok(report) => add(&mut total, &report.stats),
            Err(e) => panic!("seed {seed}: {e}\nfaults: {faults:#?}"),
        }
    }
    assert!(total.crashes > 0 && total.restarts > 0);
    assert!(
        total.jobs_dropped_crash > 0,
        "no sync job was ever cut by a crash: {total:?}"
    );
    assert!(total.jobs_failed > 0);
    assert!(total.messages_dropped_loss > 0 && total.messages_duplicated > 0);
    assert!(total.messages_dropped_partition > 0);
    assert!(total.messages_dropped_node_down > 0);
    assert!(total.messages_held > 0);
}

fn sweep_finds(mode: Mode, needle: &str) -> usize {
    (0..24)
        .filter(
            |seed| match run_counter(*seed, &sweep_schedule(*seed), mode) {
                Err(e) => {
                    assert!(
                        e.contains(needle),
                        "{mode:?} failed for another reason: {e}"
                    );
                    true
                }
                Ok(_) => false,
            },
        )
        .count()
}

#[test]
fn checker_catches_a_primary_that_acks_before_durability() {
    assert!(sweep_finds(Mode::AckOnAppend, "lost") > 0);
}

#[test]
fn checker_catches_a_primary_that_does_not_deduplicate() {
    assert!(sweep_finds(Mode::NoDedup, "double count") > 0);
}
