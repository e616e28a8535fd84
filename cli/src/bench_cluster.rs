//! `shale bench cluster` (placeholder until the next commit fills it).
use crate::args::ClusterBenchArgs;
pub fn run(_args: ClusterBenchArgs) -> Result<(), String> {
    Err("not built yet".into())
}
