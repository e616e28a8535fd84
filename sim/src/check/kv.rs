//! The sequential model of Shale's per-row operations for the linearizability checker: each
//! row of each table is an independent register holding an optional value, read and written by
//! put, get, delete, check-and-mutate, increment and append.
//!
//! Owns the meaning of each operation (what it answers, what it leaves behind). Must not know
//! about the cluster or the network; a runner translates client replies into [`KvOutput`].

use super::history::Model;
use serde::{Deserialize, Serialize};

/// A row of a table: the unit the checker partitions by.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct RowKey {
    pub table: String,
    pub row: Vec<u8>,
}

impl RowKey {
    pub fn new(table: impl Into<String>, row: impl Into<Vec<u8>>) -> Self {
        Self {
            table: table.into(),
            row: row.into(),
        }
    }
}

/// What a client asked of one row.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum KvOp {
    Put(Vec<u8>),
    Get,
    Delete,
    /// If the row holds `expected` (`None`: absent), set it to `then` (`None`: delete).
    CheckAndMutate {
        expected: Option<Vec<u8>>,
        then: Option<Vec<u8>>,
    },
    /// Add to the row read as a big-endian `i64` (absent reads as 0), as Bigtable does.
    Increment(i64),
    /// Append bytes to the row's value (absent reads as empty).
    Append(Vec<u8>),
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KvInput {
    pub key: RowKey,
    pub op: KvOp,
}

/// What the client was told.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum KvOutput {
    /// Put and delete.
    Done,
    /// Get: the value, or `None` if the row is absent.
    Read(Option<Vec<u8>>),
    /// Check-and-mutate: whether the check passed (and the mutation applied).
    Checked(bool),
    /// Increment: the new counter value.
    Counter(i64),
    /// Increment of a value that is not 8 bytes: refused, row unchanged.
    NotACounter,
    /// Append: the value after appending.
    Appended(Vec<u8>),
}

/// Per-row register semantics; rows start absent.
#[derive(Clone, Copy, Debug, Default)]
pub struct KvModel;

impl Model for KvModel {
    type Key = RowKey;
    type State = Option<Vec<u8>>;
    type Input = KvInput;
    type Output = KvOutput;

    fn key(&self, input: &KvInput) -> RowKey {
        input.key.clone()
    }

    fn init(&self) -> Self::State {
        None
    }

    fn step(&self, state: &Self::State, input: &KvInput) -> (Self::State, KvOutput) {
        match &input.op {
            KvOp::Put(v) => (Some(v.clone()), KvOutput::Done),
            KvOp::Get => (state.clone(), KvOutput::Read(state.clone())),
            KvOp::Delete => (None, KvOutput::Done),
            KvOp::CheckAndMutate { expected, then } => {
                if state == expected {
                    (then.clone(), KvOutput::Checked(true))
                } else {
                    (state.clone(), KvOutput::Checked(false))
                }
            }
            KvOp::Increment(delta) => {
                let current = match state {
                    None => 0,
                    Some(bytes) => match <[u8; 8]>::try_from(bytes.as_slice()) {
                        Ok(b) => i64::from_be_bytes(b),
                        Err(_) => return (state.clone(), KvOutput::NotACounter),
                    },
                };
                let next = current.wrapping_add(*delta);
                (Some(next.to_be_bytes().to_vec()), KvOutput::Counter(next))
            }
            KvOp::Append(suffix) => {
                let mut v = state.clone().unwrap_or_default();
                v.extend_from_slice(suffix);
                (Some(v.clone()), KvOutput::Appended(v))
            }
        }
    }

    fn is_read_only(&self, input: &KvInput) -> bool {
        matches!(input.op, KvOp::Get)
    }

    fn is_blind_write(&self, input: &KvInput) -> bool {
        matches!(input.op, KvOp::Put(_) | KvOp::Delete)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(ops: &[KvOp]) -> Vec<KvOutput> {
        let key = RowKey::new("t", "r");
        let mut state = KvModel.init();
        ops.iter()
            .map(|op| {
                let input = KvInput {
                    key: key.clone(),
                    op: op.clone(),
                };
                let (next, out) = KvModel.step(&state, &input);
                state = next;
                out
            })
            .collect()
    }

    #[test]
    fn operations_mean_what_bigtable_means() {
        let v = |s: &str| s.as_bytes().to_vec();
        let outs = run(&[
            KvOp::Get,
            KvOp::Increment(5),
            KvOp::Increment(-2),
            KvOp::Append(v("x")),
            KvOp::Increment(1),
            KvOp::CheckAndMutate {
                expected: None,
                then: Some(v("a")),
            },
            KvOp::Delete,
            KvOp::CheckAndMutate {
                expected: None,
                then: Some(v("a")),
            },
            KvOp::Append(v("b")),
            KvOp::Put(v("z")),
            KvOp::Get,
        ]);
        let mut three_x = 3i64.to_be_bytes().to_vec();
        three_x.push(b'x');
        assert_eq!(
            outs,
            vec![
                KvOutput::Read(None),
                KvOutput::Counter(5),
                KvOutput::Counter(3),
                KvOutput::Appended(three_x),
                KvOutput::NotACounter,
                KvOutput::Checked(false),
                KvOutput::Done,
                KvOutput::Checked(true),
                KvOutput::Appended(v("ab")),
                KvOutput::Done,
                KvOutput::Read(Some(v("z"))),
            ]
        );
    }
}
