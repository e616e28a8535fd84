//! The meta store's backend conformance suite against a real MySQL/MariaDB.
//!
//! Needs `SHALE_TEST_MYSQL_URL` (e.g. `mysql://shale:shale@127.0.0.1:3306/shale_test`);
//! `.ci/run` starts a MariaDB and sets it. Without it the test prints why and passes, so a
//! machine without a database still runs the rest of the suite. All cases share one
//! database, so they run inside one test, one after another, each from empty tables.

use shale_actors::meta::conformance::run_all;
use shale_actors::meta::{MetaBackend, MetaConfig};
use shale_meta_mysql::MysqlBackend;
use std::sync::Arc;

#[test]
fn conformance_on_mysql() {
    let Ok(url) = std::env::var("SHALE_TEST_MYSQL_URL") else {
        eprintln!("skipping the MySQL conformance suite: SHALE_TEST_MYSQL_URL is not set");
        return;
    };
    let dedup = MetaConfig::default().dedup_entries_max;
    run_all(&|| {
        let b =
            MysqlBackend::connect(&url, dedup).unwrap_or_else(|e| panic!("connect to {url}: {e}"));
        b.reset().unwrap_or_else(|e| panic!("reset: {e}"));
        Arc::new(b) as Arc<dyn MetaBackend>
    });
}
