//! Role settings from the TOML config of `shale meta|master|tabletnode`: the `[metastore]`,
//! `[master]` and `[tabletnode]` tables. Every key is optional and names a field of the
//! role's config (`MetaConfig`, `MasterConfig`, `NodeConfig`) in the units of its suffix;
//! a missing key keeps the actor's default. The keys are documented in docs/operations.md.
//!
//! One file may carry all three tables (each role reads its own), which is also what makes
//! the cross-role checks meaningful: a heartbeat must be shorter than the node lease, a
//! master lease renewal shorter than the master lease. Values a table leaves out are checked
//! at their defaults.
//!
//! Must not: read files or env (roles.rs does), or hold role behaviour.

use serde::Deserialize;
use shale_actors::master::MasterConfig;
use shale_actors::meta::MetaConfig;
use shale_actors::node::NodeConfig;
use std::time::Duration;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SettingsError {
    #[error("[{table}] {key} must be greater than 0")]
    Zero {
        table: &'static str,
        key: &'static str,
    },
    #[error("{what}: {shorter} ms must be shorter than {longer} ms")]
    Order {
        what: &'static str,
        shorter: u64,
        longer: u64,
    },
}

/// The `[metastore]` table.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetaSettings {
    pub master_lease_ms: Option<u64>,
    pub node_lease_ms: Option<u64>,
    pub node_down_margin_ms: Option<u64>,
    pub node_check_interval_ms: Option<u64>,
}

/// The `[master]` table.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MasterSettings {
    pub lease_renew_interval_ms: Option<u64>,
    pub query_interval_ms: Option<u64>,
    pub query_deadline_ms: Option<u64>,
    pub clock_skew_margin_ms: Option<u64>,
    pub control_timeout_ms: Option<u64>,
    pub load_retry_ms: Option<u64>,
    pub split_size_bytes: Option<u64>,
    pub merge_size_bytes: Option<u64>,
    pub anti_flap_ms: Option<u64>,
    pub gc_grace_ms: Option<u64>,
    pub trash_grace_ms: Option<u64>,
}

/// The `[tabletnode]` table.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeSettings {
    pub heartbeat_interval_ms: Option<u64>,
    pub register_retry_interval_ms: Option<u64>,
    pub value_bytes_max: Option<usize>,
    /// The node's block cache budget; 0 turns the cache off.
    pub block_cache_bytes: Option<usize>,
}

/// All three tables.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    #[serde(default)]
    pub metastore: MetaSettings,
    #[serde(default)]
    pub master: MasterSettings,
    #[serde(default)]
    pub tabletnode: NodeSettings,
}

fn ms(v: u64) -> Duration {
    Duration::from_millis(v)
}

fn as_ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

fn set<T: Copy>(field: &mut T, value: Option<T>) {
    if let Some(v) = value {
        *field = v;
    }
}

impl Settings {
    /// Refuse zero intervals and leases, and orderings that cannot work.
    pub fn check(&self) -> Result<(), SettingsError> {
        let nonzero = [
            (
                "metastore",
                "master_lease_ms",
                self.metastore.master_lease_ms,
            ),
            ("metastore", "node_lease_ms", self.metastore.node_lease_ms),
            (
                "metastore",
                "node_check_interval_ms",
                self.metastore.node_check_interval_ms,
            ),
            (
                "master",
                "lease_renew_interval_ms",
                self.master.lease_renew_interval_ms,
            ),
            ("master", "query_interval_ms", self.master.query_interval_ms),
            ("master", "query_deadline_ms", self.master.query_deadline_ms),
            (
                "master",
                "control_timeout_ms",
                self.master.control_timeout_ms,
            ),
            ("master", "load_retry_ms", self.master.load_retry_ms),
            ("master", "split_size_bytes", self.master.split_size_bytes),
            (
                "tabletnode",
                "heartbeat_interval_ms",
                self.tabletnode.heartbeat_interval_ms,
            ),
            (
                "tabletnode",
                "register_retry_interval_ms",
                self.tabletnode.register_retry_interval_ms,
            ),
        ];
        for (table, key, value) in nonzero {
            if value == Some(0) {
                return Err(SettingsError::Zero { table, key });
            }
        }
        if self.tabletnode.value_bytes_max == Some(0) {
            return Err(SettingsError::Zero {
                table: "tabletnode",
                key: "value_bytes_max",
            });
        }
        let meta = self.meta_config();
        let master = self.master_config(MasterConfig::new(
            shale_actors::NodeId(0),
            shale_actors::Addr(String::new()),
        ));
        let node = self.node_config(NodeConfig::new(
            "check",
            shale_actors::Addr(String::new()),
            shale_actors::NodeId(0),
        ));
        let order = |what, shorter: u64, longer: u64| {
            if shorter < longer {
                Ok(())
            } else {
                Err(SettingsError::Order {
                    what,
                    shorter,
                    longer,
                })
            }
        };
        order(
            "[tabletnode] heartbeat_interval_ms vs [metastore] node_lease_ms",
            as_ms(node.heartbeat_interval),
            as_ms(meta.node_lease),
        )?;
        order(
            "[master] lease_renew_interval_ms vs [metastore] master_lease_ms",
            master.lease_renew_interval_ms,
            as_ms(meta.master_lease),
        )?;
        order(
            "[master] query_deadline_ms vs query_interval_ms",
            master.query_deadline_ms,
            master.query_interval_ms,
        )?;
        // The master refreshes its copy of node leases once per round, so a copy can be a
        // round (interval + deadline) old when it judges a node; a live node's recorded expiry
        // is at least lease - heartbeat ahead, and the skew margin is added on top.
        order(
            "[master] query_interval_ms + query_deadline_ms vs [metastore] node_lease_ms - \
             [tabletnode] heartbeat_interval_ms + [master] clock_skew_margin_ms",
            master
                .query_interval_ms
                .saturating_add(master.query_deadline_ms),
            as_ms(meta.node_lease)
                .saturating_add(master.clock_skew_margin_ms)
                .saturating_sub(as_ms(node.heartbeat_interval)),
        )?;
        let merge = master.merge_size_bytes;
        if merge >= master.split_size_bytes {
            // Sizes, not times, but the same refusal: merged tablets would split at once.
            return Err(SettingsError::Order {
                what: "[master] merge_size_bytes vs split_size_bytes (bytes)",
                shorter: merge,
                longer: master.split_size_bytes,
            });
        }
        Ok(())
    }

