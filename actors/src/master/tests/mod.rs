//! Master tests over the real meta store and scripted fake nodes (see `harness.rs`).

mod ddl;
mod failover;
mod fake_node;
mod harness;
mod procedures;
mod write_faults;
