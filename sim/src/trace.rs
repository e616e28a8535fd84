//! The run's event trace: a running 64-bit hash of every event (FNV-1a, word-wise for long
//! inputs), and optionally one formatted line per event.
//!
//! Owns hashing and line keeping. Must not decide anything about the run, and must not format
//! a string unless lines are on (the executor calls [`Trace::line`] with a closure for that).

use crate::TraceConfig;
use serde::Serialize;
use std::io;

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

/// 64-bit FNV-1a, taken a word at a time over long inputs. Written here rather than pulled in:
/// it is ten lines, and `std`'s hashers are randomly keyed or unspecified across releases,
/// which would break "same seed, same hash".
///
/// Inputs of fewer than 8 bytes are plain FNV-1a. Longer ones (message payloads: values of
/// kilobytes) and numbers take 8 little-endian bytes per step (xor, multiply, rotate), then
/// the tail byte by byte: byte-wise FNV cost about a tenth of a simulated run's time. Each step is a bijection of the state, so one changed
/// input word always changes the hash; this is a determinism check, not a cryptographic hash.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fnv64(u64);

impl Default for Fnv64 {
    fn default() -> Self {
        Self(FNV_OFFSET)
    }
}

impl Fnv64 {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn write_bytes(&mut self, bytes: &[u8]) {
        let mut words = bytes.chunks_exact(8);
        for w in &mut words {
            let mut word = [0u8; 8];
            word.copy_from_slice(w);
            self.write_word(u64::from_le_bytes(word));
        }
        for &b in words.remainder() {
            self.0 ^= u64::from(b);
            self.0 = self.0.wrapping_mul(FNV_PRIME);
        }
    }

    pub fn write_u64(&mut self, v: u64) {
        self.write_word(v);
    }

    fn write_word(&mut self, w: u64) {
        self.0 = (self.0 ^ w).wrapping_mul(FNV_PRIME).rotate_left(29);
    }

    pub fn finish(&self) -> u64 {
        self.0
    }
}

/// Lets bincode serialize straight into the hash, with no buffer.
impl io::Write for Fnv64 {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.write_bytes(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// What happened. The discriminant is hashed, so the numbers are part of the trace format:
/// append new kinds, never renumber.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum TraceKind {
    Send = 1,
    Deliver = 2,
    DropLoss = 3,
    DropPartition = 4,
    DropNodeDown = 5,
    DropUnknownNode = 6,
    Duplicate = 7,
    Hold = 8,
    DropHeldOverflow = 9,
    Release = 10,
    TimerFired = 11,
    TimerSkipped = 12,
    JobDone = 13,
    JobFailed = 14,
    Start = 15,
    Crash = 16,
    Restart = 17,
    Stop = 18,
    Fault = 19,
    FaultNoop = 20,
    Deferred = 21,
    Call = 22,
}

impl TraceKind {
    pub fn name(self) -> &'static str {
        match self {
            TraceKind::Send => "send",
            TraceKind::Deliver => "deliver",
            TraceKind::DropLoss => "drop-loss",
            TraceKind::DropPartition => "drop-partition",
            TraceKind::DropNodeDown => "drop-node-down",
            TraceKind::DropUnknownNode => "drop-unknown-node",
            TraceKind::Duplicate => "duplicate",
            TraceKind::Hold => "hold",
            TraceKind::DropHeldOverflow => "drop-held-overflow",
            TraceKind::Release => "release",
            TraceKind::TimerFired => "timer",
            TraceKind::TimerSkipped => "timer-skipped",
            TraceKind::JobDone => "job-done",
            TraceKind::JobFailed => "job-failed",
            TraceKind::Start => "start",
            TraceKind::Crash => "crash",
            TraceKind::Restart => "restart",
            TraceKind::Stop => "stop",
            TraceKind::Fault => "fault",
            TraceKind::FaultNoop => "fault-noop",
            TraceKind::Deferred => "deferred",
            TraceKind::Call => "call",
        }
    }
}

pub(crate) struct Trace {
    hash: Fnv64,
    records: u64,
    lines: Option<Vec<String>>,
    lines_max: usize,
    truncated: bool,
    hash_payloads: bool,
}

impl Trace {
    pub(crate) fn new(cfg: &TraceConfig) -> Self {
        Self {
            hash: Fnv64::new(),
            records: 0,
            lines: cfg.keep_lines.then(Vec::new),
            lines_max: cfg.lines_max,
            truncated: false,
            hash_payloads: cfg.hash_payloads,
        }
    }

