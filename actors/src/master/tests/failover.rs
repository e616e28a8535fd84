//! Master failover: two masters compete for the lease; a master crashed at every step of
//! every procedure is succeeded by one that resumes or rolls back, leaving the table healthy
//! and memory equal to meta.

use super::ddl::create;
use super::harness::*;
use crate::kernel::NodeId;
use crate::proto::admin::{AdminCall, AdminError};
use std::time::Duration;

#[test]
fn second_master_waits_then_takes_over() {
    let mut c = Cluster::new(2);
    create(&mut c, "t", &["m"]).ok();
    c.run_for(Duration::from_secs(2));
    c.start_master(M2);
    c.run_for(Duration::from_secs(3));
    assert_eq!(c.leader(), Some(M1));
    assert_eq!(
        c.admin_to(M2, AdminCall::ListTables),
        Err(AdminError::NotMaster)
    );
    c.crash_master(M1);
    c.run_for(Duration::from_secs(15));
    assert_eq!(c.leader(), Some(M2));
    assert!(c.master(M2).lease().is_some_and(|l| l.term >= 2));
    c.assert_table_healthy("t");
    c.assert_memory_matches_meta();
}

/// Start a procedure, crash the master after `k` deliveries, and let a successor finish.
fn crash_during(k: usize, call: impl Fn(&Cluster) -> AdminCall) {
    let mut c = Cluster::new(2);
    create(&mut c, "t", &["m"]).ok();
    c.run_for(Duration::from_secs(2));
    c.start_master(M2);
    c.run_for(Duration::from_millis(100));
    let call = call(&c);
    c.admin_send(M1, call);
    c.step_n(k);
    c.crash_master(M1);
    c.run_for(Duration::from_secs(25));
    assert_eq!(c.leader(), Some(M2), "k = {k}");
    c.assert_table_healthy("t");
    assert!(
        c.snapshot().procedures.is_empty(),
        "k = {k}: every procedure ended"
    );
    c.assert_memory_matches_meta();
}

#[test]
fn crash_at_every_step_of_a_split() {
    for k in 0..30 {
        crash_during(k, |c| AdminCall::SplitTablet {
            tablet: c.tablets("t")[0].id,
            key: Some(b"f".to_vec()),
        });
    }
}

#[test]
fn crash_at_every_step_of_a_merge() {
    for k in 0..40 {
        crash_during(k, |c| {
            let ts = c.tablets("t");
            AdminCall::MergeTablets {
                a: ts[0].id,
                b: ts[1].id,
            }
        });
    }
}

#[test]
fn crash_at_every_step_of_a_move() {
    for k in 0..30 {
        crash_during(k, |c| {
            let t = c.tablets("t")[0].clone();
            let from = t.assigned.map(|a| a.node).unwrap_or(NodeId(0));
            let to = if from == NodeId(11) {
                NodeId(12)
            } else {
                NodeId(11)
            };
            AdminCall::MoveTablet {
                tablet: t.id,
                node: to,
            }
        });
    }
}

#[test]
fn crash_at_every_step_of_create_and_disable() {
    for k in 0..30 {
        let mut c = Cluster::new(2);
        c.start_master(M2);
        c.run_for(Duration::from_millis(100));
        c.admin_send(
            M1,
            AdminCall::CreateTable {
                name: "t".into(),
                schema: super::ddl::schema(),
                split_keys: vec![b"m".to_vec()],
            },
        );
        c.step_n(k);
        c.crash_master(M1);
        c.run_for(Duration::from_secs(25));
        assert_eq!(c.leader(), Some(M2));
        if c.snapshot().tables.contains_key("t") {
            c.assert_table_healthy("t");
        }
        assert!(c.snapshot().procedures.is_empty(), "k = {k}");
        c.assert_memory_matches_meta();
    }
}
