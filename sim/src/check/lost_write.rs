//! "No acknowledged write is ever lost" (architecture.md, section 9, invariant 3), judged from
//! a client history plus one final read of every row taken after the cluster healed.
//!
//! The rule, per row: the final value must come from some write that could have been the last
//! one, meaning no acknowledged write began after it returned. A final value that only an
//! earlier write explains means a later acknowledged write vanished. Writes here are put,
//! delete and check-and-mutate (applied, or pending). Rows touched by increment or append are
//! skipped, since their final value is an accumulation rather than one write's value; the
//! linearizability checker covers them when the final reads are added to the history as gets.
//!
//! Owns this rule only. Must not judge reads inside the history (linearizability does).

use super::history::{Completion, Operation};
use super::kv::{KvInput, KvOp, KvOutput, RowKey};
use shale_actors::Time;
use std::collections::BTreeMap;

/// One row whose acknowledged writes are not all reflected in its final value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LostWrite {
    /// The final value was written by `final_from` (`None`: the row's initial absence), and
    /// the acknowledged writes `lost` all began after that write returned.
    Overwritten {
        key: RowKey,
        final_from: Option<usize>,
        lost: Vec<usize>,
    },
    /// No operation ever wrote the final value, though `acked` writes were acknowledged.
    NeverWritten {
        key: RowKey,
        value: Option<Vec<u8>>,
        acked: Vec<usize>,
    },
    /// The row had acknowledged writes but no final read was supplied.
    Unread { key: RowKey, acked: Vec<usize> },
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LostWriteReport {
    pub violations: Vec<LostWrite>,
    /// Rows with at least one acknowledged write that were judged.
    pub rows_checked: usize,
    /// Rows left to the linearizability checker (increment or append).
    pub rows_skipped: Vec<RowKey>,
}

impl LostWriteReport {
    pub fn is_ok(&self) -> bool {
        self.violations.is_empty()
    }
}

/// A write that may have set the row's final value.
struct Write {
    index: Option<usize>,
    value: Option<Vec<u8>>,
    ret: Option<Time>,
}

/// Checks every row with an acknowledged write against `final_reads`.
pub fn check_no_lost_writes(
    history: &[Operation<KvInput, KvOutput>],
    final_reads: &BTreeMap<RowKey, Option<Vec<u8>>>,
) -> LostWriteReport {
    let mut rows: BTreeMap<&RowKey, Vec<usize>> = BTreeMap::new();
    for (i, op) in history.iter().enumerate() {
        rows.entry(&op.input.key).or_default().push(i);
    }
    let mut report = LostWriteReport::default();
    for (key, ops) in rows {
        let accumulates = ops
            .iter()
            .any(|&i| matches!(history[i].input.op, KvOp::Increment(_) | KvOp::Append(_)));
        if accumulates {
            report.rows_skipped.push(key.clone());
            continue;
        }
        let writes = writes_of(history, &ops);
        let acked: Vec<(usize, Time)> = writes
            .iter()
            .filter(|w| w.ret.is_some())
            .filter_map(|w| w.index.map(|i| (i, history[i].call)))
            .collect();
        if acked.is_empty() {
            continue;
        }
        report.rows_checked += 1;
        let acked_ids = || acked.iter().map(|(i, _)| *i).collect::<Vec<_>>();
        let Some(last) = final_reads.get(key) else {
            report.violations.push(LostWrite::Unread {
                key: key.clone(),
                acked: acked_ids(),
            });
            continue;
        };
        // Acknowledged writes that began strictly after `w` returned: `w` cannot be last.
        let later = |w: &Write| -> Vec<usize> {
            acked
                .iter()
                .filter(|(i, call)| Some(*i) != w.index && w.ret.is_some_and(|r| *call > r))
                .map(|(i, _)| *i)
                .collect()
        };
        let candidates: Vec<&Write> = writes.iter().filter(|w| w.value == *last).collect();
        if candidates.iter().any(|w| later(w).is_empty()) {
            continue;
        }
        // Blame the candidate that returned last: it leaves the fewest writes lost.
        let violation = match candidates.iter().max_by_key(|w| w.ret) {
            Some(w) => LostWrite::Overwritten {
                key: key.clone(),
                final_from: w.index,
                lost: later(w),
            },
            None => LostWrite::NeverWritten {
                key: key.clone(),
                value: last.clone(),
                acked: acked_ids(),
            },
        };
        tracing::debug!(?violation, "lost acknowledged write");
        report.violations.push(violation);
    }
    report
}

