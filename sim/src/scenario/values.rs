//! The small string grammars a scenario file uses, each parsed into a typed value with a
//! precise error: durations (`"250ms"`, `"1.5s"`, `"-300ms"` where a sign is allowed), fault
//! targets (`"node 3"`, `"master"`, `"node serving tablet users:k00000042"`) and procedure
//! triggers (`"split.update_meta"`).
//!
//! Owns parsing and printing (printing gives back text that parses to the same value, so a
//! shrunk scenario can be written out). Must not check things that need the whole scenario
//! (whether a table exists, whether node 9 exists); `validate.rs` does.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::time::Duration;

/// A bad value in a scenario string, with the text that was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ValueError {
    #[error(
        "bad duration {0:?}: expected a number and a unit (ns, us, ms, s, m, h), e.g. \"250ms\""
    )]
    Duration(String),
    #[error("bad target {0:?}: expected \"master\", \"standby master\", \"any master\", \"meta\", \"node N\", \"any node\", \"rest\" or \"node serving tablet TABLE:ROW\"")]
    Target(String),
    #[error("bad trigger {text:?}: {reason}")]
    Trigger { text: String, reason: String },
}

/// Nanoseconds per unit, for the units a duration may carry.
fn unit_nanos(unit: &str) -> Option<u128> {
    Some(match unit {
        "ns" => 1,
        "us" => 1_000,
        "ms" => 1_000_000,
        "s" => 1_000_000_000,
        "m" => 60_000_000_000,
        "h" => 3_600_000_000_000,
        _ => return None,
    })
}

/// Parses an unsigned duration with integer arithmetic only (no float rounding differences).
fn parse_unsigned(text: &str) -> Option<u64> {
    let split = text.find(|c: char| !(c.is_ascii_digit() || c == '.'))?;
    let (number, unit) = text.split_at(split);
    let per = unit_nanos(unit)?;
    let (int, frac) = number.split_once('.').unwrap_or((number, ""));
    if int.is_empty() || (number.contains('.') && frac.is_empty()) || frac.len() > 9 {
        return None;
    }
    let int: u128 = int.parse().ok()?;
    let frac_value: u128 = if frac.is_empty() {
        0
    } else {
        frac.parse().ok()?
    };
    let scale = 10u128.pow(frac.len() as u32);
    let nanos = int * per + frac_value * per / scale;
    u64::try_from(nanos).ok()
}

/// Prints nanoseconds with the largest unit that divides them exactly.
fn print_unsigned(nanos: u64) -> String {
    for (unit, per) in [
        ("h", 3_600_000_000_000u64),
        ("m", 60_000_000_000),
        ("s", 1_000_000_000),
        ("ms", 1_000_000),
        ("us", 1_000),
    ] {
        if nanos != 0 && nanos / per * per == nanos {
            return format!("{}{unit}", nanos / per);
        }
    }
    format!("{nanos}ns")
}

/// A non-negative duration written as text, e.g. `"5s"`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Dur(pub Duration);

impl TryFrom<String> for Dur {
    type Error = ValueError;
    fn try_from(text: String) -> Result<Self, ValueError> {
        parse_unsigned(text.trim())
            .map(|n| Dur(Duration::from_nanos(n)))
            .ok_or(ValueError::Duration(text))
    }
}

impl From<Dur> for String {
    fn from(d: Dur) -> String {
        d.to_string()
    }
}

impl fmt::Display for Dur {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let nanos = u64::try_from(self.0.as_nanos()).unwrap_or(u64::MAX);
        f.write_str(&print_unsigned(nanos))
    }
}

/// A signed duration (a clock offset), e.g. `"-300ms"`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct SignedDur {
    pub nanos: i64,
}

impl TryFrom<String> for SignedDur {
    type Error = ValueError;
    fn try_from(text: String) -> Result<Self, ValueError> {
        let t = text.trim();
        let (negative, rest) = match t.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, t.strip_prefix('+').unwrap_or(t)),
        };
        let nanos = parse_unsigned(rest)
            .and_then(|n| i64::try_from(n).ok())
            .ok_or_else(|| ValueError::Duration(text.clone()))?;
        Ok(SignedDur {
            nanos: if negative { -nanos } else { nanos },
        })
    }
}

impl From<SignedDur> for String {
    fn from(d: SignedDur) -> String {
        let sign = if d.nanos < 0 { "-" } else { "" };
        format!("{sign}{}", print_unsigned(d.nanos.unsigned_abs()))
    }
}

/// Which node(s) a fault hits, resolved by the runner at the moment the fault applies.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum Target {
    /// The master holding the lease at that moment.
    ActiveMaster,
    /// A master not holding the lease (chosen by the run's RNG).
    StandbyMaster,
    AnyMaster,
    /// The meta store.
    Meta,
    /// Tablet node N, 1-based.
    Node(u32),
    /// A tablet node chosen by the run's RNG.
    AnyNode,
    /// The node serving the tablet of `table` that contains `row` at that moment.
    ServingTablet {
        table: String,
        row: String,
    },
    /// Every node not named by the other side (only as a partition's `peer`).
    Rest,
}