    /// Folds one event into the hash: its kind, true time and two kind-specific numbers
    /// (usually node ids, or a node id and a timer/job id).
    #[inline]
    pub(crate) fn record(&mut self, kind: TraceKind, at: u64, a: u64, b: u64) {
        self.records += 1;
        self.hash.write_bytes(&[kind as u8]);
        self.hash.write_u64(at);
        self.hash.write_u64(a);
        self.hash.write_u64(b);
    }

    /// Folds one more number into the event just recorded (e.g. a message's arrival time).
    #[inline]
    pub(crate) fn extra(&mut self, v: u64) {
        self.hash.write_u64(v);
    }

    /// Folds a payload's serialized bytes into the hash (if configured).
    #[inline]
    pub(crate) fn payload<T: Serialize + ?Sized>(&mut self, value: &T) {
        if self.hash_payloads && bincode::serialize_into(&mut self.hash, value).is_err() {
            // Some serde types (e.g. sequences of unknown length) bincode cannot encode; the
            // event is still hashed, just without its contents.
            self.hash.write_bytes(b"?");
        }
    }

    /// Keeps a line for the event just recorded, if lines are on. The closure runs only then.
    #[inline]
    pub(crate) fn line(&mut self, kind: TraceKind, at: u64, detail: impl FnOnce() -> String) {
        let Some(lines) = self.lines.as_mut() else {
            return;
        };
        if lines.len() >= self.lines_max {
            self.truncated = true;
            return;
        }
        lines.push(format!("{at:>15} {:<18} {}", kind.name(), detail()));
    }

    pub(crate) fn lines_enabled(&self) -> bool {
        self.lines.is_some()
    }

    pub(crate) fn hash(&self) -> u64 {
        self.hash.finish()
    }

    pub(crate) fn records(&self) -> u64 {
        self.records
    }

    pub(crate) fn lines(&self) -> Option<&[String]> {
        self.lines.as_deref()
    }

    pub(crate) fn truncated(&self) -> bool {
        self.truncated
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnv1a_matches_reference_vectors() {
        // Reference values from the FNV specification's test suite.
        let h = |s: &[u8]| {
            let mut f = Fnv64::new();
            f.write_bytes(s);
            f.finish()
        };
        assert_eq!(h(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(h(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(h(b"foobar"), 0x8594_4171_f739_67e8);
    }

    #[test]
    fn long_inputs_hash_word_wise_and_every_word_counts() {
        let h = |s: &[u8]| {
            let mut f = Fnv64::new();
            f.write_bytes(s);
            f.finish()
        };
        let base = vec![7u8; 4096];
        let hb = h(&base);
        for i in [0, 7, 8, 2047, 4095] {
            for bit in [0, 7] {
                let mut v = base.clone();
                v[i] ^= 1 << bit;
                assert_ne!(h(&v), hb, "byte {i} bit {bit}");
            }
        }
        // Chunking does not matter within a word boundary-aligned stream.
        let mut f = Fnv64::new();
        f.write_bytes(&base[..2048]);
        f.write_bytes(&base[2048..]);
        assert_eq!(f.finish(), hb);
    }

    #[test]
    fn payload_hashing_is_optional_and_content_sensitive() {
        let hash_of = |hash_payloads: bool, v: u32| {
            let cfg = TraceConfig {
                hash_payloads,
                ..TraceConfig::default()
            };
            let mut t = Trace::new(&cfg);
            t.record(TraceKind::Deliver, 5, 1, 2);
            t.payload(&v);
            t.hash()
        };
        assert_ne!(hash_of(true, 1), hash_of(true, 2));
        assert_eq!(hash_of(false, 1), hash_of(false, 2));
    }

    #[test]
    fn lines_stop_at_the_limit_but_the_hash_goes_on() {
        let cfg = TraceConfig {
            keep_lines: true,
            lines_max: 2,
            hash_payloads: true,
        };
        let mut t = Trace::new(&cfg);
        let mut hashes = Vec::new();
        for i in 0..3 {
            t.record(TraceKind::Call, i, 0, 0);
            t.line(TraceKind::Call, i, || format!("call {i}"));
            hashes.push(t.hash());
        }
        assert_eq!(t.lines().map(<[String]>::len), Some(2));
        assert!(t.truncated());
        assert_eq!(t.records(), 3);
        assert_ne!(hashes[1], hashes[2]);
    }
}
