//! Table DDL: every path, validation, and failure of the meta write.

use super::harness::*;
use crate::meta::{FamilyDesc, Schema, TableStatus, TabletStatus};
use crate::proto::admin::{AdminCall, AdminError, AdminReply};
use crate::proto::control::LoadMode;
use shale_storage::fs::FileStore;
use std::time::Duration;

pub fn schema() -> Schema {
    Schema {
        families: vec![FamilyDesc {
            name: "cf".into(),
            locality_group: "default".into(),
            max_versions: 3,
            min_versions: 0,
            ttl_secs: 0,
        }],
    }
}

pub fn create(c: &mut Cluster, name: &str, keys: &[&str]) -> Result<AdminReply, AdminError> {
    c.admin(AdminCall::CreateTable {
        name: name.into(),
        schema: schema(),
        split_keys: keys.iter().map(|k| k.as_bytes().to_vec()).collect(),
    })
}

#[test]
fn create_writes_meta_answers_then_loads_with_create_mode() {
    let mut c = Cluster::new(3);
    assert_eq!(create(&mut c, "t", &["g", "p"]), Ok(AdminReply::Done));
    c.run_for(Duration::from_secs(3));
    c.assert_table_healthy("t");
    assert_eq!(c.tablets("t").len(), 3);
    let loads: Vec<_> = c.nodes.values().flat_map(|n| n.loads.clone()).collect();
    assert_eq!(loads.len(), 3);
    assert!(loads.iter().all(|(_, m)| *m == LoadMode::Create));
    // Spread over the nodes, and the Create procedure is gone once all are Ready.
    assert!(c.nodes.values().all(|n| n.served.len() == 1));
    assert!(c.snapshot().procedures.is_empty());
    c.assert_memory_matches_meta();
}

#[test]
fn create_is_validated_again_at_the_master() {
    let mut c = Cluster::new(1);
    let bad = |r: Result<AdminReply, AdminError>| matches!(r, Err(AdminError::Invalid(_)));
    assert!(bad(create(&mut c, "bad name", &[])));
    assert!(bad(create(&mut c, "t", &["b", "a"])));
    assert!(bad(create(&mut c, "t", &["a", "a"])));
    assert!(bad(c.admin(AdminCall::CreateTable {
        name: "t".into(),
        schema: Schema::default(),
        split_keys: vec![],
    })));
    assert!(c.snapshot().tables.is_empty());
    assert_eq!(create(&mut c, "t", &[]), Ok(AdminReply::Done));
    assert_eq!(
        create(&mut c, "t", &[]),
        Err(AdminError::TableExists("t".into()))
    );
}

#[test]
fn each_ddl_meta_write_fails_after_bounded_retries() {
    let mut c = Cluster::new(1);
    let retries = c.mcfg.meta_write_retries_max;
    c.drop_meta_txns = retries;
    let r = create(&mut c, "t", &[]);
    assert!(matches!(r, Err(AdminError::MetaUnavailable(_))), "{r:?}");
    c.run_for(Duration::from_secs(5));
    // Dropped requests never reached meta: nothing was written, and the master (having
    // resynced) still leads and can create it now.
    assert!(c.snapshot().tables.is_empty());
    assert_eq!(create(&mut c, "t", &[]), Ok(AdminReply::Done));
    c.run_for(Duration::from_secs(2));
    for call in [
        AdminCall::DisableTable { name: "t".into() },
        AdminCall::AlterTable {
            name: "t".into(),
            schema: schema(),
        },
    ] {
        c.drop_meta_txns = retries;
        assert!(matches!(c.admin(call), Err(AdminError::MetaUnavailable(_))));
        c.run_for(Duration::from_secs(5));
    }
    assert_eq!(c.snapshot().tables["t"].value.status, TableStatus::Enabled);
    assert_eq!(
        c.admin(AdminCall::DisableTable { name: "t".into() }),
        Ok(AdminReply::Done)
    );
    c.run_for(Duration::from_secs(3));
    for call in [
        AdminCall::EnableTable { name: "t".into() },
        AdminCall::DropTable { name: "t".into() },
    ] {
        c.drop_meta_txns = retries;
        assert!(matches!(c.admin(call), Err(AdminError::MetaUnavailable(_))));
        c.run_for(Duration::from_secs(5));
        assert_eq!(c.snapshot().tables["t"].value.status, TableStatus::Disabled);
    }
}

