//! Frame round trips and the rejection of every kind of malformed frame.

use super::*;
use proptest::prelude::*;
use serde::{Deserialize, Serialize};

const MAX: u32 = 1024 * 1024;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
enum Sample {
    Bytes(Vec<u8>),
    Pair { a: u64, b: String },
}

fn sample_strategy() -> impl Strategy<Value = Sample> {
    prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..4096).prop_map(Sample::Bytes),
        (any::<u64>(), ".{0,64}").prop_map(|(a, b)| Sample::Pair { a, b }),
    ]
}

fn frame_of(msg: &Sample) -> Vec<u8> {
    match encode(msg, MAX) {
        Ok(bytes) => bytes,
        Err(e) => panic!("encoding a small sample failed: {e}"),
    }
}

/// Drive a future that never waits (slice reads, Vec writes) to completion, in either cfg.
fn block_on<F: std::future::Future>(f: F) -> F::Output {
    let mut f = std::pin::pin!(f);
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    for _ in 0..1_000_000 {
        if let std::task::Poll::Ready(out) = f.as_mut().poll(&mut cx) {
            return out;
        }
    }
    panic!("an in-memory frame future kept waiting");
}

fn read_all(bytes: &[u8]) -> Vec<Result<Option<Sample>, FrameError>> {
    block_on(async {
        let mut r = bytes;
        let mut out = Vec::new();
        loop {
            let item = read_frame::<Sample, _>(&mut r, MAX).await;
            let stop = !matches!(item, Ok(Some(_)));
            out.push(item);
            if stop {
                return out;
            }
        }
    })
}

proptest! {
    #[test]
    fn buffer_round_trip(msgs in proptest::collection::vec(sample_strategy(), 1..8)) {
        let mut buf = Vec::new();
        for m in &msgs {
            prop_assert!(encode_into(m, &mut buf, MAX).is_ok());
        }
        let mut at = 0;
        for m in &msgs {
            let decoded = decode::<Sample>(&buf[at..], MAX);
            let Ok(Some((got, used))) = decoded else {
                return Err(TestCaseError::fail(format!("no frame at {at}: {decoded:?}")));
            };
            prop_assert_eq!(&got, m);
            at += used;
        }
        prop_assert_eq!(at, buf.len());
    }

    #[test]
    fn every_prefix_asks_for_more(msg in sample_strategy(), cut in any::<prop::sample::Index>()) {
        let bytes = frame_of(&msg);
        let cut = cut.index(bytes.len());
        let wants_more = matches!(decode::<Sample>(&bytes[..cut], MAX), Ok(None));
        prop_assert!(wants_more);
        let is_truncated = matches!(
            decode_exact::<Sample>(&bytes[..cut], MAX),
            Err(FrameError::Truncated { .. })
        );
        prop_assert!(is_truncated);
    }

    #[test]
    fn stream_round_trip(msgs in proptest::collection::vec(sample_strategy(), 0..6)) {
        let mut bytes = Vec::new();
        for m in &msgs {
            bytes.extend(frame_of(m));
        }
        let results = read_all(&bytes);
        prop_assert_eq!(results.len(), msgs.len() + 1);
        for (r, m) in results.iter().zip(&msgs) {
            let same = matches!(r, Ok(Some(got)) if got == m);
            prop_assert!(same);
        }
        let clean_end = matches!(results.last(), Some(Ok(None)));
        prop_assert!(clean_end);
    }

    #[test]
    fn any_flipped_payload_bit_is_caught(msg in sample_strategy(), pos in any::<prop::sample::Index>(), bit in 0u8..8) {
        let mut bytes = frame_of(&msg);
        let payload_len = bytes.len() - FRAME_HEADER_LEN;
        prop_assume!(payload_len > 0);
        let at = FRAME_HEADER_LEN + pos.index(payload_len);
        bytes[at] ^= 1 << bit;
        let is_bad_crc = matches!(decode::<Sample>(&bytes, MAX), Err(FrameError::BadCrc { .. }));
        prop_assert!(is_bad_crc);
    }
}

fn sample() -> Sample {
    Sample::Pair {
        a: 7,
        b: "seven".into(),
    }
}

#[test]
fn bad_magic_is_refused() {
    let mut bytes = frame_of(&sample());
    bytes[0] = b'X';
    assert!(
        matches!(decode::<Sample>(&bytes, MAX), Err(FrameError::BadMagic { found }) if found == *b"XHL1")
    );
    // Detected from the header alone, before the payload arrives.
    assert!(matches!(
        decode::<Sample>(&bytes[..FRAME_HEADER_LEN], MAX),
        Err(FrameError::BadMagic { .. })
    ));
    assert!(matches!(
        read_all(&bytes).first(),
        Some(Err(FrameError::BadMagic { .. }))
    ));
}

#[test]
fn wrong_version_is_refused() {
    let mut bytes = frame_of(&sample());
    bytes[4..6].copy_from_slice(&(PROTOCOL_VERSION + 1).to_le_bytes());
    assert!(matches!(
        decode::<Sample>(&bytes, MAX),
        Err(FrameError::BadVersion { found }) if found == PROTOCOL_VERSION + 1
    ));
    assert!(matches!(
        read_all(&bytes).first(),
        Some(Err(FrameError::BadVersion { .. }))
    ));
}

