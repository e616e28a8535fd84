//! Client histories as data: an [`Operation`] is one client call with its call time, its
//! completion (returned with an output, or pending: it never returned and may or may not have
//! taken effect), and a [`Model`] says what a sequential object does with each input.
//!
//! Owns the vocabulary and [`HistoryRecorder`], the helper a runner uses to build a history as
//! calls start and finish. Must not search for linearizations; `linearizability.rs` does that.

use shale_actors::Time;
use std::collections::BTreeMap;
use std::fmt::Debug;
use std::hash::Hash;

/// Who issued an operation. A client issues one operation at a time.
pub type ClientId = u64;

/// How an operation ended, as its client saw it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Completion<O> {
    /// The client got `output` at `at`.
    Returned { at: Time, output: O },
    /// No answer (timeout, crash, the run ended): it may have taken effect at any time after
    /// its call, or never.
    Pending,
}

/// One client call.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Operation<I, O> {
    pub client: ClientId,
    pub call: Time,
    pub input: I,
    pub completion: Completion<O>,
}

impl<I, O> Operation<I, O> {
    pub fn returned(client: ClientId, call: Time, ret: Time, input: I, output: O) -> Self {
        Self {
            client,
            call,
            input,
            completion: Completion::Returned { at: ret, output },
        }
    }

    pub fn pending(client: ClientId, call: Time, input: I) -> Self {
        Self {
            client,
            call,
            input,
            completion: Completion::Pending,
        }
    }

    pub fn return_time(&self) -> Option<Time> {
        match &self.completion {
            Completion::Returned { at, .. } => Some(*at),
            Completion::Pending => None,
        }
    }

    pub fn output(&self) -> Option<&O> {
        match &self.completion {
            Completion::Returned { output, .. } => Some(output),
            Completion::Pending => None,
        }
    }
}

/// A sequential specification, split into independent objects by key (P-compositionality:
/// a history is linearizable iff each key's sub-history is).
pub trait Model {
    /// The independent object an input touches (a row).
    type Key: Ord + Clone + Debug;
    /// One object's state. Hashed for the search's memo table.
    type State: Clone + Eq + Hash + Debug;
    type Input: Debug;
    type Output: PartialEq + Debug;

    fn key(&self, input: &Self::Input) -> Self::Key;
    /// The state of an object nobody has touched.
    fn init(&self) -> Self::State;
    /// What applying `input` to `state` does and answers. Deterministic.
    fn step(&self, state: &Self::State, input: &Self::Input) -> (Self::State, Self::Output);
    /// True if `input` never changes the state. Such operations may be dropped from a
    /// violating history without hiding the violation, which is how explanations shrink.
    fn is_read_only(&self, input: &Self::Input) -> bool;
    /// True if `input` answers the same and leaves the same state whatever the state was
    /// (a put, a delete). The search never places a blind write directly after a pending
    /// operation (whose effect it would hide), which keeps hot keys with many timed-out
    /// operations decidable. `false` (the default) is always safe.
    fn is_blind_write(&self, _input: &Self::Input) -> bool {
        false
    }
}

/// Builds a history as a run goes: `invoke` when a client sends, `complete` when it hears
/// back; whatever is still open at the end is pending.
#[derive(Clone, Debug)]
pub struct HistoryRecorder<I, O> {
    ops: Vec<Operation<I, O>>,
    open: BTreeMap<ClientId, usize>,
}

impl<I, O> Default for HistoryRecorder<I, O> {
    fn default() -> Self {
        Self {
            ops: Vec::new(),
            open: BTreeMap::new(),
        }
    }
}

/// A recorder was used out of protocol (a runner bug, not a system bug).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RecordError {
    #[error("client {0} invoked an operation while another was open")]
    AlreadyOpen(ClientId),
    #[error("client {0} completed an operation it never invoked")]
    NotOpen(ClientId),
    #[error("client {client} completed at {ret:?}, before its call at {call:?}")]
    ReturnBeforeCall {
        client: ClientId,
        call: Time,
        ret: Time,
    },
}

impl<I, O> HistoryRecorder<I, O> {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn invoke(&mut self, client: ClientId, at: Time, input: I) -> Result<(), RecordError> {
        if self.open.contains_key(&client) {
            return Err(RecordError::AlreadyOpen(client));
        }
        self.open.insert(client, self.ops.len());
        self.ops.push(Operation::pending(client, at, input));
        Ok(())
    }

    pub fn complete(&mut self, client: ClientId, at: Time, output: O) -> Result<(), RecordError> {
        let i = *self.open.get(&client).ok_or(RecordError::NotOpen(client))?;
        let op = &mut self.ops[i];
        if at < op.call {
            // Refused without closing: the runner may still complete it properly.
            return Err(RecordError::ReturnBeforeCall {
                client,
                call: op.call,
                ret: at,
            });
        }
        self.open.remove(&client);
        op.completion = Completion::Returned { at, output };
        Ok(())
    }

    /// Gives up on the client's open operation (a timeout): it stays pending and the client
    /// may invoke again.
    pub fn abandon(&mut self, client: ClientId) -> Result<(), RecordError> {
        self.open
            .remove(&client)
            .map(|_| ())
            .ok_or(RecordError::NotOpen(client))
    }

    /// The history so far; open operations are pending.
    pub fn finish(self) -> Vec<Operation<I, O>> {
        self.ops
    }

    /// The history so far (what `finish` would return), without copying it.
    pub fn operations(&self) -> &[Operation<I, O>] {
        &self.ops
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recorder_keeps_one_open_operation_per_client() {
        let mut r: HistoryRecorder<&str, u8> = HistoryRecorder::new();
        r.invoke(1, Time(10), "a").expect("first");
        assert_eq!(r.invoke(1, Time(11), "b"), Err(RecordError::AlreadyOpen(1)));
        r.invoke(2, Time(12), "c").expect("other client");
        assert_eq!(r.complete(3, Time(13), 0), Err(RecordError::NotOpen(3)));
        assert!(matches!(
            r.complete(1, Time(5), 0),
            Err(RecordError::ReturnBeforeCall { .. })
        ));
        assert_eq!(
            r.invoke(1, Time(14), "d"),
            Err(RecordError::AlreadyOpen(1)),
            "a refused completion leaves the operation open"
        );
        r.complete(1, Time(15), 9).expect("still open");
        r.abandon(2).expect("open");
        r.invoke(2, Time(16), "d")
            .expect("abandoning frees the client");
        r.complete(2, Time(20), 7).expect("open");
        let ops = r.finish();
        assert_eq!(ops.len(), 3);
        assert_eq!(ops[0].output(), Some(&9));
        assert_eq!(ops[1].completion, Completion::Pending);
        assert_eq!(ops[2].return_time(), Some(Time(20)));
        assert_eq!(ops[2].output(), Some(&7));
    }
}
