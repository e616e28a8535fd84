//! Counters of what a run did, so a test can prove its faults actually fired (style.md, point 8)
//! and a bench can count events. Plain data; the executor increments it.

/// Every field counts since [`crate::Sim::new`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Events taken off the queue and handled (deliveries, drops at delivery, timers, jobs,
    /// faults, calls, deferrals).
    pub events: u64,
    /// Messages handed to the network (by actors or `send_external`), before any fault.
    pub messages_sent: u64,
    pub messages_delivered: u64,
    pub messages_dropped_loss: u64,
    pub messages_dropped_partition: u64,
    /// Arrived at (or were in flight to) a node that was down, stopped or crashed meanwhile.
    pub messages_dropped_node_down: u64,
    pub messages_dropped_unknown_node: u64,
    /// Extra copies created by duplication.
    pub messages_duplicated: u64,
    /// Messages parked by a clog.
    pub messages_held: u64,
    /// Held messages sent on after an unclog.
    pub messages_released: u64,
    pub messages_dropped_held_overflow: u64,
    pub timers_set: u64,
    pub timers_fired: u64,
    /// Cancels that found a live timer.
    pub timers_cancelled: u64,
    /// Timers dropped because their node crashed.
    pub timers_dropped_crash: u64,
    pub jobs_started: u64,
    pub jobs_completed: u64,
    pub jobs_failed: u64,
    pub jobs_dropped_crash: u64,
    pub crashes: u64,
    pub restarts: u64,
    pub stops: u64,
    pub faults_applied: u64,
    /// Scheduled faults that did not apply (e.g. restarting a running node).
    pub faults_noop: u64,
    /// Events put off because their node was paused.
    pub events_deferred_pause: u64,
}
