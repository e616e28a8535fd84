//! The meta store's backend conformance suite, and the format version checks, against a real
//! MySQL/MariaDB.
//!
//! Needs `SHALE_TEST_MYSQL_URL` (e.g. `mysql://shale:shale@127.0.0.1:3306/shale_test`);
//! `.ci/run` starts a MariaDB and sets it. Without it the test prints why and passes, so a
//! machine without a database still runs the rest of the suite. All cases share one
//! database, so they run inside one test, one after another, each from empty tables.

use mysql::prelude::Queryable;
use mysql::{Conn, Opts};
use shale_actors::meta::codec::META_FORMAT_VERSION;
use shale_actors::meta::conformance::run_all;
use shale_actors::meta::{BackendError, MetaBackend, MetaConfig, MetaSnapshot};
use shale_meta_mysql::MysqlBackend;
use std::sync::Arc;

#[test]
fn conformance_and_format_versions_on_mysql() {
    let Ok(url) = std::env::var("SHALE_TEST_MYSQL_URL") else {
        eprintln!("skipping the MySQL conformance suite: SHALE_TEST_MYSQL_URL is not set");
        return;
    };
    let dedup = MetaConfig::default().dedup_entries_max;
    let fresh = || {
        let b =
            MysqlBackend::connect(&url, dedup).unwrap_or_else(|e| panic!("connect to {url}: {e}"));
        b.reset().unwrap_or_else(|e| panic!("reset: {e}"));
        b
    };
    run_all(&|| Arc::new(fresh()) as Arc<dyn MetaBackend>);
    format_versions(&url, fresh());
}

/// The `format_version` row of `shale_state`, as stored.
fn version_row(conn: &mut Conn) -> Option<String> {
    conn.query_first::<Vec<u8>, _>("SELECT v FROM shale_state WHERE k = 'format_version'")
        .unwrap_or_else(|e| panic!("read the version row: {e}"))
        .map(|v| String::from_utf8_lossy(&v).into_owned())
}

fn set_version_row(conn: &mut Conn, v: &str) {
    conn.exec_drop(
        "REPLACE INTO shale_state (k, v) VALUES ('format_version', ?)",
        (v.as_bytes(),),
    )
    .unwrap_or_else(|e| panic!("write the version row: {e}"));
}

/// Written on first use, checked on every load and at startup; a newer build's database is
/// refused with the typed error and left as it is; one from before format versions loads.
fn format_versions(url: &str, b: MysqlBackend) {
    let dedup = MetaConfig::default().dedup_entries_max;
    let connect =
        || MysqlBackend::connect(url, dedup).unwrap_or_else(|e| panic!("connect to {url}: {e}"));
    let mut conn = Conn::new(Opts::from_url(url).unwrap_or_else(|e| panic!("url: {e}")))
        .unwrap_or_else(|e| panic!("connect to {url}: {e}"));
    let current = META_FORMAT_VERSION.to_string();

    // First use records the current version.
    assert_eq!(version_row(&mut conn), None, "reset leaves no version");
    assert_eq!(b.check_format(), Ok(()), "an empty database is readable");
    b.load().unwrap_or_else(|e| panic!("first load: {e}"));
    assert_eq!(version_row(&mut conn).as_deref(), Some(current.as_str()));
    let snap = MetaSnapshot {
        revision: 3,
        ..MetaSnapshot::default()
    };
    b.write_snapshot(&snap)
        .unwrap_or_else(|e| panic!("snapshot: {e}"));
    assert_eq!(
        version_row(&mut conn).as_deref(),
        Some(current.as_str()),
        "a snapshot keeps the version row"
    );

    // The current version round trips.
    let again = connect();
    assert_eq!(again.check_format(), Ok(()));
    let loaded = again.load().unwrap_or_else(|e| panic!("reload: {e}"));
    assert_eq!(loaded.snapshot.map(|s| s.revision), Some(3));

    // A newer build's database is refused at startup and on load, and left as it is.
    let newer = (META_FORMAT_VERSION + 1).to_string();
    set_version_row(&mut conn, &newer);
    let refused = Err(BackendError::UnsupportedFormat {
        what: "meta MySQL database",
        found: META_FORMAT_VERSION + 1,
        supported: META_FORMAT_VERSION,
    });
    let old_build = connect();
    assert_eq!(old_build.check_format(), refused);
    assert_eq!(old_build.load().map(|_| ()), refused);
    assert!(
        matches!(old_build.append(&[]), Err(BackendError::Io(_))),
        "no appends without a load"
    );
    assert_eq!(version_row(&mut conn).as_deref(), Some(newer.as_str()));

    // A damaged version row is corruption, not a format.
    set_version_row(&mut conn, "one");
    assert!(matches!(
        connect().load(),
        Err(BackendError::Corrupt { .. })
    ));

    // A database from before format versions (no row) is version 1: it loads, and the
    // version is recorded.
    conn.query_drop("DELETE FROM shale_state WHERE k = 'format_version'")
        .unwrap_or_else(|e| panic!("delete the version row: {e}"));
    let upgraded = connect();
    assert_eq!(upgraded.check_format(), Ok(()));
    let loaded = upgraded
        .load()
        .unwrap_or_else(|e| panic!("load a database from before format versions: {e}"));
    assert_eq!(loaded.snapshot.map(|s| s.revision), Some(3));
    assert_eq!(version_row(&mut conn).as_deref(), Some(current.as_str()));

    upgraded.reset().unwrap_or_else(|e| panic!("reset: {e}"));
}
