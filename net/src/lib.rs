//! Shale's framing, transport and async host (being built).
