//! The client core against scripted meta answers: what a caller is told when the tablet that
//! holds a row exists but cannot serve it (mid-procedure, unassigned) versus when no tablet
//! holds it at all.

use super::{Client, ClientConfig, ClientError, OpInput, OpResult};
use crate::kernel::Epoch;
use crate::kernel::{Actor, Ctx, Effect, IdGen, NodeId, Time};
use crate::meta::{
    Assignment, MetaCall, MetaMsg, MetaReply, MetaRequest, MetaResponse, TabletId, TabletLocation,
    TabletStatus,
};
use crate::proto::ClusterMsg;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

const META: NodeId = NodeId(1);

fn step(c: &mut Client, f: impl FnOnce(&mut Client, &mut Ctx<'_, Client>)) -> Vec<Effect<Client>> {
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    let mut ids = IdGen::new();
    let mut out = Vec::new();
    let mut ctx = Ctx::new(
        NodeId(7),
        Time::from_millis(5),
        &mut rng,
        &mut ids,
        &mut out,
    );
    f(c, &mut ctx);
    out
}

/// The error a Get of row "r5" ends with when meta answers its locate with `locs`. No
/// retries, so the first refusal is final and its reason is the one a caller sees.
fn get_fails_with(locs: Vec<TabletLocation>) -> String {
    let mut cfg = ClientConfig::new(META);
    cfg.retries_max = 0;
    let mut c = Client::new(cfg);
    let get = OpInput::Get {
        table: "t".into(),
        row: b"r5".to_vec(),
        filter: Default::default(),
    };
    let out = step(&mut c, |c, ctx| {
        c.start(get, ctx).expect("started");
    });
    let locate = out.iter().find_map(|e| match e {
        Effect::Send {
            to,
            msg:
                ClusterMsg::Meta(MetaMsg::Request(MetaRequest {
                    id,
                    call: MetaCall::Locate { .. },
                })),
        } if *to == META => Some(*id),
        _ => None,
    });
    let id = locate.expect("a locate to the meta store");
    let answer = ClusterMsg::Meta(MetaMsg::Response(MetaResponse {
        id,
        result: Ok(MetaReply::Locations(locs)),
    }));
    step(&mut c, |c, ctx| c.on_msg(META, answer, ctx));
    let done = c.take_completions();
    match done.as_slice() {
        [d] => match &d.result {
            OpResult::Failed(ClientError::RetriesExhausted { last, .. }) => last.clone(),
            other => panic!("expected a refusal, got {other:?}"),
        },
        other => panic!("expected one completion, got {other:?}"),
    }
}

fn location(status: TabletStatus, node: Option<u64>) -> TabletLocation {
    TabletLocation {
        tablet: TabletId(18),
        start: b"r".to_vec(),
        end: b"s".to_vec(),
        status,
        version: 11,
        record_version: 3,
        assigned: node.map(|n| Assignment {
            node: NodeId(n),
            epoch: Epoch(2),
        }),
        addr: None,
    }
}

#[test]
fn a_covering_tablet_that_cannot_serve_is_named_not_reported_missing() {
    let splitting = get_fails_with(vec![location(TabletStatus::Splitting, Some(101))]);
    assert_eq!(
        splitting,
        "tablet t18 of table \"t\" holds row \"r5\" but cannot serve it now (Splitting, on node n101)"
    );
    let unassigned = get_fails_with(vec![location(TabletStatus::Ready, None)]);
    assert!(
        unassigned.contains("cannot serve it now (Ready, assigned to no node)"),
        "{unassigned}"
    );
    let missing = get_fails_with(Vec::new());
    assert_eq!(missing, "no tablet of table \"t\" holds row \"r5\"");
}
