//! Scenario files: every shipped file parses and validates; bad files fail with an error that
//! names the field; the workload generator is deterministic and follows its spec.

use shale_sim::check::KvOp;
use shale_sim::scenario::{
    row_key, Distribution, FaultKind, Scenario, ScenarioError, Target, WorkloadGen,
};
use std::collections::BTreeMap;
use std::path::Path;

const SHIPPED: [&str; 12] = [
    "split-under-load",
    "split-merge-gc",
    "gc-while-loading",
    "merge-with-crash",
    "query-gc-race",
    "move-with-partition",
    "master-failover-mid-procedure",
    "node-flap",
    "disable-drop-during-split",
    "clock-skew-leases",
    "disk-faults-during-compaction",
    "kitchen-sink",
];

fn scenarios_dir() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../scenarios"))
}

fn shipped(name: &str) -> Scenario {
    Scenario::load(&scenarios_dir().join(format!("{name}.toml")))
        .unwrap_or_else(|e| panic!("{name}: {e}"))
}

#[test]
fn every_file_in_scenarios_parses_validates_and_round_trips() {
    let mut seen = Vec::new();
    for entry in std::fs::read_dir(scenarios_dir()).expect("scenarios/ exists") {
        let path = entry.expect("readable").path();
        if path.extension().is_some_and(|e| e == "toml") {
            let s = Scenario::load(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            let stem = path
                .file_stem()
                .and_then(|s| s.to_str())
                .expect("utf-8 name");
            assert_eq!(s.name, stem, "a file's name field matches its file name");
            let text = s.to_toml().expect("serializable");
            assert_eq!(Scenario::from_toml(&text).expect("re-parses"), s, "{stem}");
            seen.push(stem.to_string());
        }
    }
    for name in SHIPPED {
        assert!(
            seen.iter().any(|s| s == name),
            "scenarios/{name}.toml is missing"
        );
    }
}

#[test]
fn the_docs_example_is_a_valid_scenario() {
    let doc = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../docs/scenario-format.md"
    ))
    .expect("docs/scenario-format.md exists");
    let start = doc.find("```toml\n").expect("a toml example") + "```toml\n".len();
    let end = start + doc[start..].find("```").expect("closed");
    let s = Scenario::from_toml(&doc[start..end]).unwrap_or_else(|e| panic!("{e}"));
    assert!(!s.faults.script.is_empty() && s.faults.random.is_some());
}

#[test]
fn shipped_scenarios_mean_what_they_say() {
    let s = shipped("merge-with-crash");
    let f = &s.faults.script[0];
    assert_eq!(f.fault, FaultKind::Crash);
    assert_eq!(
        f.target,
        Some(Target::ServingTablet {
            table: "events".into(),
            row: "k00001500".into()
        })
    );
    let t = f.when.as_ref().expect("trigger");
    assert_eq!(
        (t.procedure.as_str(), t.phase.as_str()),
        ("merge", "load_merged")
    );
    assert_eq!(s.faults.script[1].occurrence, Some(2));
    let k = shipped("kitchen-sink");
    let rates = &k.faults.random.as_ref().expect("random").rates_per_min;
    assert!(rates.len() >= 12, "the kitchen sink uses every random kind");
    assert_eq!(k.network.to_net_config().loss_probability, 0.01);
}

/// Replaces the first line starting with `key` in a shipped scenario, then parses it.
fn edited(name: &str, key: &str, line: &str) -> Result<Scenario, ScenarioError> {
    let text = std::fs::read_to_string(scenarios_dir().join(format!("{name}.toml"))).expect("file");
    let mut done = false;
    let out: Vec<String> = text
        .lines()
        .map(|l| {
            if !done && l.starts_with(key) {
                done = true;
                line.to_string()
            } else {
                l.to_string()
            }
        })
        .collect();
    assert!(done, "{key} not found in {name}");
    Scenario::from_toml(&out.join("\n"))
}

fn error_text(r: Result<Scenario, ScenarioError>) -> String {
    r.expect_err("must be refused").to_string()
}

#[test]
fn unknown_fields_and_bad_values_are_refused_by_name() {
    let e = error_text(edited("node-flap", "rate_per_sec", "rate_per_second = 5"));
    assert!(e.contains("rate_per_second"), "{e}");
    let e = error_text(edited(
        "node-flap",
        "duration = \"60s\"",
        "duration = \"60 seconds\"",
    ));
    assert!(
        e.contains("bad duration") && e.contains("60 seconds"),
        "{e}"
    );
    let e = error_text(edited(
        "clock-skew-leases",
        "target = \"node 1\"",
        "target = \"node one\"",
    ));
    assert!(e.contains("bad target"), "{e}");
    let e = error_text(edited(
        "merge-with-crash",
        "when = \"merge.load_merged\"",
        "when = \"mege.load_merged\"",
    ));
    assert!(e.contains("unknown procedure"), "{e}");
    let e = error_text(edited(
        "node-flap",
        "checks",
        "checks = [\"linearisability\"]",
    ));
    assert!(e.contains("linearisability"), "{e}");
    let e = error_text(edited("kitchen-sink", "crash = 2.0", "meteor = 2.0"));
    assert!(e.contains("meteor"), "{e}");
}

