//! The workload generator: a scenario's [`Workload`] and a seed give one deterministic stream
//! of planned client operations (when, which client, which row, what operation, what value).
//!
//! Owns arrival times, operation kinds, key choice (uniform, zipf, hotspot, sequential) and
//! values. Values begin with the operation's 8-byte sequence number, so every written value is
//! distinct and a checker can tell which write a read saw. Must not know how operations are
//! sent or answered; a runner does. Uses integer arithmetic wherever a float could round
//! differently between platforms; zipf's table is the one exception (built once, quantised).

use super::spec::{Distribution, Scenario, Workload};
use crate::check::{ClientId, KvInput, KvOp, RowKey};
use crate::node::mix64;
use rand::{Rng, RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::collections::BTreeMap;
use std::time::Duration;

/// One operation a client should issue at `at` (from the start of the run).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlannedOp {
    pub seq: u64,
    pub at: Duration,
    pub client: ClientId,
    pub input: KvInput,
}

/// The row name for index `i`: `{prefix}{i:08}`, so rows sort by index.
pub fn row_key(prefix: &str, i: u64) -> Vec<u8> {
    format!("{prefix}{i:08}").into_bytes()
}

enum Picker {
    Uniform,
    Sequential,
    Hotspot {
        hot: u64,
        threshold: u64,
    },
    /// Cumulative weights scaled to 2^53; index = first entry above a 53-bit draw.
    Zipf(Vec<u64>),
}

/// Iterator over a workload's planned operations, in time order.
pub struct WorkloadGen {
    rng: ChaCha8Rng,
    workload: Workload,
    tables: Vec<String>,
    picker: Picker,
    interval_ns: u64,
    total: u64,
    seq: u64,
    /// The last value each row was meant to hold (if operations ran in plan order): what a
    /// check-and-mutate expects, so that some of them succeed.
    intended: BTreeMap<RowKey, Option<Vec<u8>>>,
}

const TOP_53: u64 = 1 << 53;

impl WorkloadGen {
    /// The stream for `scenario` (which must have validated) under `seed`.
    pub fn new(scenario: &Scenario, seed: u64) -> Self {
        let w = scenario.workload.clone();
        let count = w.keys.count;
        let picker = match w.keys.distribution {
            Distribution::Uniform => Picker::Uniform,
            Distribution::Sequential => Picker::Sequential,
            Distribution::Hotspot {
                hot_keys,
                hot_fraction,
            } => Picker::Hotspot {
                hot: hot_keys,
                threshold: (hot_fraction * TOP_53 as f64) as u64,
            },
            Distribution::Zipf { exponent } => {
                let weights: Vec<f64> = (1..=count).map(|i| (i as f64).powf(-exponent)).collect();
                let sum: f64 = weights.iter().sum();
                let mut acc = 0.0;
                let mut cdf: Vec<u64> = weights
                    .iter()
                    .map(|w| {
                        acc += w;
                        ((acc / sum) * TOP_53 as f64) as u64
                    })
                    .collect();
                if let Some(last) = cdf.last_mut() {
                    *last = TOP_53;
                }
                Picker::Zipf(cdf)
            }
        };
        let duration_ns = u128::from(u64::try_from(w.duration.0.as_nanos()).unwrap_or(u64::MAX));
        let rate = u128::from(w.rate_per_sec);
        let total = u64::try_from(duration_ns * rate / 1_000_000_000).unwrap_or(u64::MAX);
        Self {
            rng: ChaCha8Rng::seed_from_u64(mix64(seed ^ 0x574f_524b_4c4f_4144)),
            interval_ns: 1_000_000_000 / u64::from(w.rate_per_sec.max(1)),
            tables: scenario
                .workload_tables()
                .iter()
                .map(|t| t.name.clone())
                .collect(),
            workload: w,
            picker,
            total,
            seq: 0,
            intended: BTreeMap::new(),
        }
    }

    /// Operations the whole stream holds: `rate_per_sec * duration`.
    pub fn total(&self) -> u64 {
        self.total
    }

    fn pick_index(&mut self) -> u64 {
        let count = self.workload.keys.count;
        match &self.picker {
            Picker::Uniform => self.rng.gen_range(0..count),
            Picker::Sequential => self.seq % count,
            Picker::Hotspot { hot, threshold } => {
                let (hot, threshold) = (*hot, *threshold);
                if hot >= count || (self.rng.next_u64() >> 11) < threshold {
                    self.rng.gen_range(0..hot)
                } else {
                    self.rng.gen_range(hot..count)
                }
            }
            Picker::Zipf(cdf) => {
                let draw = self.rng.next_u64() >> 11;
                cdf.partition_point(|&c| c <= draw) as u64
            }
        }
    }

    fn value(&mut self) -> Vec<u8> {
        let size = self
            .rng
            .gen_range(self.workload.value_size.min..=self.workload.value_size.max);
        let mut v = self.seq.to_be_bytes().to_vec();
        let fill = (self.seq % 26) as u8;
        v.extend((8..size).map(|i| b'a' + (fill + (i % 26) as u8) % 26));
        v
    }
}

impl Iterator for WorkloadGen {
    type Item = PlannedOp;

    fn next(&mut self) -> Option<PlannedOp> {
        if self.seq >= self.total {
            return None;
        }
        // Evenly spaced slots with a random offset inside each: times never go backwards and
        // the long-run rate is exact.
        let at = self.seq * self.interval_ns + self.rng.gen_range(0..self.interval_ns.max(1));
        let client = self.rng.gen_range(0..u64::from(self.workload.clients));
        let table = self.tables[self.rng.gen_range(0..self.tables.len())].clone();
        let index = self.pick_index();
        let key = RowKey::new(table, row_key(&self.workload.keys.prefix, index));
        let m = self.workload.mix;
        let weights = [
            m.put,
            m.get,
            m.delete,
            m.check_and_mutate,
            m.increment,
            m.append,
        ];
        let mut draw = self.rng.gen_range(0..self.workload.mix.total());
        let kind = weights
            .iter()
            .position(|w| {
                let hit = draw < u64::from(*w);
                draw = draw.saturating_sub(u64::from(*w));
                hit
            })
            .expect("a draw below the total lands in some weight");
        let op = match kind {
            0 => {
                let v = self.value();
                self.intended.insert(key.clone(), Some(v.clone()));
                KvOp::Put(v)
            }
            1 => KvOp::Get,
            2 => {
                self.intended.insert(key.clone(), None);
                KvOp::Delete
            }
            3 => {
                let expected = if self.rng.gen_bool(0.5) {
                    self.intended.get(&key).cloned().flatten()
                } else {
                    None
                };
                let then = Some(self.value());
                if self.intended.get(&key).cloned().flatten() == expected {
                    self.intended.insert(key.clone(), then.clone());
                }
                KvOp::CheckAndMutate { expected, then }
            }
            4 => KvOp::Increment(self.rng.gen_range(1..=10)),
            _ => KvOp::Append(self.seq.to_be_bytes().to_vec()),
        };
        if kind >= 4 {
            // Read-modify-writes leave a value the plan cannot know without a model.
            self.intended.remove(&key);
        }
        let planned = PlannedOp {
            seq: self.seq,
            at: Duration::from_nanos(at),
            client,
            input: KvInput { key, op },
        };
        self.seq += 1;
        Some(planned)
    }
}
