//! Buggify (FoundationDB's `BUGGIFY`): code-level fault points that actors reach through
//! `ctx.buggify("name")`. Each point is enabled or not once per run, decided by the run seed and
//! the point's name alone; an enabled point then fires with a fixed probability each time it is
//! reached, drawing from the reaching node's own buggify RNG.
//!
//! Owns the per-run decisions and counts, and the [`SimHooks`] glue the executor hands to each
//! actor call. Must not touch an actor's RNG (turning buggify on must not change what actors
//! draw) or any state shared between runs.

use crate::marks::Marks;
use crate::node::mix64;
use rand::RngCore;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use shale_actors::kernel::SimHooks;
use std::collections::BTreeMap;

/// Whether buggify is on for a run, and its two probabilities.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BuggifyConfig {
    pub enabled: bool,
    /// Chance that a given point is enabled for a run (FoundationDB: 25%).
    pub enable_probability: f64,
    /// Chance that an enabled point fires each time it is reached (FoundationDB: 25%).
    pub fire_probability: f64,
}

impl Default for BuggifyConfig {
    /// Off, with the standard probabilities ready for [`BuggifyConfig::on`].
    fn default() -> Self {
        Self {
            enabled: false,
            enable_probability: 0.25,
            fire_probability: 0.25,
        }
    }
}

impl BuggifyConfig {
    /// On, with the standard 25% / 25%.
    pub fn on() -> Self {
        Self {
            enabled: true,
            ..Self::default()
        }
    }
}

/// What happened at one point during a run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PointStats {
    /// Whether the run enabled this point.
    pub enabled: bool,
    /// Times actor code reached the point.
    pub reached: u64,
    /// Times it fired (returned true).
    pub fired: u64,
}

/// The per-run buggify state: configuration, seed and per-point counts.
#[derive(Clone, Debug)]
pub struct Buggify {
    cfg: BuggifyConfig,
    seed: u64,
    points: BTreeMap<&'static str, PointStats>,
}

/// `p` as a threshold on 53 random bits: `bits < threshold` has probability `p` (exactly 0 and
/// 1 at the ends), with integer arithmetic only after this one conversion.
fn threshold_53(p: f64) -> u64 {
    (p.clamp(0.0, 1.0) * (1u64 << 53) as f64) as u64
}

/// FNV-1a of a point name: stable across builds and platforms, unlike `std`'s hasher.
fn name_hash(name: &str) -> u64 {
    name.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

impl Buggify {
    pub fn new(seed: u64, cfg: BuggifyConfig) -> Self {
        Self {
            cfg,
            seed,
            points: BTreeMap::new(),
        }
    }

    pub fn config(&self) -> &BuggifyConfig {
        &self.cfg
    }

    /// Whether `name` is enabled in this run. A pure function of the seed and the name, so it
    /// does not depend on which point was reached first or on which node.
    pub fn is_enabled(&self, name: &str) -> bool {
        if !self.cfg.enabled {
            return false;
        }
        let h = mix64(self.seed ^ mix64(name_hash(name) ^ 0x4255_4747_4946_5900));
        (h >> 11) < threshold_53(self.cfg.enable_probability)
    }

    /// A point was reached on a node whose buggify RNG is `rng`: decide whether it fires.
    pub(crate) fn reach(&mut self, name: &'static str, rng: &mut ChaCha8Rng) -> bool {
        if !self.cfg.enabled {
            return false;
        }
        let enabled = self.is_enabled(name);
        // Only an enabled point draws, so adding a disabled point leaves every stream alone.
        let fired = enabled && (rng.next_u64() >> 11) < threshold_53(self.cfg.fire_probability);
        let stats = self.points.entry(name).or_insert(PointStats {
            enabled,
            ..PointStats::default()
        });
        stats.reached += 1;
        if fired {
            stats.fired += 1;
            tracing::trace!(point = name, "buggify fired");
        }
        fired
    }

    /// Every point reached so far, by name.
    pub fn points(&self) -> &BTreeMap<&'static str, PointStats> {
        &self.points
    }

    /// Names of the reached points that this run enabled.
    pub fn enabled_points(&self) -> Vec<&'static str> {
        self.points
            .iter()
            .filter(|(_, s)| s.enabled)
            .map(|(n, _)| *n)
            .collect()
    }

    /// Stop every point from firing for the rest of the run (the quiet phase of a liveness
    /// check: FoundationDB turns buggify off before it waits for the cluster to converge).
    /// Points reached afterwards are still counted as reached.
    pub fn quiesce(&mut self) {
        self.cfg.fire_probability = 0.0;
    }

    /// Total firings over all points.
    pub fn fired(&self) -> u64 {
        self.points.values().map(|s| s.fired).sum()
    }
}

/// What one actor call gets as its hooks: the run's buggify state and marks, and the calling
/// node's buggify RNG.
pub(crate) struct NodeHooks<'a> {
    pub(crate) buggify: &'a mut Buggify,
    pub(crate) marks: &'a mut Marks,
    pub(crate) rng: &'a mut ChaCha8Rng,
}

impl SimHooks for NodeHooks<'_> {
    fn buggify(&mut self, name: &'static str) -> bool {
        self.buggify.reach(name, self.rng)
    }
    fn mark(&mut self, name: &'static str) {
        self.marks.hit(name);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn thresholds_are_exact_at_the_ends() {
        assert_eq!(threshold_53(0.0), 0);
        assert_eq!(threshold_53(1.0), 1 << 53);
        assert_eq!(threshold_53(0.25), 1 << 51);
        assert_eq!(threshold_53(f64::NAN.max(0.0)), 0);
    }

    #[test]
    fn disabled_config_never_enables_nor_draws() {
        let mut b = Buggify::new(3, BuggifyConfig::default());
        let mut rng = ChaCha8Rng::seed_from_u64(9);
        let before = rng.clone().next_u64();
        for _ in 0..1000 {
            assert!(!b.reach("p", &mut rng));
        }
        assert_eq!(rng.next_u64(), before, "a disabled run draws nothing");
        assert!(b.points().is_empty());
    }

    #[test]
    fn certain_probabilities_always_fire() {
        let cfg = BuggifyConfig {
            enabled: true,
            enable_probability: 1.0,
            fire_probability: 1.0,
        };
        let mut b = Buggify::new(1, cfg);
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        assert!((0..50).all(|_| b.reach("p", &mut rng)));
        assert_eq!(b.points()["p"].fired, 50);
        assert_eq!(b.enabled_points(), vec!["p"]);
    }

    #[test]
    fn enabled_points_fire_about_a_quarter_of_the_time() {
        let mut b = Buggify::new(5, BuggifyConfig::on());
        let mut rng = ChaCha8Rng::seed_from_u64(5);
        let names: Vec<&'static str> = (0..200)
            .map(|i| &*Box::leak(format!("p{i}").into_boxed_str()))
            .collect();
        let enabled: Vec<_> = names.iter().filter(|n| b.is_enabled(n)).collect();
        let name = **enabled.first().expect("some of 200 points are enabled");
        let fired = (0..4000).filter(|_| b.reach(name, &mut rng)).count();
        assert!((800..1200).contains(&fired), "fired {fired} of 4000");
    }
}
