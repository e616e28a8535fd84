//! Master lease (acquire, renew, expiry, steal after expiry, release, fencing of stale
//! writes) and node leases (register, epochs, heartbeat, Down on expiry).

use super::harness::*;
use crate::kernel::{Addr, Epoch, NodeId};
use crate::meta::*;
use std::time::Duration;

fn acquire(h: &mut Harness, who: NodeId) -> Result<MasterLease, MetaError> {
    let addr = Addr(format!("master{}:1", who.0));
    match h.call(who, MetaCall::AcquireMasterLease { addr })? {
        MetaReply::Lease { lease, duration_ms } => {
            assert_eq!(duration_ms, 10_000);
            Ok(lease)
        }
        other => panic!("{other:?}"),
    }
}

fn renew(h: &mut Harness, who: NodeId, term: u64) -> Result<MetaReply, MetaError> {
    h.call(who, MetaCall::RenewMasterLease { term })
}

/// A master write fenced by its lease.
fn fenced_write(h: &mut Harness, who: NodeId, term: u64, name: &str) -> Result<u64, MetaError> {
    let txn = Txn::new()
        .check(Check::MasterLease { holder: who, term })
        .op(Op::PutTable(table(name)));
    h.txn(who, txn)
}

#[test]
fn master_lease_acquire_renew_expire_and_steal() {
    let mut h = Harness::new();
    let l1 = acquire(&mut h, MASTER).expect("free lease");
    assert_eq!((l1.holder, l1.term), (MASTER, 1));
    assert_eq!(
        acquire(&mut h, MASTER2),
        Err(MetaError::LeaseTaken {
            holder: MASTER,
            term: 1
        })
    );
    // Acquiring again as the holder renews in place (same term).
    assert_eq!(acquire(&mut h, MASTER).map(|l| l.term), Ok(1));
    fenced_write(&mut h, MASTER, 1, "a").expect("holder writes");
    // Renewals keep it alive well past the first expiry.
    for _ in 0..3 {
        h.advance(Duration::from_secs(8));
        assert!(matches!(
            renew(&mut h, MASTER, 1),
            Ok(MetaReply::Lease { .. })
        ));
        assert!(matches!(
            acquire(&mut h, MASTER2),
            Err(MetaError::LeaseTaken { .. })
        ));
    }
    assert!(matches!(
        renew(&mut h, MASTER, 2),
        Err(MetaError::LeaseNotHeld { .. })
    ));
    assert!(matches!(
        renew(&mut h, MASTER2, 1),
        Err(MetaError::LeaseNotHeld { .. })
    ));
    let got = h.call(NodeId(60), MetaCall::GetMasterLease);
    assert!(
        matches!(got, Ok(MetaReply::LeaseState(Some(l))) if l.holder == MASTER && l.addr.0 == "master1:1")
    );
    // The holder stops renewing: after expiry its writes fail, and another master takes it.
    h.advance(Duration::from_secs(10));
    assert!(matches!(
        fenced_write(&mut h, MASTER, 1, "b"),
        Err(MetaError::LeaseNotHeld { .. })
    ));
    assert!(matches!(
        renew(&mut h, MASTER, 1),
        Err(MetaError::LeaseNotHeld { .. })
    ));
    let got = h.call(NodeId(60), MetaCall::GetMasterLease);
    assert_eq!(
        got,
        Ok(MetaReply::LeaseState(None)),
        "an expired lease has no holder"
    );
    let l2 = acquire(&mut h, MASTER2).expect("steal after expiry");
    assert_eq!((l2.holder, l2.term), (MASTER2, 2));
    // The deposed master's writes stay fenced even though it still names a term.
    assert!(matches!(
        fenced_write(&mut h, MASTER, 1, "b"),
        Err(MetaError::LeaseNotHeld {
            current_holder: Some(MASTER2),
            current_term: 2,
            ..
        })
    ));
    assert_eq!(h.get(tkey("b")), None);
    fenced_write(&mut h, MASTER2, 2, "b").expect("new master writes");
    // Release lets the other master in at once, with a new term.
    assert_eq!(
        h.call(MASTER2, MetaCall::ReleaseMasterLease { term: 2 }),
        Ok(MetaReply::Released)
    );
    assert_eq!(
        h.call(MASTER2, MetaCall::ReleaseMasterLease { term: 2 }),
        Ok(MetaReply::Released)
    );
    assert_eq!(acquire(&mut h, MASTER).map(|l| l.term), Ok(3));
    assert!(matches!(
        fenced_write(&mut h, MASTER2, 2, "c"),
        Err(MetaError::LeaseNotHeld { .. })
    ));
}

#[test]
fn master_lease_survives_a_meta_store_restart() {
    let mut h = Harness::new();
    acquire(&mut h, MASTER).expect("lease");
    h.advance(Duration::from_secs(9));
    h.crash();
    // The holder may still believe it holds the lease: nobody else gets it yet.
    assert!(matches!(
        acquire(&mut h, MASTER2),
        Err(MetaError::LeaseTaken { .. })
    ));
    fenced_write(&mut h, MASTER, 1, "a").expect("holder still writes");
    // After a full lease without renewal, it lapses as usual.
    h.advance(Duration::from_secs(11));
    assert_eq!(acquire(&mut h, MASTER2).map(|l| l.term), Ok(2));
    h.crash();
    assert_eq!(
        h.store.state().master_lease().map(|l| l.term),
        Some(2),
        "term is durable"
    );
}

fn register(h: &mut Harness, node: NodeId, name: &str, addr: &str) -> Result<Epoch, MetaError> {
    let call = MetaCall::RegisterNode {
        name: name.into(),
        addr: Addr(addr.into()),
        total_disk_bytes: 1 << 30,
    };
    match h.call(node, call)? {
        MetaReply::Registered {
            node: n,
            epoch,
            lease_ms,
        } => {
            assert_eq!((n, lease_ms), (node, 6_000));
            Ok(epoch)
        }
        other => panic!("{other:?}"),
    }
}

