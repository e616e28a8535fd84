//! Shale's deterministic discrete-event executor (being built).
