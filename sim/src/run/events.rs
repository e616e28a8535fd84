//! What a scenario run records besides the executor's trace: faults applied and undone,
//! procedure phases reached, and the verdict; and [`TraceEvent`], the one structured form of
//! every event (executor lines parsed, runner events merged in time order) that `--trace`
//! writes as JSON lines and `--html` draws.
//!
//! Owns the event vocabulary. Must not: decide anything (it only records).

use crate::scenario::ScriptedFault;
use crate::{NodeId, Time};
use serde::Serialize;

/// A runner-level event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RunEvent {
    pub at: Time,
    /// `fault`, `undo`, `phase`, `violation`.
    pub kind: &'static str,
    pub nodes: Vec<NodeId>,
    pub text: String,
}

impl RunEvent {
    pub fn fault(at: Time, f: &ScriptedFault, nodes: Vec<NodeId>, err: Option<String>) -> Self {
        let mut text = format!("{:?}", f.fault).to_lowercase();
        if let Some(t) = &f.target {
            text.push_str(&format!(" {}", String::from(t.clone())));
        }
        if let Some(w) = &f.when {
            text.push_str(&format!(" when {}", String::from(w.clone())));
        }
        if let Some(d) = f.lasting {
            text.push_str(&format!(" for {}", String::from(d)));
        }
        if let Some(e) = err {
            text.push_str(&format!(" (no-op: {e})"));
        }
        Self {
            at,
            kind: "fault",
            nodes,
            text,
        }
    }

    pub fn undo(at: Time, what: String, err: Option<String>) -> Self {
        let text = match err {
            Some(e) => format!("undo {what} (failed: {e})"),
            None => format!("undo {what}"),
        };
        Self {
            at,
            kind: "undo",
            nodes: Vec::new(),
            text,
        }
    }
}

/// Runner events, kept only when a trace or a timeline is asked for (faults are always
/// kept: a report lists them).
#[derive(Default)]
pub struct EventLog {
    pub events: Vec<RunEvent>,
    pub keep_phases: bool,
}

impl EventLog {
    pub fn push(&mut self, e: RunEvent) {
        tracing::debug!(at = e.at.as_nanos(), kind = e.kind, text = %e.text, "run event");
        self.events.push(e);
    }
}

/// One event of a run in structured form.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct TraceEvent {
    /// True time in nanoseconds.
    pub t: u64,
    /// Executor kinds (`send`, `deliver`, `crash`, `timer`, ...) or runner kinds (`fault`,
    /// `undo`, `phase`, `violation`).
    pub kind: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub to: Option<u64>,
    /// The node an event happened on (or the nodes a fault hit, first one).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub nodes: Vec<u64>,
    pub detail: String,
}

fn node_num(s: &str) -> Option<u64> {
    s.strip_prefix('n')?.parse().ok()
}

/// Parse one executor trace line (`"{at:>15} {kind:<18} {detail}"`).
pub fn parse_line(line: &str) -> Option<TraceEvent> {
    let mut it = line.trim_start().splitn(2, ' ');
    let t: u64 = it.next()?.parse().ok()?;
    let rest = it.next()?.trim_start();
    let (kind, detail) = rest.split_once(' ').unwrap_or((rest, ""));
    let detail = detail.trim_start();
    let head = detail.split(' ').next().unwrap_or("");
    let (mut from, mut to, mut nodes) = (None, None, Vec::new());
    if let Some((a, b)) = head.split_once("->") {
        from = node_num(a);
        to = node_num(b);
    } else if let Some(n) = node_num(head) {
        nodes.push(n);
    }
    Some(TraceEvent {
        t,
        kind: kind.to_string(),
        from,
        to,
        nodes,
        detail: detail.to_string(),
    })
}

/// The executor's lines and the runner's events, merged by time (executor first at a tie:
/// the runner acts after the step that made it stop).
pub fn merge(lines: &[String], events: &[RunEvent]) -> Vec<TraceEvent> {
    let mut out = Vec::with_capacity(lines.len() + events.len());
    let mut ev = events.iter().peekable();
    for l in lines {
        let Some(e) = parse_line(l) else { continue };
        while let Some(r) = ev.next_if(|r| r.at.as_nanos() < e.t) {
            out.push(from_run(r));
        }
        out.push(e);
    }
    out.extend(ev.map(from_run));
    out
}

fn from_run(r: &RunEvent) -> TraceEvent {
    TraceEvent {
        t: r.at.as_nanos(),
        kind: r.kind.to_string(),
        from: None,
        to: None,
        nodes: r.nodes.iter().map(|n| n.0).collect(),
        detail: r.text.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_parse_into_lanes() {
        let e = parse_line("        1000000 send               n11->n1 Foo { x: 1 }").expect("ok");
        assert_eq!(
            (e.t, e.kind.as_str(), e.from, e.to),
            (1_000_000, "send", Some(11), Some(1))
        );
        assert_eq!(e.detail, "n11->n1 Foo { x: 1 }");
        let e =
            parse_line("              5 crash              n12 dropped 1 messages").expect("ok");
        assert_eq!(e.nodes, vec![12]);
        assert!(parse_line("garbage").is_none());
    }
}