fn heartbeat(h: &mut Harness, node: NodeId, epoch: Epoch) -> Result<MetaReply, MetaError> {
    h.call(
        node,
        MetaCall::Heartbeat {
            epoch,
            status: NodeStatus::Up,
        },
    )
}

fn status(h: &mut Harness, node: NodeId) -> NodeStatus {
    match h.get(RecordKey::Node(node)).map(|v| v.value) {
        Some(Record::Node(n)) => n.status,
        other => panic!("{other:?}"),
    }
}

#[test]
fn node_registration_gives_growing_epochs_and_refuses_conflicts() {
    let mut h = Harness::new();
    let a = NodeId(10);
    let b = NodeId(11);
    let e1 = register(&mut h, a, "ts-a", "h:1").expect("a");
    let e2 = register(&mut h, b, "ts-b", "h:2").expect("b");
    let e3 = register(&mut h, a, "ts-a", "h:1").expect("a again");
    assert!(e1 < e2 && e2 < e3, "{e1} {e2} {e3}");
    // The old incarnation is fenced.
    assert_eq!(
        heartbeat(&mut h, a, e1),
        Err(MetaError::NodeUnknown { node: a, epoch: e1 })
    );
    assert!(heartbeat(&mut h, a, e3).is_ok());
    // Another process cannot take a registered name, or a live node's address.
    assert!(matches!(
        register(&mut h, NodeId(12), "ts-a", "h:9"),
        Err(MetaError::NodeNameTaken { .. })
    ));
    assert!(matches!(
        register(&mut h, NodeId(12), "ts-c", "h:2"),
        Err(MetaError::NodeAddressTaken { .. })
    ));
    // Epochs keep growing across a restart.
    h.crash();
    let e4 = register(&mut h, b, "ts-b", "h:2").expect("b after restart");
    assert!(e4 > e3);
}

#[test]
fn heartbeats_keep_a_node_up_and_silence_marks_it_down() {
    let mut h = Harness::new();
    let a = NodeId(10);
    let b = NodeId(11);
    let ea = register(&mut h, a, "ts-a", "h:1").expect("a");
    let eb = register(&mut h, b, "ts-b", "h:2").expect("b");
    let version = h.version(RecordKey::Node(a));
    for _ in 0..5 {
        h.advance(Duration::from_secs(4));
        heartbeat(&mut h, a, ea).expect("a beats");
    }
    // 20 s in: a kept beating, b went silent after registering (6 s lease + 2 s margin).
    assert_eq!(status(&mut h, a), NodeStatus::Up);
    assert_eq!(status(&mut h, b), NodeStatus::Down);
    assert_eq!(
        h.version(RecordKey::Node(a)),
        version,
        "heartbeats bump no version"
    );
    assert_eq!(heartbeat(&mut h, b, eb), Err(MetaError::NodeDown(b)));
    assert_eq!(h.store.counters().nodes_marked_down, 1);
    // Not marked before lease + margin: register c and check just inside the bound.
    let c = NodeId(12);
    register(&mut h, c, "ts-c", "h:3").expect("c");
    h.advance(Duration::from_millis(7_900));
    assert_eq!(status(&mut h, c), NodeStatus::Up);
    h.advance(Duration::from_millis(1_200));
    assert_eq!(status(&mut h, c), NodeStatus::Down);
    // A down node registers again and gets a new epoch; its address is free again.
    let eb2 = register(&mut h, b, "ts-b", "h:2").expect("b again");
    assert!(eb2 > eb);
    assert_eq!(status(&mut h, b), NodeStatus::Up);
    assert!(heartbeat(&mut h, b, eb2).is_ok());
}

#[test]
fn a_restart_grants_nodes_a_fresh_lease() {
    let mut h = Harness::new();
    let a = NodeId(10);
    let ea = register(&mut h, a, "ts-a", "h:1").expect("a");
    h.advance(Duration::from_secs(5));
    h.crash();
    // The node may have beaten just before the crash: it keeps a full lease from recovery.
    h.advance(Duration::from_secs(7));
    assert_eq!(status(&mut h, a), NodeStatus::Up);
    assert!(heartbeat(&mut h, a, ea).is_ok());
    h.advance(Duration::from_secs(9));
    assert_eq!(status(&mut h, a), NodeStatus::Down);
}

#[test]
fn a_retried_registration_keeps_its_epoch() {
    let mut h = Harness::new();
    let a = NodeId(10);
    let call = MetaCall::RegisterNode {
        name: "ts-a".into(),
        addr: Addr("h:1".into()),
        total_disk_bytes: 0,
    };
    let id = RequestId(9);
    h.send_with_id(a, id, call.clone());
    h.run_jobs();
    let first = h.response(a, id).expect("answered");
    // The reply was lost; the node retries with the same id and must not get a newer epoch
    // (it would then hold two and heartbeat with the wrong one).
    h.sent.clear();
    h.send_with_id(a, id, call.clone());
    h.run_jobs();
    assert_eq!(h.response(a, id), Some(first.clone()));
    let Ok(MetaReply::Registered { epoch, .. }) = first else {
        panic!("{first:?}")
    };
    assert_eq!(
        h.store.state().next_epoch(),
        Epoch(epoch.0 + 1),
        "one epoch used"
    );
    // A new request id is a new registration (a restarted node).
    h.sent.clear();
    let again = h.send(a, call);
    h.run_jobs();
    assert!(
        matches!(h.response(a, again), Some(Ok(MetaReply::Registered { epoch: e, .. })) if e > epoch)
    );
}
