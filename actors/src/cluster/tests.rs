use super::*;
use crate::client::ClientConfig;
use crate::kernel::{Effect, IdGen, Time};
use crate::meta::{MemBackend, MetaConfig};
use crate::proto::data::{DataMsg, DataReply, DataResponse};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use std::sync::Arc;

fn run(
    node: &mut ClusterNode,
    f: impl FnOnce(&mut ClusterNode, &mut Ctx<'_, ClusterNode>),
) -> Vec<Effect<ClusterNode>> {
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    let mut ids = IdGen::new();
    let mut out = Vec::new();
    let mut ctx = Ctx::new(
        NodeId(1),
        Time::from_millis(5),
        &mut rng,
        &mut ids,
        &mut out,
    );
    f(node, &mut ctx);
    out
}

#[test]
fn wrong_kinds_are_dropped_without_a_panic() {
    let mut meta = ClusterNode::Meta(MetaStore::new(
        MetaConfig::default(),
        Arc::new(MemBackend::new()),
    ));
    let stray = ClusterMsg::Data(DataMsg::Response(DataResponse {
        id: crate::meta::RequestId(1),
        result: Ok(DataReply::Written),
    }));
    let out = run(&mut meta, |n, c| {
        n.on_msg(NodeId(9), stray, c);
        n.on_timer(
            TimerId(3),
            ClusterTimer::Client(ClientTimer::Retry(OpId(1))),
            c,
        );
        n.on_job_done(JobId(4), Ok(ClusterJob::Client(())), c);
    });
    assert!(out.is_empty(), "stray inputs cause no effects: {out:?}");
    let mut client = ClusterNode::Client(ClientRole::new(ClientConfig::new(NodeId(1)), 16));
    let out = run(&mut client, |n, c| {
        n.on_timer(
            TimerId(3),
            ClusterTimer::Meta(MetaTimer::CheckNodeLeases),
            c,
        );
    });
    assert!(out.is_empty());
    assert!(run(&mut meta, |n, c| assert!(n
        .start_op(OpInput::Admin(crate::proto::admin::AdminCall::Status), c)
        .is_none()))
    .is_empty());
}

#[test]
fn client_ops_are_lifted_into_cluster_effects() {
    let mut client = ClusterNode::Client(ClientRole::new(ClientConfig::new(NodeId(7)), 16));
    let input = OpInput::Get {
        table: "t".into(),
        row: b"r".to_vec(),
        filter: Default::default(),
    };
    let out = run(&mut client, |n, c| {
        assert!(matches!(n.start_op(input, c), Some(Ok(_))));
    });
    // A locate to the meta store and its timeout timer.
    assert!(out.iter().any(|e| matches!(
        e,
        Effect::Send {
            to: NodeId(7),
            msg: ClusterMsg::Meta(MetaMsg::Request(_))
        }
    )));
    assert!(out.iter().any(|e| matches!(
        e,
        Effect::SetTimer {
            timer: ClusterTimer::Client(ClientTimer::Timeout(_)),
            ..
        }
    )));
    // Bad input is refused at the call with a typed error.
    let bad = OpInput::Get {
        table: "t".into(),
        row: Vec::new(),
        filter: Default::default(),
    };
    let out = run(&mut client, |n, c| {
        assert!(matches!(
            n.start_op(bad, c),
            Some(Err(ClientError::Invalid(
                crate::proto::limits::InputError::EmptyRow
            )))
        ));
    });
    assert!(out.is_empty());
}

#[test]
fn client_meta_calls_go_to_the_meta_store_and_node_calls_are_refused() {
    use crate::meta::{MetaCall, MetaRequest};
    let mut client = ClusterNode::Client(ClientRole::new(ClientConfig::new(NodeId(7)), 16));
    let call = MetaCall::GetTableInfo { table: "m".into() };
    let out = run(&mut client, |n, c| {
        assert!(matches!(
            n.start_op(OpInput::Meta(call.clone()), c),
            Some(Ok(_))
        ));
    });
    assert!(out.iter().any(|e| matches!(
        e,
        Effect::Send {
            to: NodeId(7),
            msg: ClusterMsg::Meta(MetaMsg::Request(MetaRequest { call: c, .. }))
        } if *c == call
    )));
    // Registration is the node's own business: refused before anything is sent.
    let register = MetaCall::RegisterNode {
        name: "n".into(),
        addr: crate::kernel::Addr("a:1".into()),
        total_disk_bytes: 1,
    };
    let out = run(&mut client, |n, c| {
        assert!(matches!(
            n.start_op(OpInput::Meta(register), c),
            Some(Err(ClientError::Invalid(_)))
        ));
    });
    assert!(out.is_empty());
}