    /// The meta store's config: the defaults with this file's `[metastore]` keys.
    pub fn meta_config(&self) -> MetaConfig {
        let s = &self.metastore;
        let mut c = MetaConfig::default();
        set(&mut c.master_lease, s.master_lease_ms.map(ms));
        set(&mut c.node_lease, s.node_lease_ms.map(ms));
        set(&mut c.node_down_margin, s.node_down_margin_ms.map(ms));
        set(&mut c.node_check_interval, s.node_check_interval_ms.map(ms));
        c
    }

    /// `base` with this file's `[master]` keys.
    pub fn master_config(&self, base: MasterConfig) -> MasterConfig {
        let s = &self.master;
        let mut c = base;
        set(&mut c.lease_renew_interval_ms, s.lease_renew_interval_ms);
        set(&mut c.query_interval_ms, s.query_interval_ms);
        set(&mut c.query_deadline_ms, s.query_deadline_ms);
        set(&mut c.clock_skew_margin_ms, s.clock_skew_margin_ms);
        set(&mut c.control_timeout_ms, s.control_timeout_ms);
        set(&mut c.load_retry_ms, s.load_retry_ms);
        set(&mut c.split_size_bytes, s.split_size_bytes);
        set(&mut c.merge_size_bytes, s.merge_size_bytes);
        set(&mut c.anti_flap_ms, s.anti_flap_ms);
        set(&mut c.gc_grace_ms, s.gc_grace_ms);
        set(&mut c.trash_grace_ms, s.trash_grace_ms);
        c
    }

    /// `base` with this file's `[tabletnode]` keys.
    pub fn node_config(&self, base: NodeConfig) -> NodeConfig {
        let s = &self.tabletnode;
        let mut c = base;
        set(&mut c.heartbeat_interval, s.heartbeat_interval_ms.map(ms));
        set(
            &mut c.register_retry_interval,
            s.register_retry_interval_ms.map(ms),
        );
        set(&mut c.value_bytes_max, s.value_bytes_max);
        set(&mut c.block_cache_bytes, s.block_cache_bytes);
        c
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Settings {
        match toml::from_str(text) {
            Ok(s) => s,
            Err(e) => panic!("{text:?} does not parse: {e}"),
        }
    }

    #[test]
    fn keys_reach_the_role_configs_and_missing_keys_keep_defaults() {
        let s = parse(
            "[metastore]\nnode_lease_ms = 4000\n\
             [master]\nquery_interval_ms = 2000\nsplit_size_bytes = 1048576\nmerge_size_bytes = 65536\n\
             [tabletnode]\nheartbeat_interval_ms = 700\nblock_cache_bytes = 1048576\n",
        );
        assert_eq!(s.check(), Ok(()));
        let meta = s.meta_config();
        assert_eq!(meta.node_lease, Duration::from_millis(4000));
        assert_eq!(
            meta.node_down_margin,
            MetaConfig::default().node_down_margin
        );
        let base = MasterConfig::new(shale_actors::NodeId(2), shale_actors::Addr("m".into()));
        let default_deadline = base.query_deadline_ms;
        let master = s.master_config(base);
        assert_eq!(master.query_interval_ms, 2000);
        assert_eq!(master.split_size_bytes, 1 << 20);
        assert_eq!(master.query_deadline_ms, default_deadline);
        let node = s.node_config(NodeConfig::new(
            "n",
            shale_actors::Addr("n".into()),
            shale_actors::NodeId(1),
        ));
        assert_eq!(node.heartbeat_interval, Duration::from_millis(700));
        assert_eq!(node.block_cache_bytes, 1 << 20);
    }

    #[test]
    fn defaults_pass_the_checks() {
        assert_eq!(Settings::default().check(), Ok(()));
    }

    #[test]
    fn unknown_keys_and_tables_are_refused() {
        for text in ["[master]\nquery_intervl_ms = 5\n", "[nodes]\nx = 1\n"] {
            assert!(toml::from_str::<Settings>(text).is_err(), "{text:?}");
        }
    }

    #[test]
    fn zero_and_misordered_values_are_refused() {
        let zero = parse("[metastore]\nnode_lease_ms = 0\n");
        assert_eq!(
            zero.check(),
            Err(SettingsError::Zero {
                table: "metastore",
                key: "node_lease_ms"
            })
        );
        // A heartbeat as long as the default lease would let the lease lapse between beats.
        let slow = parse("[tabletnode]\nheartbeat_interval_ms = 60000\n");
        assert!(matches!(slow.check(), Err(SettingsError::Order { .. })));
        let sizes = parse("[master]\nsplit_size_bytes = 100\nmerge_size_bytes = 100\n");
        assert!(matches!(sizes.check(), Err(SettingsError::Order { .. })));
        // Rounds so slow that the master's copy of a live node's lease could look expired.
        let stale = parse("[master]\nquery_interval_ms = 5000\nquery_deadline_ms = 2000\n");
        assert!(matches!(stale.check(), Err(SettingsError::Order { .. })));
    }
}
