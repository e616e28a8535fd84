//! Meta store tests: a small harness that drives the actor through `Ctx` and runs its jobs
//! by hand, and one file per area.

mod catalog;
mod durability;
mod format;
pub(super) mod harness;
mod lease;
mod model_prop;
mod recovery;
mod txn;
