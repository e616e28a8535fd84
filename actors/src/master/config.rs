//! The master's settings: every interval, retry loop and per-round budget has a named bound.
//!
//! Must not: read files, env or flags (the CLI builds a `MasterConfig`).

use crate::kernel::{Addr, NodeId};

#[derive(Clone, Debug)]
pub struct MasterConfig {
    /// The meta store's node id.
    pub meta: NodeId,
    /// This master's address, published in the lease record for clients.
    pub addr: Addr,
    /// Renew the lease this often (well inside the meta store's lease length).
    pub lease_renew_interval_ms: u64,
    /// Try to acquire the lease again this long after losing or failing to get it.
    pub acquire_retry_ms: u64,
    /// One meta request attempt waits this long for an answer.
    pub meta_timeout_ms: u64,
    /// Attempts of one meta write before its caller is told it failed.
    pub meta_write_retries_max: u32,
    /// Pause before retrying a meta request after a retryable error.
    pub meta_retry_backoff_ms: u64,
    /// One control command attempt waits this long.
    pub control_timeout_ms: u64,
    /// Attempts of one control command before its procedure is told there was no answer.
    pub control_retries_max: u32,
    /// Pause between attempts of a control command, and before a procedure retries a phase.
    pub control_retry_backoff_ms: u64,
    pub proc_retry_ms: u64,
    /// Query rounds start this often.
    pub query_interval_ms: u64,
    /// A round stops waiting for replies after this long.
    pub query_deadline_ms: u64,
    /// Split a tablet above this size.
    pub split_size_bytes: u64,
    /// Merge adjacent tablets when both are below this size.
    pub merge_size_bytes: u64,
    pub splits_per_round_max: usize,
    pub merges_per_round_max: usize,
    pub moves_per_round_max: usize,
    /// Move for size when the fullest node holds at least this percent of the emptiest.
    pub move_size_ratio_pct: u64,
    /// Move for load when the hottest node's rate is at least this percent of the idlest's
    /// and at least `move_load_min_per_sec`.
    pub move_load_ratio_pct: u64,
    pub move_load_min_per_sec: u64,
    /// A tablet born of a split is not merged (and a merged one not split) for this long.
    pub anti_flap_ms: u64,
    /// A dead folder is deleted only after it has looked unused this long.
    pub gc_grace_ms: u64,
    /// Dead-folder deletions started per round.
    pub gc_deletes_per_round_max: usize,
    /// List the tables root for dead folders every this many rounds.
    pub gc_list_every_rounds: u64,
    /// A dropped table's trash is deleted after this long.
    pub trash_grace_ms: u64,
    /// A node is dead only this long after its lease expired (on the meta store's clock).
    pub clock_skew_margin_ms: u64,
    /// Wait before loading a tablet again after a failed load.
    pub load_retry_ms: u64,
    /// Procedures running at once (beyond it, balance and admin calls wait).
    pub procedures_max: usize,
    /// Stat rows per transaction.
    pub stat_rows_per_txn_max: usize,
    /// Records per meta scan page.
    pub scan_page_len: u32,
    /// Folder of live tables (`<root>/<table>/t<id>`) and of dropped tables' trash.
    pub tables_root: String,
    pub trash_root: String,
    /// Mutating admin requests remembered by (sender, request id), so a copy the network
    /// delivers later is dropped instead of applied twice.
    pub admin_requests_remembered: usize,
    /// Waits between resyncs in a row (see `Master::resync`): the second waits the minimum,
    /// each next one twice as long, up to the maximum.
    pub resync_backoff_min_ms: u64,
    pub resync_backoff_max_ms: u64,
    /// Planted bugs live in this run (tests only).
    #[cfg(feature = "planted-bugs")]
    pub planted: crate::planted::PlantedBugs,
}

impl MasterConfig {
    pub fn new(meta: NodeId, addr: Addr) -> Self {
        Self {
            meta,
            addr,
            lease_renew_interval_ms: 3_000,
            acquire_retry_ms: 1_000,
            meta_timeout_ms: 1_000,
            meta_write_retries_max: 5,
            meta_retry_backoff_ms: 100,
            control_timeout_ms: 2_000,
            control_retries_max: 3,
            control_retry_backoff_ms: 200,
            proc_retry_ms: 1_000,
            // Rounds also notice dead nodes, so the interval is part of the failover time
            // (docs/operations.md, "Failover").
            query_interval_ms: 1_000,
            query_deadline_ms: 500,
            split_size_bytes: 512 << 20,
            merge_size_bytes: 16 << 20,
            splits_per_round_max: 4,
            merges_per_round_max: 2,
            moves_per_round_max: 2,
            move_size_ratio_pct: 120,
            move_load_ratio_pct: 200,
            move_load_min_per_sec: 100,
            anti_flap_ms: 600_000,
            gc_grace_ms: 60_000,
            gc_deletes_per_round_max: 16,
            gc_list_every_rounds: 6,
            trash_grace_ms: 3_600_000,
            clock_skew_margin_ms: 500,
            load_retry_ms: 1_000,
            procedures_max: 256,
            stat_rows_per_txn_max: 200,
            scan_page_len: 1_000,
            tables_root: "tables".into(),
            trash_root: "trash".into(),
            admin_requests_remembered: 4_096,
            resync_backoff_min_ms: 50,
            resync_backoff_max_ms: 2_000,
            #[cfg(feature = "planted-bugs")]
            planted: crate::planted::PlantedBugs::NONE,
        }
    }

    /// The folder of a tablet: `<tables_root>/<table>/t<id>`. GC reads ids back from it.
    pub fn tablet_path(&self, table: &str, id: crate::meta::TabletId) -> String {
        format!("{}/{}/t{}", self.tables_root, table, id.0)
    }
}
