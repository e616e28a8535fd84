//! Key-range coverage (architecture.md, section 9, invariant 1): a table's tablets, as
//! `[start, end)` ranges over row keys, must cover the whole key space exactly once: no gap, no
//! overlap, no empty range, starting at the empty key and ending unbounded.
//!
//! A pure function over plain ranges, so the cluster runner can feed it meta snapshots (and a
//! test can feed it hand-made ones). Must not know what a tablet or the meta store is.

use std::fmt::Debug;

/// `[start, end)`; `end == None` means unbounded. The empty `start` is the lowest key.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct KeyRange {
    pub start: Vec<u8>,
    pub end: Option<Vec<u8>>,
}

impl KeyRange {
    pub fn new(start: impl Into<Vec<u8>>, end: Option<&[u8]>) -> Self {
        Self {
            start: start.into(),
            end: end.map(<[u8]>::to_vec),
        }
    }

    /// The whole key space.
    pub fn all() -> Self {
        Self::new(Vec::new(), None)
    }

    pub fn contains(&self, key: &[u8]) -> bool {
        key >= self.start.as_slice() && self.end.as_deref().is_none_or(|e| key < e)
    }

    fn is_empty(&self) -> bool {
        self.end
            .as_deref()
            .is_some_and(|e| e <= self.start.as_slice())
    }
}

/// One way a set of ranges fails to tile the key space. `T` names a range (a tablet id).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CoverageViolation<T> {
    /// No ranges at all: every key is uncovered.
    NoRanges,
    /// `end <= start`: the range holds no key (a bad split or merge record).
    EmptyRange { id: T, range: KeyRange },
    /// Keys in `[from, to)` belong to no range (`after` is the range before the hole, if any;
    /// `to == None` means up to the top of the key space).
    Gap {
        after: Option<T>,
        from: Vec<u8>,
        to: Option<Vec<u8>>,
    },
    /// Keys in `[from, to)` belong to both `a` and `b`.
    Overlap {
        a: T,
        b: T,
        from: Vec<u8>,
        to: Option<Vec<u8>>,
    },
}

/// Checks that `ranges` tile the whole key space. Returns every violation found, in key order;
/// an empty result means exact coverage.
pub fn check_coverage<T: Clone + Debug>(ranges: &[(T, KeyRange)]) -> Vec<CoverageViolation<T>> {
    let mut violations = Vec::new();
    let mut sorted: Vec<&(T, KeyRange)> = Vec::with_capacity(ranges.len());
    for r in ranges {
        if r.1.is_empty() {
            violations.push(CoverageViolation::EmptyRange {
                id: r.0.clone(),
                range: r.1.clone(),
            });
        } else {
            sorted.push(r);
        }
    }
    if ranges.is_empty() {
        violations.push(CoverageViolation::NoRanges);
        return violations;
    }
    sorted.sort_by(|a, b| a.1.cmp(&b.1));
    // `covered`: every key below it is covered (None: everything is). `last`: the range that
    // reaches furthest so far, the one a following range must start exactly at.
    let mut covered: Option<Vec<u8>> = Some(Vec::new());
    let mut last: Option<&(T, KeyRange)> = None;
    for r in sorted {
        let (id, range) = (&r.0, &r.1);
        match &covered {
            Some(c) if range.start > *c => violations.push(CoverageViolation::Gap {
                after: last.map(|l| l.0.clone()),
                from: c.clone(),
                to: Some(range.start.clone()),
            }),
            Some(c) if range.start == *c => {}
            // Starts below what is covered: overlaps the furthest-reaching range so far.
            _ => {
                let prev = last.expect("something is covered only after a range");
                let to = min_end(&prev.1.end, &range.end);
                violations.push(CoverageViolation::Overlap {
                    a: prev.0.clone(),
                    b: id.clone(),
                    from: range.start.clone(),
                    to,
                });
            }
        }
        let reaches_further = match (&covered, &range.end) {
            (None, _) => false,
            (Some(_), None) => true,
            (Some(c), Some(e)) => e > c,
        };
        if reaches_further || last.is_none() {
            covered = range.end.clone();
            last = Some(r);
        }
    }
    if let Some(c) = covered {
        violations.push(CoverageViolation::Gap {
            after: last.map(|l| l.0.clone()),
            from: c,
            to: None,
        });
    }
    if !violations.is_empty() {
        tracing::debug!(?violations, "key coverage violated");
    }
    violations
}

