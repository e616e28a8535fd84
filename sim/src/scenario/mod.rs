//! Scenario files (docs/scenario-format.md): TOML describing a cluster, its tables, a client
//! workload, a fault plan, buggify, the checks to run and a liveness deadline. Parsed with serde
//! into typed structs (unknown fields are errors), then validated as a whole, so a runner only
//! ever sees a scenario it can run.
//!
//! - `values.rs`: durations, targets and triggers as small string grammars.
//! - `spec.rs`: the typed file. `validate.rs`: cross-field rules.
//! - `workload.rs`: the deterministic operation stream a seed and a workload give.
//!
//! Must not run anything: the scenario runner (cluster, fault application, checks) builds on
//! this module and lives elsewhere.

mod spec;
mod validate;
mod values;
mod workload;

pub use spec::{
    Balancer, Check, Cluster, Distribution, FaultKind, Faults, Keys, Liveness, Mix, Network,
    RandomFaults, Scenario, ScriptedFault, TableSpec, ValueSize, Workload,
};
pub use validate::Problem;
pub use values::{Dur, SignedDur, Target, Trigger, ValueError, PROCEDURES};
pub use workload::{row_key, PlannedOp, WorkloadGen};

use std::path::{Path, PathBuf};

/// Why a scenario could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ScenarioError {
    #[error("reading {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    /// Not TOML, a field of the wrong type, an unknown field or a bad duration, target or
    /// trigger (the message carries the line and column).
    #[error("{0}")]
    Parse(#[from] toml::de::Error),
    #[error("scenario {name:?} is invalid:\n  {}", problems.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n  "))]
    Invalid {
        name: String,
        problems: Vec<Problem>,
    },
}

impl Scenario {
    /// Parses and validates a scenario from TOML text.
    pub fn from_toml(text: &str) -> Result<Scenario, ScenarioError> {
        let scenario: Scenario = toml::from_str(text)?;
        scenario.validate()?;
        Ok(scenario)
    }

    /// Reads, parses and validates a scenario file.
    pub fn load(path: &Path) -> Result<Scenario, ScenarioError> {
        let text = std::fs::read_to_string(path).map_err(|source| ScenarioError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        Self::from_toml(&text)
    }

    /// Every cross-field problem at once.
    pub fn validate(&self) -> Result<(), ScenarioError> {
        let problems = validate::validate(self);
        if problems.is_empty() {
            Ok(())
        } else {
            Err(ScenarioError::Invalid {
                name: self.name.clone(),
                problems,
            })
        }
    }

    /// The scenario as TOML that parses back to the same scenario (how a shrunk run is
    /// written out).
    pub fn to_toml(&self) -> Result<String, toml::ser::Error> {
        toml::to_string(self)
    }

    /// The tables the workload uses, in file order.
    pub fn workload_tables(&self) -> Vec<&TableSpec> {
        self.tables
            .iter()
            .filter(|t| self.workload.tables.is_empty() || self.workload.tables.contains(&t.name))
            .collect()
    }
}