#[test]
fn cross_field_problems_are_all_reported_with_their_paths() {
    let cases: [(&str, &str, &str, &str); 9] = [
        ("node-flap", "nodes = 5", "nodes = 0", "cluster.nodes"),
        (
            "clock-skew-leases",
            "target = \"node 1\"",
            "target = \"node 9\"",
            "faults.script[0].target",
        ),
        (
            "clock-skew-leases",
            "offset = \"-400ms\"",
            "probability = 0.5",
            "faults.script[0].offset",
        ),
        (
            "merge-with-crash",
            "splits",
            "splits = [\"b\", \"a\"]",
            "table[0].splits",
        ),
        (
            "merge-with-crash",
            "target = \"node serving",
            "target = \"node serving tablet nope:k\"",
            "faults.script[0].target",
        ),
        (
            "split-under-load",
            "min = 64",
            "min = 4",
            "workload.value_size.min",
        ),
        (
            "query-gc-race",
            "distribution",
            "distribution = { kind = \"hotspot\", hot_keys = 5000, hot_fraction = 0.8 }",
            "hot_keys",
        ),
        (
            "disk-faults-during-compaction",
            "at = \"5s\"",
            "at = \"5m\"",
            "faults.script[0].at",
        ),
        ("node-flap", "checks", "checks = []", "checks"),
    ];
    for (file, key, line, field) in cases {
        match edited(file, key, line) {
            Err(ScenarioError::Invalid { problems, .. }) => assert!(
                problems.iter().any(|p| p.field.contains(field)),
                "{file}: {line}: {problems:?}"
            ),
            other => panic!("{file}: {line}: expected Invalid naming {field}, got {other:?}"),
        }
    }
    // Both problems at once, not just the first.
    let mut s = shipped("node-flap");
    s.cluster.masters = 0;
    s.workload.clients = 0;
    match s.validate() {
        Err(ScenarioError::Invalid { problems, .. }) => {
            assert_eq!(problems.len(), 2, "{problems:?}")
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn the_workload_is_deterministic_per_seed_and_follows_its_spec() {
    let s = shipped("kitchen-sink");
    let a: Vec<_> = WorkloadGen::new(&s, 7).collect();
    let b: Vec<_> = WorkloadGen::new(&s, 7).collect();
    let c: Vec<_> = WorkloadGen::new(&s, 8).collect();
    assert_eq!(a, b);
    assert_ne!(a, c);
    assert_eq!(a.len(), 300 * 60);
    assert_eq!(a.len() as u64, WorkloadGen::new(&s, 7).total());
    assert!(
        a.windows(2).all(|w| w[0].at <= w[1].at),
        "times never go back"
    );
    assert!(a.last().expect("ops").at < s.workload.duration.0);
    let mut kinds: BTreeMap<&str, usize> = BTreeMap::new();
    let mut values = std::collections::BTreeSet::new();
    for op in &a {
        assert!(op.client < 12);
        assert!(["a", "b"].contains(&op.input.key.table.as_str()));
        let kind = match &op.input.op {
            KvOp::Put(v) => {
                assert!((8..=1024).contains(&v.len()));
                assert!(values.insert(v.clone()), "every written value is distinct");
                "put"
            }
            KvOp::Get => "get",
            KvOp::Delete => "delete",
            KvOp::CheckAndMutate { .. } => "cas",
            KvOp::Increment(d) => {
                assert!((1..=10).contains(d));
                "inc"
            }
            KvOp::Append(_) => "append",
        };
        *kinds.entry(kind).or_default() += 1;
    }
    // Weights 30/40/5/10/10/5 over 18000 draws, within a few percent.
    let share = |k: &str| kinds.get(k).copied().unwrap_or(0) * 100 / a.len();
    assert!((28..=32).contains(&share("put")), "{kinds:?}");
    assert!((38..=42).contains(&share("get")), "{kinds:?}");
    assert!((4..=6).contains(&share("delete")), "{kinds:?}");
    assert!((8..=12).contains(&share("cas")), "{kinds:?}");
}

#[test]
fn key_distributions_have_their_shape() {
    let base = shipped("split-under-load");
    let counts = |dist: Distribution| {
        let mut s = base.clone();
        s.workload.keys.count = 100;
        s.workload.keys.distribution = dist;
        s.validate().expect("valid");
        let mut c = vec![0usize; 100];
        for op in WorkloadGen::new(&s, 3) {
            let row = String::from_utf8(op.input.key.row).expect("ascii");
            let i: usize = row[1..].parse().expect("k + digits");
            c[i] += 1;
        }
        c
    };
    let uniform = counts(Distribution::Uniform);
    assert!(uniform.iter().all(|&n| n > 150 && n < 330), "{uniform:?}");
    let zipf = counts(Distribution::Zipf { exponent: 1.2 });
    assert!(zipf[0] > zipf[1] && zipf[1] > zipf[9] && zipf[9] > zipf[99]);
    let harmonic: f64 = (1..=100).map(|i| (i as f64).powf(-1.2)).sum();
    let expected = 24_000.0 / harmonic;
    assert!(
        (zipf[0] as f64 - expected).abs() < expected * 0.05,
        "rank 0 got {} of 24000, expected about {expected:.0}",
        zipf[0]
    );
    let hot = counts(Distribution::Hotspot {
        hot_keys: 10,
        hot_fraction: 0.9,
    });
    let in_hot: usize = hot[..10].iter().sum();
    assert!(
        (21_000..=22_200).contains(&in_hot),
        "{in_hot} of 24000 in the hot set"
    );
    let seq = counts(Distribution::Sequential);
    assert!(
        seq.iter().all(|&n| n == 240),
        "sequential visits each row in turn"
    );
    assert_eq!(row_key("k", 42), b"k00000042".to_vec());
}