impl TryFrom<String> for Target {
    type Error = ValueError;
    fn try_from(text: String) -> Result<Self, ValueError> {
        let t = text.trim();
        let target = match t {
            "master" => Target::ActiveMaster,
            "standby master" => Target::StandbyMaster,
            "any master" => Target::AnyMaster,
            "meta" => Target::Meta,
            "any node" => Target::AnyNode,
            "rest" => Target::Rest,
            _ => {
                if let Some(spec) = t.strip_prefix("node serving tablet ") {
                    match spec.split_once(':') {
                        Some((table, row)) if !table.is_empty() && !row.is_empty() => {
                            Target::ServingTablet {
                                table: table.to_string(),
                                row: row.to_string(),
                            }
                        }
                        _ => return Err(ValueError::Target(text)),
                    }
                } else if let Some(n) = t.strip_prefix("node ") {
                    match n.parse::<u32>() {
                        Ok(n) if n >= 1 => Target::Node(n),
                        _ => return Err(ValueError::Target(text)),
                    }
                } else {
                    return Err(ValueError::Target(text));
                }
            }
        };
        Ok(target)
    }
}

impl From<Target> for String {
    fn from(t: Target) -> String {
        match t {
            Target::ActiveMaster => "master".into(),
            Target::StandbyMaster => "standby master".into(),
            Target::AnyMaster => "any master".into(),
            Target::Meta => "meta".into(),
            Target::Node(n) => format!("node {n}"),
            Target::AnyNode => "any node".into(),
            Target::ServingTablet { table, row } => format!("node serving tablet {table}:{row}"),
            Target::Rest => "rest".into(),
        }
    }
}

/// The procedures whose phases a trigger may name.
pub const PROCEDURES: [&str; 11] = [
    "split", "merge", "move", "load", "unload", "gc", "disable", "enable", "drop", "failover",
    "query",
];

/// "When procedure P reaches phase F": the runner applies the fault the moment an actor reports
/// entering that phase.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Trigger {
    pub procedure: String,
    pub phase: String,
}

impl TryFrom<String> for Trigger {
    type Error = ValueError;
    fn try_from(text: String) -> Result<Self, ValueError> {
        let bad = |reason: &str| ValueError::Trigger {
            text: text.clone(),
            reason: reason.to_string(),
        };
        let (procedure, phase) = text
            .trim()
            .split_once('.')
            .ok_or_else(|| bad("expected PROCEDURE.PHASE, e.g. \"split.update_meta\""))?;
        if !PROCEDURES.contains(&procedure) {
            return Err(bad(&format!(
                "unknown procedure; expected one of {}",
                PROCEDURES.join(", ")
            )));
        }
        let ident = !phase.is_empty()
            && phase
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
        if !ident {
            return Err(bad(
                "the phase must be a lowercase identifier (a-z, 0-9, _)",
            ));
        }
        Ok(Trigger {
            procedure: procedure.to_string(),
            phase: phase.to_string(),
        })
    }
}

impl From<Trigger> for String {
    fn from(t: Trigger) -> String {
        format!("{}.{}", t.procedure, t.phase)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dur(s: &str) -> Result<Duration, ValueError> {
        Dur::try_from(s.to_string()).map(|d| d.0)
    }

    #[test]
    fn durations_parse_exactly_and_print_back() {
        assert_eq!(dur("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(dur("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(dur("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(dur("0.000000001s"), Ok(Duration::from_nanos(1)));
        for bad in [
            "",
            "5",
            "ms",
            "5 sec",
            "1.s",
            ".5s",
            "-1s",
            "1.0000000001s",
            "99999999999h",
        ] {
            assert!(dur(bad).is_err(), "{bad:?} was accepted");
        }
        for text in ["250ms", "90s", "2m", "1h", "7ns", "1500us"] {
            assert_eq!(
                Dur::try_from(text.to_string()).map(String::from),
                Ok(text.to_string())
            );
        }
        let skew = SignedDur::try_from("-300ms".to_string()).expect("valid");
        assert_eq!(skew.nanos, -300_000_000);
        assert_eq!(String::from(skew), "-300ms");
        assert!(SignedDur::try_from("--1s".to_string()).is_err());
    }

    #[test]
    fn targets_parse_and_print_back() {
        for text in [
            "master",
            "standby master",
            "any master",
            "meta",
            "node 3",
            "any node",
            "rest",
            "node serving tablet users:k00000042",
        ] {
            let t = Target::try_from(text.to_string()).expect(text);
            assert_eq!(String::from(t), text);
        }
        assert_eq!(Target::try_from("node 2".to_string()), Ok(Target::Node(2)));
        for bad in [
            "node 0",
            "node x",
            "the master",
            "node serving tablet users",
            "node serving tablet :k",
        ] {
            assert!(
                Target::try_from(bad.to_string()).is_err(),
                "{bad:?} was accepted"
            );
        }
    }

    #[test]
    fn triggers_name_a_known_procedure_and_a_phase() {
        let t = Trigger::try_from("split.update_meta".to_string()).expect("valid");
        assert_eq!(
            (t.procedure.as_str(), t.phase.as_str()),
            ("split", "update_meta")
        );
        let err = Trigger::try_from("splat.update_meta".to_string()).expect_err("unknown");
        assert!(err.to_string().contains("unknown procedure"), "{err}");
        assert!(Trigger::try_from("split".to_string()).is_err());
        assert!(Trigger::try_from("split.Update".to_string()).is_err());
    }
}
