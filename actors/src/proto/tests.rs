use super::admin::*;
use super::control::*;
use super::data::*;
use super::limits::*;
use super::*;
use crate::kernel::Epoch;
use crate::meta::{FamilyDesc, Schema, TabletId};

fn schema() -> Schema {
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

fn round_trip(msg: &ClusterMsg) {
    let bytes = bincode::serialize(msg).expect("encode");
    let back: ClusterMsg = bincode::deserialize(&bytes).expect("decode");
    assert_eq!(&back, msg);
}

#[test]
fn every_message_kind_round_trips_through_bincode() {
    let id = RequestId(7);
    round_trip(&ClusterMsg::Data(DataMsg::Request(DataRequest {
        id,
        table: "t".into(),
        tablet: TabletId(3),
        tablet_version: 2,
        node_epoch: Epoch(4),
        op: DataOp::Write {
            rows: vec![RowMutation {
                row: b"r".to_vec(),
                mutations: vec![
                    Mutation::Put {
                        family: "cf".into(),
                        qualifier: b"q".to_vec(),
                        ts: None,
                        value: vec![0; 3],
                    },
                    Mutation::DeleteVersion {
                        family: "cf".into(),
                        qualifier: b"q".to_vec(),
                        ts: 9,
                    },
                ],
            }],
        },
    })));
    round_trip(&ClusterMsg::Data(DataMsg::Response(DataResponse {
        id,
        result: Err(DataError::StaleVersion {
            tablet: TabletId(3),
            asked: 1,
            served: 2,
        }),
    })));
    round_trip(&ClusterMsg::Control(ControlMsg::Request(ControlRequest {
        id,
        term: 5,
        node_epoch: Epoch(1),
        cmd: ControlCmd::Load {
            tablet: TabletSpec {
                id: TabletId(9),
                table: "t".into(),
                start: vec![],
                end: b"m".to_vec(),
                path: "t/9".into(),
                version: 1,
                schema: schema(),
            },
            mode: LoadMode::MergeOf {
                left_path: "t/1".into(),
                right_path: "t/2".into(),
            },
        },
    })));
    round_trip(&ClusterMsg::Control(ControlMsg::Response(
        ControlResponse {
            id,
            result: Ok(ControlReply::Report(NodeReport {
                round: 1,
                epoch: Epoch(2),
                tablets: vec![TabletReport {
                    id: TabletId(9),
                    version: 1,
                    state: ServedState::Serving,
                    size_bytes: 10,
                    read_rate: Rate::new(1.5),
                    write_rate: Rate::default(),
                    scan_rate: Rate::default(),
                    inherited_files: vec!["t/1/x.sst".into()],
                    split_key: Some(b"k".to_vec()),
                }],
            })),
        },
    )));
    round_trip(&ClusterMsg::Admin(AdminMsg::Request(AdminRequest {
        id,
        call: AdminCall::CreateTable {
            name: "t".into(),
            schema: schema(),
            split_keys: vec![b"m".to_vec()],
        },
    })));
    round_trip(&ClusterMsg::Admin(AdminMsg::Response(AdminResponse {
        id,
        result: Err(AdminError::NotMergeable("not adjacent".into())),
    })));
}

#[test]
fn rates_survive_as_bits() {
    assert_eq!(Rate::new(2.25).get(), 2.25);
    assert!(Rate::new(f64::NAN).get().is_nan());
}

#[test]
fn retryable_data_errors_are_exactly_the_location_and_fencing_ones() {
    let t = TabletId(1);
    assert!(DataError::NotServing { tablet: t }.is_retryable());
    assert!(DataError::KeyNotInRange { tablet: t }.is_retryable());
    assert!(DataError::Busy { tablet: t }.is_retryable());
    assert!(DataError::StaleEpoch {
        asked: Epoch(1),
        current: Epoch(2)
    }
    .is_retryable());
    assert!(!DataError::NoSuchFamily("x".into()).is_retryable());
    assert!(!DataError::Invalid(InputError::EmptyRow).is_retryable());
    assert!(!DataError::Storage("disk".into()).is_retryable());
}

#[test]
fn names_follow_the_rules() {
    for good in ["t", "users", "a.b-c_d", "0day"] {
        assert_eq!(check_name("table", good), Ok(()), "{good}");
    }
    for bad in [
        "",
        "-x",
        "_x",
        "a b",
        "a/b",
        "é",
        &"x".repeat(NAME_BYTES_MAX + 1),
    ] {
        assert!(
            matches!(check_name("table", bad), Err(InputError::BadName { .. })),
            "{bad:?}"
        );
    }
}

#[test]
fn sizes_are_bounded() {
    assert_eq!(check_row(b""), Err(InputError::EmptyRow));
    assert_eq!(check_row(&vec![1; ROW_KEY_BYTES_MAX]), Ok(()));
    assert!(matches!(
        check_row(&vec![1; ROW_KEY_BYTES_MAX + 1]),
        Err(InputError::RowTooLarge { .. })
    ));
    assert!(matches!(
        check_qualifier(&vec![1; QUALIFIER_BYTES_MAX + 1]),
        Err(InputError::QualifierTooLarge { .. })
    ));
    assert_eq!(check_value(&[0; 10], 10), Ok(()));
    assert!(matches!(
        check_value(&[0; 11], 10),
        Err(InputError::ValueTooLarge { len: 11, max: 10 })
    ));
    assert!(matches!(
        check_count("keys", 5, 4),
        Err(InputError::TooMany { .. })
    ));
}

#[test]
fn byte_fields_keep_the_plain_sequence_encoding() {
    // Byte fields are serialized as bytes (one write, not one per byte: a tenth of a
    // simulated run went to per-byte serialization), and bincode writes bytes exactly like a
    // sequence of u8: a u64 length, then the bytes. So peers built before the change decode
    // these frames, and the reverse.
    let cell = CellOut {
        family: "cf".into(),
        qualifier: b"q1".to_vec(),
        ts: 7,
        value: vec![0, 1, 2, 255],
    };
    let as_seq = (
        "cf".to_string(),
        vec![b'q', b'1'],
        7u64,
        vec![0u8, 1, 2, 255],
    );
    let plain = bincode::serialize(&as_seq).expect("encodes");
    assert_eq!(bincode::serialize(&cell).expect("encodes"), plain);
    let back: CellOut = bincode::deserialize(&plain).expect("decodes");
    assert_eq!(back, cell);
    let spec = ColumnSpec {
        family: "cf".into(),
        qualifier: Some(b"q".to_vec()),
    };
    let plain = bincode::serialize(&("cf".to_string(), Some(vec![b'q']))).expect("encodes");
    assert_eq!(bincode::serialize(&spec).expect("encodes"), plain);
}