#[test]
fn disable_enable_drop_and_trash() {
    let mut c = Cluster::new(2);
    create(&mut c, "t", &["m"]).ok();
    c.run_for(Duration::from_secs(3));
    assert!(matches!(
        c.admin(AdminCall::DropTable { name: "t".into() }),
        Err(AdminError::WrongTableStatus { .. })
    ));
    assert_eq!(
        c.admin(AdminCall::DisableTable { name: "t".into() }),
        Ok(AdminReply::Done)
    );
    c.run_for(Duration::from_secs(3));
    assert!(c
        .tablets("t")
        .iter()
        .all(|t| t.status == TabletStatus::Disabled && t.assigned.is_none()));
    assert!(c.nodes.values().all(|n| n.served.is_empty()));
    assert_eq!(
        c.admin(AdminCall::EnableTable { name: "t".into() }),
        Ok(AdminReply::Done)
    );
    c.run_for(Duration::from_secs(3));
    c.assert_table_healthy("t");
    // Reloads after enable open existing files.
    let opens = c
        .nodes
        .values()
        .flat_map(|n| n.loads.iter())
        .filter(|(_, m)| *m == LoadMode::Open)
        .count();
    assert_eq!(opens, 2);
    c.admin(AdminCall::DisableTable { name: "t".into() }).ok();
    c.run_for(Duration::from_secs(3));
    assert!(!c.fs.list("tables/t").unwrap_or_default().is_empty());
    assert_eq!(
        c.admin(AdminCall::DropTable { name: "t".into() }),
        Ok(AdminReply::Done)
    );
    c.run_for(Duration::from_secs(2));
    let snap = c.snapshot();
    assert!(!snap.tables.contains_key("t"));
    assert!(snap.tablets.is_empty());
    assert!(
        c.fs.list("tables/t").unwrap_or_default().is_empty(),
        "moved to the trash"
    );
    assert_eq!(c.fs.list("trash").unwrap_or_default().len(), 1);
    assert_eq!(
        c.snapshot().procedures.len(),
        1,
        "the drop waits for the trash grace"
    );
    c.run_for(Duration::from_secs(6));
    assert!(
        c.fs.list("trash").unwrap_or_default().is_empty(),
        "trash deleted after grace"
    );
    assert!(c.snapshot().procedures.is_empty());
    c.assert_memory_matches_meta();
}

#[test]
fn reads_list_describe_nodes_status() {
    let mut c = Cluster::new(2);
    create(&mut c, "t", &["m"]).ok();
    c.run_for(Duration::from_secs(3));
    match c.admin(AdminCall::ListTables) {
        Ok(AdminReply::Tables(v)) => assert_eq!((v.len(), v[0].tablets), (1, 2)),
        other => panic!("{other:?}"),
    }
    match c.admin(AdminCall::DescribeTable { name: "t".into() }) {
        Ok(AdminReply::Table { tablets, .. }) => assert_eq!(tablets.len(), 2),
        other => panic!("{other:?}"),
    }
    assert_eq!(
        c.admin(AdminCall::DescribeTable { name: "x".into() }),
        Err(AdminError::NoSuchTable("x".into()))
    );
    match c.admin(AdminCall::ListNodes) {
        Ok(AdminReply::Nodes(v)) => assert_eq!(v.len(), 2),
        other => panic!("{other:?}"),
    }
    match c.admin(AdminCall::Status) {
        Ok(AdminReply::Status(s)) => {
            assert_eq!((s.tablets, s.tablets_ready, s.nodes_up), (2, 2, 2))
        }
        other => panic!("{other:?}"),
    }
}