/// The row's initial absence (returned before anything began) followed by its writes.
fn writes_of(history: &[Operation<KvInput, KvOutput>], ops: &[usize]) -> Vec<Write> {
    let mut writes = vec![Write {
        index: None,
        value: None,
        ret: Some(Time::ZERO),
    }];
    for &i in ops {
        let op = &history[i];
        let value = match &op.input.op {
            KvOp::Put(v) => Some(v.clone()),
            KvOp::Delete => None,
            KvOp::CheckAndMutate { then, .. } => match &op.completion {
                Completion::Returned {
                    output: KvOutput::Checked(true),
                    ..
                }
                | Completion::Pending => then.clone(),
                Completion::Returned { .. } => continue,
            },
            KvOp::Get | KvOp::Increment(_) | KvOp::Append(_) => continue,
        };
        writes.push(Write {
            index: Some(i),
            value,
            ret: op.return_time(),
        });
    }
    // Ties with the initial absence: a write called at time zero is concurrent with it, which
    // is right (nothing can be "after" a write that returned at zero but began at zero).
    writes
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> RowKey {
        RowKey::new("t", "r")
    }
    fn put(call: u64, ret: Option<u64>, v: &str) -> Operation<KvInput, KvOutput> {
        let input = KvInput {
            key: key(),
            op: KvOp::Put(v.as_bytes().to_vec()),
        };
        match ret {
            Some(r) => Operation::returned(1, Time(call), Time(r), input, KvOutput::Done),
            None => Operation::pending(1, Time(call), input),
        }
    }
    fn finals(v: Option<&str>) -> BTreeMap<RowKey, Option<Vec<u8>>> {
        BTreeMap::from([(key(), v.map(|s| s.as_bytes().to_vec()))])
    }

    #[test]
    fn the_last_acknowledged_write_or_a_concurrent_one_may_win() {
        let h = vec![
            put(1, Some(2), "a"),
            put(3, Some(6), "b"),
            put(4, Some(5), "c"),
        ];
        assert!(check_no_lost_writes(&h, &finals(Some("b"))).is_ok());
        assert!(check_no_lost_writes(&h, &finals(Some("c"))).is_ok());
        let r = check_no_lost_writes(&h, &finals(Some("a")));
        assert_eq!(
            r.violations,
            vec![LostWrite::Overwritten {
                key: key(),
                final_from: Some(0),
                lost: vec![1, 2]
            }]
        );
    }

    #[test]
    fn a_pending_write_may_win_but_does_not_excuse_a_lost_ack() {
        let h = vec![put(1, Some(2), "a"), put(3, None, "p")];
        assert!(check_no_lost_writes(&h, &finals(Some("p"))).is_ok());
        assert!(check_no_lost_writes(&h, &finals(Some("a"))).is_ok());
        let h = vec![put(1, None, "p"), put(3, Some(4), "a")];
        // The pending write never returned, so it may have landed after "a".
        assert!(check_no_lost_writes(&h, &finals(Some("p"))).is_ok());
    }

    #[test]
    fn an_empty_row_or_a_foreign_value_after_an_ack_is_caught() {
        let h = vec![put(1, Some(2), "a")];
        let r = check_no_lost_writes(&h, &finals(None));
        assert_eq!(
            r.violations,
            vec![LostWrite::Overwritten {
                key: key(),
                final_from: None,
                lost: vec![0]
            }]
        );
        let r = check_no_lost_writes(&h, &finals(Some("zzz")));
        assert!(matches!(r.violations[..], [LostWrite::NeverWritten { .. }]));
        let r = check_no_lost_writes(&h, &BTreeMap::new());
        assert!(matches!(r.violations[..], [LostWrite::Unread { .. }]));
        assert_eq!(r.rows_checked, 1);
    }

    #[test]
    fn deletes_and_conditional_writes_count_only_when_applied() {
        let del = Operation::returned(
            2,
            Time(3),
            Time(4),
            KvInput {
                key: key(),
                op: KvOp::Delete,
            },
            KvOutput::Done,
        );
        let cas = |applied: bool| {
            Operation::returned(
                3,
                Time(5),
                Time(6),
                KvInput {
                    key: key(),
                    op: KvOp::CheckAndMutate {
                        expected: None,
                        then: Some(b"c".to_vec()),
                    },
                },
                KvOutput::Checked(applied),
            )
        };
        let h = vec![put(1, Some(2), "a"), del.clone()];
        assert!(check_no_lost_writes(&h, &finals(None)).is_ok());
        assert!(!check_no_lost_writes(&h, &finals(Some("a"))).is_ok());
        let h = vec![put(1, Some(2), "a"), del.clone(), cas(true)];
        assert!(check_no_lost_writes(&h, &finals(Some("c"))).is_ok());
        assert!(!check_no_lost_writes(&h, &finals(None)).is_ok());
        // A failed check wrote nothing: absence after the delete is right, "c" is invented.
        let h = vec![put(1, Some(2), "a"), del, cas(false)];
        assert!(check_no_lost_writes(&h, &finals(None)).is_ok());
        let r = check_no_lost_writes(&h, &finals(Some("c")));
        assert!(matches!(r.violations[..], [LostWrite::NeverWritten { .. }]));
    }

    #[test]
    fn accumulating_rows_are_left_to_linearizability() {
        let inc = Operation::returned(
            1,
            Time(1),
            Time(2),
            KvInput {
                key: key(),
                op: KvOp::Increment(1),
            },
            KvOutput::Counter(1),
        );
        let r = check_no_lost_writes(&[inc], &BTreeMap::new());
        assert!(r.is_ok());
        assert_eq!(r.rows_skipped, vec![key()]);
        assert_eq!(r.rows_checked, 0);
    }
}
