//! Crash-point enumeration: run a workload once on a perfect disk to count its mutating I/O
//! operations, then for every k run it again on a fresh disk that dies after k operations,
//! crash (dropping unsynced data, tearing unsynced tails), reopen, and check that what
//! survived is a prefix of the attempted writes that includes every write acknowledged as
//! synced, and that nothing un-written appears.

use shale_storage::fs::{FsError, SimFs};
use shale_storage::tablet::{KeyRange, Tablet};
use shale_storage::{StorageError, StorageResult};

use super::{create, dump, open, put, Model};

#[derive(Clone, Debug)]
pub enum Op {
    Put {
        row: Vec<u8>,
        fam: &'static [u8],
        ts: u64,
        value: Vec<u8>,
        sync: bool,
    },
    Flush,
    /// Run compaction steps until there is no more work.
    Compact,
    /// Close and open again (a clean restart without a crash).
    Reopen,
    Unload,
}

/// One attempted put: (row, family, ts, value).
pub type Attempt = (Vec<u8>, &'static [u8], u64, Vec<u8>);

/// What a run did before the disk died.
#[derive(Default, Debug)]
pub struct Trace {
    /// Puts in the order they were attempted.
    pub attempted: Vec<Attempt>,
    /// Index of the last put acknowledged as synced (+1), i.e. how many must survive.
    pub durable_prefix: usize,
    /// Mutating-op count at the start of each op, for locating crash points.
    pub op_starts: Vec<u64>,
}

pub fn run(fs: &SimFs, dir: &str, ops: &[Op], trace: &mut Trace) -> StorageResult<()> {
    let mut t = create(fs, dir, 1, KeyRange::all())?;
    for op in ops {
        trace.op_starts.push(fs.stats().mutating_ops);
        match op {
            Op::Put {
                row,
                fam,
                ts,
                value,
                sync,
            } => {
                trace.attempted.push((row.clone(), fam, *ts, value.clone()));
                put(&t, row, fam, b"q", *ts, value, *sync)?;
                if *sync {
                    trace.durable_prefix = trace.attempted.len();
                }
            }
            Op::Flush => {
                t.flush()?;
                // Everything written so far is now in synced SSTs.
                trace.durable_prefix = trace.attempted.len();
            }
            Op::Compact => while t.compact_step(0)? {},
            Op::Reopen => {
                drop(t);
                t = open(fs, dir)?;
            }
            Op::Unload => {
                t.unload()?;
                trace.durable_prefix = trace.attempted.len();
                t = open(fs, dir)?;
            }
        }
    }
    Ok(())
}

fn model_of(prefix: &[Attempt]) -> Model {
    let mut m = Model::default();
    for (r, f, ts, v) in prefix {
        m.put(r, f, b"q", *ts, v);
    }
    m
}

/// Check the recovered tablet against the trace; returns how many puts survived.
pub fn check_recovered(t: &Tablet, trace: &Trace) -> StorageResult<usize> {
    let got = dump(t)?;
    for n in trace.durable_prefix..=trace.attempted.len() {
        if model_of(&trace.attempted[..n]).cells_in(&KeyRange::all()) == got {
            return Ok(n);
        }
    }
    panic!(
        "recovered state is not a prefix of the writes that keeps the {} synced ones: {} cells, {} attempted",
        trace.durable_prefix,
        got.len(),
        trace.attempted.len()
    );
}

/// Enumerate every crash point of `ops`. Returns (crash points, the probe run's op starts).
pub fn enumerate(ops: &[Op], seed: u64) -> StorageResult<(u64, Vec<u64>)> {
    let probe = super::sim(seed);
    let mut probe_trace = Trace::default();
    run(&probe, "t", ops, &mut probe_trace)?;
    let total = probe.stats().mutating_ops;
    let mut survived_hist = Vec::new();
    for k in 0..total {
        let fs = super::sim(seed.wrapping_mul(1000).wrapping_add(k));
        fs.halt_after_mutating_ops(Some(k));
        let mut trace = Trace::default();
        let result = run(&fs, "t", ops, &mut trace);
        assert!(
            result.is_err(),
            "the disk died at op {k} of {total}, so the run fails"
        );
        fs.crash();
        match open(&fs, "t") {
            Ok(t) => {
                survived_hist.push(check_recovered(&t, &trace)?);
                // Recovery itself must leave a state that opens again identically.
                let before = dump(&t)?;
                drop(t);
                assert_eq!(
                    dump(&open(&fs, "t")?)?,
                    before,
                    "second open after crash point {k}"
                );
            }
            Err(StorageError::Fs(FsError::NotFound(_))) => {
                assert_eq!(
                    trace.durable_prefix, 0,
                    "no tablet, but a write was acknowledged (k = {k})"
                );
            }
            Err(e) => panic!("crash at op {k} of {total} left an unopenable tablet: {e}"),
        }
    }
    Ok((total, probe_trace.op_starts))
}

/// A workload of `n` puts over `rows` rows, every `sync_every`-th synced.
pub fn puts(n: u32, rows: u32, sync_every: u32, fam_b_every: u32) -> Vec<Op> {
    (0..n)
        .map(|i| Op::Put {
            row: super::row(i % rows),
            fam: if fam_b_every > 0 && i % fam_b_every == 0 {
                b"b"
            } else {
                b"a"
            },
            ts: u64::from(i),
            value: format!("v{i}-{}", "x".repeat((i % 7) as usize * 20)).into_bytes(),
            sync: sync_every > 0 && i % sync_every == 0,
        })
        .collect()
}
