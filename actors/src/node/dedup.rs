//! Duplicate suppression for data mutations (and, through [`SeenRequests`], for the master's
//! admin calls that change something: `master/ddl.rs`).
//!
//! The network may deliver one request twice (a retransmission, or the simulator's
//! duplication). Reads are harmless to repeat, but a mutation is not: a second copy of an
//! append or increment applies its delta again, a delete applied again after a later put
//! erases that put, and a put with a server timestamp applied again shadows later writes.
//! The client library never resends a request id (a retry after a refusal is a new request
//! with a new id, and a mutation whose outcome is unknown is never retried), so a node that
//! has seen `(sender, id)` once may drop every later copy unanswered: the sender waits for
//! the first copy's answer, or times out and reports the outcome unknown.
//!
//! A request is remembered from its first arrival, whether it was admitted or refused: a
//! refused request is retried by the client under a new id, so a late copy of the refused one
//! must not be admitted after the retry was applied.
//!
//! Owns: the bounded set of recently seen mutation requests. The set is in memory only; a
//! restarted node has a new epoch, which fences every request addressed to the old one.
//! Must not: grow without bound (the oldest entries are forgotten first).

use crate::kernel::NodeId;
use crate::proto::data::DataOp;
use crate::proto::RequestId;
use std::collections::{BTreeSet, VecDeque};

/// Does repeating `op` change the outcome? Everything but reads does.
pub fn is_mutation(op: &DataOp) -> bool {
    !matches!(op, DataOp::Get { .. } | DataOp::Scan { .. })
}

/// The last `max` mutation requests a node received, by `(sender, request id)`.
#[derive(Debug, Default)]
pub struct SeenRequests {
    seen: BTreeSet<(NodeId, RequestId)>,
    order: VecDeque<(NodeId, RequestId)>,
}

impl SeenRequests {
    /// Records `(from, id)`; true the first time, false for every later copy that arrives
    /// while it is still among the last `max` recorded.
    pub fn first_sight(&mut self, from: NodeId, id: RequestId, max: usize) -> bool {
        if !self.seen.insert((from, id)) {
            return false;
        }
        self.order.push_back((from, id));
        while self.order.len() > max.max(1) {
            if let Some(old) = self.order.pop_front() {
                self.seen.remove(&old);
            }
        }
        true
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.order.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::data::ReadFilter;

    #[test]
    fn a_second_copy_is_refused_and_other_senders_are_not() {
        let mut s = SeenRequests::default();
        assert!(s.first_sight(NodeId(7), RequestId(1), 8));
        assert!(!s.first_sight(NodeId(7), RequestId(1), 8));
        assert!(s.first_sight(NodeId(8), RequestId(1), 8));
        assert!(s.first_sight(NodeId(7), RequestId(2), 8));
    }

    #[test]
    fn the_window_is_bounded_and_forgets_the_oldest() {
        let mut s = SeenRequests::default();
        for i in 0..10 {
            assert!(s.first_sight(NodeId(1), RequestId(i), 4));
        }
        assert_eq!(s.len(), 4);
        assert!(!s.first_sight(NodeId(1), RequestId(9), 4));
        assert!(s.first_sight(NodeId(1), RequestId(0), 4), "forgotten");
    }

    #[test]
    fn only_reads_are_exempt() {
        let get = DataOp::Get {
            row: b"r".to_vec(),
            filter: ReadFilter::default(),
        };
        let inc = DataOp::Increment {
            row: b"r".to_vec(),
            family: "f".into(),
            qualifier: b"q".to_vec(),
            delta: 1,
        };
        assert!(!is_mutation(&get));
        assert!(is_mutation(&inc));
        assert!(is_mutation(&DataOp::Write { rows: vec![] }));
    }
}