fn min_end(a: &Option<Vec<u8>>, b: &Option<Vec<u8>>) -> Option<Vec<u8>> {
    match (a, b) {
        (None, x) | (x, None) => x.clone(),
        (Some(x), Some(y)) => Some(x.min(y).clone()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(id: u32, start: &str, end: Option<&str>) -> (u32, KeyRange) {
        (id, KeyRange::new(start.as_bytes(), end.map(str::as_bytes)))
    }
    fn b(s: &str) -> Vec<u8> {
        s.as_bytes().to_vec()
    }

    #[test]
    fn exact_tilings_pass_in_any_order() {
        assert!(check_coverage(&[r(1, "", None)]).is_empty());
        let tiles = [r(3, "p", None), r(1, "", Some("g")), r(2, "g", Some("p"))];
        assert!(check_coverage(&tiles).is_empty());
        assert!(KeyRange::all().contains(b"anything"));
        assert!(tiles[2].1.contains(b"g") && !tiles[2].1.contains(b"p"));
    }

    #[test]
    fn gaps_at_the_bottom_middle_and_top_are_named() {
        let v = check_coverage(&[r(1, "a", Some("g")), r(2, "h", Some("p"))]);
        assert_eq!(
            v,
            vec![
                CoverageViolation::Gap {
                    after: None,
                    from: b(""),
                    to: Some(b("a"))
                },
                CoverageViolation::Gap {
                    after: Some(1),
                    from: b("g"),
                    to: Some(b("h"))
                },
                CoverageViolation::Gap {
                    after: Some(2),
                    from: b("p"),
                    to: None
                },
            ]
        );
        assert_eq!(
            check_coverage::<u32>(&[]),
            vec![CoverageViolation::NoRanges]
        );
    }

    #[test]
    fn overlaps_and_duplicates_are_named_with_their_extent() {
        let v = check_coverage(&[r(1, "", Some("m")), r(2, "k", None)]);
        assert_eq!(
            v,
            vec![CoverageViolation::Overlap {
                a: 1,
                b: 2,
                from: b("k"),
                to: Some(b("m"))
            }]
        );
        // A split child left behind next to both new halves (a double owner of [g, p)).
        let v = check_coverage(&[
            r(1, "", Some("g")),
            r(2, "g", Some("p")),
            r(3, "g", Some("k")),
            r(4, "k", Some("p")),
            r(5, "p", None),
        ]);
        assert_eq!(v.len(), 2, "{v:?}");
        assert!(v
            .iter()
            .all(|x| matches!(x, CoverageViolation::Overlap { .. })));
        // A range nested inside another.
        let v = check_coverage(&[r(1, "", None), r(2, "c", Some("d"))]);
        assert_eq!(
            v,
            vec![CoverageViolation::Overlap {
                a: 1,
                b: 2,
                from: b("c"),
                to: Some(b("d"))
            }]
        );
    }

    #[test]
    fn empty_and_inverted_ranges_are_refused() {
        let v = check_coverage(&[r(1, "", Some("g")), r(2, "g", Some("g")), r(3, "g", None)]);
        assert_eq!(
            v,
            vec![CoverageViolation::EmptyRange {
                id: 2,
                range: KeyRange::new(b("g"), Some(b"g"))
            }]
        );
        let v = check_coverage(&[r(1, "", None), r(2, "q", Some("b"))]);
        assert!(matches!(
            v[..],
            [CoverageViolation::EmptyRange { id: 2, .. }]
        ));
    }
}
