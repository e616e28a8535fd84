//! The backend conformance suite (`meta::conformance`) on the embedded backends: in memory
//! and on a simulated file store.

use crate::meta::conformance::run_all;
use crate::meta::{FsBackend, MemBackend, MetaBackend};
use shale_storage::fs::{SimFs, SimFsConfig};
use std::sync::Arc;

#[test]
fn conformance_on_the_memory_backend() {
    run_all(&|| Arc::new(MemBackend::new()) as Arc<dyn MetaBackend>);
}

#[test]
fn conformance_on_the_file_store_backend() {
    run_all(&|| {
        let fs = Arc::new(SimFs::new(SimFsConfig::default()));
        Arc::new(FsBackend::new(fs, "/meta")) as Arc<dyn MetaBackend>
    });
}