#[test]
fn oversize_is_refused_on_both_ends() {
    let big = Sample::Bytes(vec![0xAB; 2000]);
    assert!(matches!(
        encode(&big, 1000),
        Err(FrameError::Oversize { max: 1000, .. })
    ));
    let mut buf = vec![1, 2, 3];
    assert!(encode_into(&big, &mut buf, 1000).is_err());
    assert_eq!(
        buf,
        vec![1, 2, 3],
        "a failed encode leaves the buffer as it was"
    );

    let bytes = frame_of(&big);
    assert!(matches!(
        decode::<Sample>(&bytes, 1000),
        Err(FrameError::Oversize { max: 1000, .. })
    ));
    // A header announcing u32::MAX bytes is refused before anything is allocated.
    let mut huge = frame_of(&sample());
    huge[6..10].copy_from_slice(&u32::MAX.to_le_bytes());
    assert!(matches!(
        decode::<Sample>(&huge[..FRAME_HEADER_LEN], FRAME_SIZE_MAX_BYTES_DEFAULT),
        Err(FrameError::Oversize { .. })
    ));
    assert!(matches!(
        read_all(&huge).first(),
        Some(Err(FrameError::Oversize { .. }))
    ));
}

#[test]
fn bad_crc_is_refused() {
    let mut bytes = frame_of(&sample());
    bytes[10] ^= 0xFF;
    assert!(matches!(
        decode::<Sample>(&bytes, MAX),
        Err(FrameError::BadCrc { .. })
    ));
    assert!(matches!(
        read_all(&bytes).first(),
        Some(Err(FrameError::BadCrc { .. }))
    ));
}

#[test]
fn truncated_stream_is_refused() {
    let bytes = frame_of(&sample());
    // Mid-header.
    assert!(matches!(
        read_all(&bytes[..5]).first(),
        Some(Err(FrameError::Truncated {
            got: 5,
            want: FRAME_HEADER_LEN
        }))
    ));
    // Mid-payload.
    let cut = bytes.len() - 1;
    assert!(matches!(
        read_all(&bytes[..cut]).first(),
        Some(Err(FrameError::Truncated { got, want })) if *got == cut && *want == bytes.len()
    ));
    // A whole frame followed by half of another: the first arrives, then the error.
    let mut two = bytes.clone();
    two.extend_from_slice(&bytes[..FRAME_HEADER_LEN + 1]);
    let results = read_all(&two);
    assert!(matches!(results.first(), Some(Ok(Some(_)))));
    assert!(matches!(
        results.get(1),
        Some(Err(FrameError::Truncated { .. }))
    ));
}

#[test]
fn undecodable_payload_is_refused() {
    // A valid frame whose payload is not a `Sample`: enum tag 9 does not exist.
    let payload = 9u32.to_le_bytes();
    let bytes = raw_frame(&payload);
    assert!(matches!(
        decode::<Sample>(&bytes, MAX),
        Err(FrameError::Decode(_))
    ));
    assert!(matches!(
        read_all(&bytes).first(),
        Some(Err(FrameError::Decode(_)))
    ));
}

#[test]
fn length_inside_payload_cannot_allocate_past_the_frame() {
    // `Sample::Bytes` whose vec length claims 2^40 bytes, in a 12-byte frame.
    let mut payload = 0u32.to_le_bytes().to_vec();
    payload.extend_from_slice(&(1u64 << 40).to_le_bytes());
    let bytes = raw_frame(&payload);
    assert!(matches!(
        decode::<Sample>(&bytes, MAX),
        Err(FrameError::Decode(_))
    ));
}

#[test]
fn trailing_bytes_inside_a_frame_are_refused() {
    let mut payload = Vec::new();
    payload.extend_from_slice(&0u32.to_le_bytes());
    payload.extend_from_slice(&0u64.to_le_bytes());
    let ok = raw_frame(&payload);
    assert!(matches!(decode::<Sample>(&ok, MAX), Ok(Some((Sample::Bytes(v), _))) if v.is_empty()));
    payload.push(0);
    let bad = raw_frame(&payload);
    assert!(matches!(
        decode::<Sample>(&bad, MAX),
        Err(FrameError::Decode(_))
    ));
}

#[test]
fn decode_exact_refuses_bytes_after_the_frame() {
    let mut bytes = frame_of(&sample());
    assert!(decode_exact::<Sample>(&bytes, MAX).is_ok());
    bytes.push(0);
    assert!(matches!(
        decode_exact::<Sample>(&bytes, MAX),
        Err(FrameError::Decode(_))
    ));
}

#[test]
fn write_frame_writes_what_read_frame_reads() {
    let msgs = [sample(), Sample::Bytes(vec![1, 2, 3])];
    let bytes = block_on(async {
        let mut out: Vec<u8> = Vec::new();
        for m in &msgs {
            if let Err(e) = write_frame(&mut out, m, MAX).await {
                panic!("write to a Vec failed: {e}");
            }
        }
        out
    });
    let results = read_all(&bytes);
    assert!(
        matches!(&results[..], [Ok(Some(a)), Ok(Some(b)), Ok(None)] if *a == msgs[0] && *b == msgs[1])
    );
}

/// A well-formed frame around arbitrary payload bytes.
fn raw_frame(payload: &[u8]) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(FRAME_HEADER_LEN + payload.len());
    bytes.extend_from_slice(&FRAME_MAGIC);
    bytes.extend_from_slice(&PROTOCOL_VERSION.to_le_bytes());
    bytes.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    bytes.extend_from_slice(&crc32c::crc32c(payload).to_le_bytes());
    bytes.extend_from_slice(payload);
    bytes
}
