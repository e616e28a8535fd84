//! `read_row`, scans and the compaction filter against a set-based model of the semantics
//! (written independently of the streaming classifier).

use super::*;
use crate::iter::{MergingIter, VecIter};
use crate::key::{CellKey, CellKind};
use proptest::prelude::*;

const SEC: u64 = 1_000_000;
const ROWS: [&[u8]; 3] = [b"a", b"a\x00", b"b"];
const FAMS: [&[u8]; 2] = [b"f", b"g"];
const QUALS: [&[u8]; 3] = [b"", b"q", b"q\x00"];

#[derive(Clone, Debug)]
struct Entry {
    key: CellKey,
    value: Vec<u8>,
}

fn arb_entries() -> impl Strategy<Value = Vec<Entry>> {
    let one = (
        0..3usize,
        0..2usize,
        0..3usize,
        0u64..6,
        prop_oneof![
            6 => Just(CellKind::Put),
            1 => Just(CellKind::DeleteRow),
            1 => Just(CellKind::DeleteFamily),
            1 => Just(CellKind::DeleteColumn),
            2 => Just(CellKind::DeleteVersion),
        ],
    );
    prop::collection::vec(one, 0..40).prop_map(|ops| {
        ops.into_iter()
            .enumerate()
            .map(|(seq, (r, f, q, ts, kind))| {
                // Tombstones carry the scope their kind implies (empty family/qualifier).
                let family = if kind == CellKind::DeleteRow {
                    &b""[..]
                } else {
                    FAMS[f]
                };
                let qualifier = if matches!(kind, CellKind::DeleteRow | CellKind::DeleteFamily) {
                    &b""[..]
                } else {
                    QUALS[q]
                };
                let key = CellKey {
                    row: ROWS[r].into(),
                    family: family.into(),
                    qualifier: qualifier.into(),
                    ts: ts * SEC,
                    kind,
                    seq: seq as u64 + 1,
                };
                Entry {
                    key,
                    value: format!("v{seq}").into_bytes(),
                }
            })
            .collect()
    })
}

fn arb_rules() -> impl Strategy<Value = FamilyRules> {
    (1u32..4, 0u32..4, prop::option::of(1u64..5)).prop_map(|(max, min, ttl)| FamilyRules {
        max_versions: max,
        min_versions: min.min(max),
        ttl_secs: ttl,
        locality_group: "lg".into(),
    })
}

fn arb_schema() -> impl Strategy<Value = Schema> {
    (arb_rules(), arb_rules()).prop_map(|(f, g)| Schema {
        families: [(b"f".to_vec(), f), (b"g".to_vec(), g)]
            .into_iter()
            .collect(),
    })
}

fn arb_opts() -> impl Strategy<Value = ReadOptions> {
    let filter = prop_oneof![
        (0..2usize).prop_map(|f| ColumnFilter::Family(FAMS[f].to_vec())),
        (0..2usize, 0..3usize)
            .prop_map(|(f, q)| ColumnFilter::Column(FAMS[f].to_vec(), QUALS[q].to_vec())),
    ];
    (
        prop::collection::vec(filter, 0..3),
        prop_oneof![
            Just((0, u64::MAX)),
            (0u64..6, 1u64..7).prop_map(|(a, b)| (a * SEC, b * SEC))
        ],
        prop::option::of(1u32..3),
        0u64..10,
        prop_oneof![Just(u64::MAX), 0u64..40],
    )
        .prop_map(
            |(columns, time_range, max_versions, now, snapshot_seq)| ReadOptions {
                columns,
                time_range,
                max_versions,
                now_micros: now * SEC,
                snapshot_seq,
            },
        )
}

/// The semantics, stated over sets: which puts are deleted, then versions per column.
fn model_read(entries: &[Entry], row: &[u8], schema: &Schema, opts: &ReadOptions) -> Vec<Cell> {
    let live: Vec<&CellKey> = entries
        .iter()
        .map(|e| &e.key)
        .filter(|k| k.row == row && k.seq <= opts.snapshot_seq)
        .collect();
    let deleted = |p: &CellKey| {
        live.iter().any(|t| {
            t.seq > p.seq
                && match t.kind {
                    CellKind::DeleteRow => t.ts >= p.ts,
                    CellKind::DeleteFamily => t.family == p.family && t.ts >= p.ts,
                    CellKind::DeleteColumn => {
                        t.family == p.family && t.qualifier == p.qualifier && t.ts >= p.ts
                    }
                    CellKind::DeleteVersion => {
                        t.family == p.family && t.qualifier == p.qualifier && t.ts == p.ts
                    }
                    CellKind::Put => false,
                }
        })
    };
    let mut out = Vec::new();
    for (fam, rules) in &schema.families {
        let mut quals: Vec<&Vec<u8>> = live
            .iter()
            .filter(|k| &k.family == fam)
            .map(|k| &k.qualifier)
            .collect();
        quals.sort();
        quals.dedup();
        for q in quals {
            if !opts.wants(fam, q) {
                continue;
            }
            // The cell at each timestamp is its newest put.
            let mut by_ts: BTreeMap<std::cmp::Reverse<u64>, &CellKey> = BTreeMap::new();
            for k in live
                .iter()
                .filter(|k| &k.family == fam && &k.qualifier == q && k.kind == CellKind::Put)
            {
                let slot = by_ts.entry(std::cmp::Reverse(k.ts)).or_insert(k);
                if k.seq > slot.seq {
                    *slot = k;
                }
            }
            let versions: Vec<&CellKey> = by_ts.values().copied().filter(|k| !deleted(k)).collect();
            let mut returned = 0;
            for (i, k) in versions.iter().enumerate() {
                let i = i as u32;
                let expired = rules
                    .ttl_secs
                    .is_some_and(|t| k.ts + t * SEC <= opts.now_micros);
                let kept = i < rules.max_versions && (i < rules.min_versions || !expired);
                let in_range = k.ts >= opts.time_range.0 && k.ts < opts.time_range.1;
                if kept && in_range && opts.max_versions.is_none_or(|m| returned < m) {
                    returned += 1;
                    let value = entries
                        .iter()
                        .find(|e| e.key == **k)
                        .map(|e| e.value.clone())
                        .unwrap_or_default();
                    out.push(Cell {
                        row: row.to_vec(),
                        family: fam.clone(),
                        qualifier: q.clone(),
                        ts: k.ts,
                        value,
                    });
                }
            }
        }
    }
    out
}

fn sorted(entries: &[Entry]) -> Vec<(Vec<u8>, Vec<u8>)> {
    let mut v: Vec<_> = entries
        .iter()
        .map(|e| (e.key.encode(), e.value.clone()))
        .collect();
    v.sort();
    v
}

/// The entries spread over three merged sources, like memtable + two SSTs.
fn merged(entries: &[Entry]) -> MergingIter {
    let mut parts = vec![Vec::new(), Vec::new(), Vec::new()];
    for (i, e) in sorted(entries).into_iter().enumerate() {
        parts[i % 3].push(e);
    }
    MergingIter::new(
        parts
            .into_iter()
            .map(|p| Box::new(VecIter::new(p)) as Box<dyn EntryIter>)
            .collect(),
    )
}

fn compact(
    entries: &[(Vec<u8>, Vec<u8>)],
    schema: &Schema,
    now: u64,
    bottommost: bool,
) -> Vec<(Vec<u8>, Vec<u8>)> {
    let mut f = CompactionFilter::new(schema.clone(), now, bottommost);
    entries
        .iter()
        .filter(|(k, _)| f.keep(k).expect("valid keys"))
        .cloned()
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn read_row_matches_model(entries in arb_entries(), schema in arb_schema(), opts in arb_opts()) {
        let mut it = merged(&entries);
        for row in ROWS {
            let got = read_row(&mut it, row, &schema, &opts).expect("read");
            prop_assert_eq!(got, model_read(&entries, row, &schema, &opts), "row {:?}", row);
        }
    }

    #[test]
    fn scans_match_model_both_ways(entries in arb_entries(), schema in arb_schema(), opts in arb_opts(),
                                   start in 0..3usize, end in prop::option::of(0..4usize), limit in 0usize..4) {
        let end_row: Option<Vec<u8>> = end.map(|e| if e < 3 { ROWS[e].to_vec() } else { b"c".to_vec() });
        let expect: Vec<(Vec<u8>, Vec<Cell>)> = ROWS
            .iter()
            .filter(|r| **r >= ROWS[start] && end_row.as_deref().is_none_or(|e| **r < e))
            .map(|r| (r.to_vec(), model_read(&entries, r, &schema, &opts)))
            .filter(|(_, c)| !c.is_empty())
            .collect();
        let mut it = merged(&entries);
        let fwd = scan_rows(&mut it, &schema, &opts, ROWS[start], end_row.as_deref(), false, limit).expect("scan");
        prop_assert_eq!(&fwd[..], &expect[..limit.min(expect.len())]);
        let rev = scan_rows(&mut it, &schema, &opts, ROWS[start], end_row.as_deref(), true, limit).expect("scan");
        let mut expect_rev = expect.clone();
        expect_rev.reverse();
        prop_assert_eq!(&rev[..], &expect_rev[..limit.min(expect.len())]);
    }

    /// Over the whole stream, compaction never changes what a read (now or later) returns.
    #[test]
    fn compaction_keeps_exactly_what_reads_see(entries in arb_entries(), schema in arb_schema(),
                                               mut opts in arb_opts(), now in 0u64..6, bottommost in any::<bool>()) {
        opts.snapshot_seq = u64::MAX;
        opts.now_micros = opts.now_micros.max(now * SEC);
        let all = sorted(&entries);
        let kept = compact(&all, &schema, now * SEC, bottommost);
        for row in ROWS {
            let before = read_row(&mut VecIter::new(all.clone()), row, &schema, &opts).expect("read");
            let after = read_row(&mut VecIter::new(kept.clone()), row, &schema, &opts).expect("read");
            prop_assert_eq!(before, after);
        }
        if bottommost {
            prop_assert!(kept.iter().all(|(k, _)| CellKey::decode(k).map(|c| c.kind == CellKind::Put).unwrap_or(false)));
        }
    }

    /// Compacting only the older half at the bottom level (the newer half stays above, as in
    /// an LSM) keeps tombstone semantics exact. Version limits are lifted here: lazy version
    /// GC under newer deletes is documented as non-deterministic.
    #[test]
    fn bottom_compaction_of_older_entries_is_exact(entries in arb_entries(), opts in arb_opts(), split in 0u64..40) {
        let schema = Schema { families: FAMS.iter().map(|f| (f.to_vec(), FamilyRules::new(u32::MAX))).collect() };
        let mut opts = opts;
        opts.snapshot_seq = u64::MAX;
        let (old, new): (Vec<Entry>, Vec<Entry>) = entries.iter().cloned().partition(|e| e.key.seq <= split);
        let compacted = compact(&sorted(&old), &schema, 0, true);
        for row in ROWS {
            let mut it = MergingIter::new(vec![Box::new(VecIter::new(sorted(&new))), Box::new(VecIter::new(compacted.clone()))]);
            let got = read_row(&mut it, row, &schema, &opts).expect("read");
            prop_assert_eq!(got, model_read(&entries, row, &schema, &opts));
        }
    }
}

fn put(row: &[u8], fam: &[u8], q: &[u8], ts: u64, seq: u64) -> (Vec<u8>, Vec<u8>) {
    (
        CellKey::put(row, fam, q, ts, seq).encode(),
        format!("{ts}@{seq}").into_bytes(),
    )
}

#[test]
fn unknown_family_in_filter_is_invalid_argument() {
    let schema = Schema {
        families: [(b"f".to_vec(), FamilyRules::default())]
            .into_iter()
            .collect(),
    };
    let opts = ReadOptions {
        columns: vec![ColumnFilter::Family(b"nope".to_vec())],
        ..ReadOptions::default()
    };
    let r = read_row(
        &mut VecIter::new(vec![put(b"r", b"f", b"q", 1, 1)]),
        b"r",
        &schema,
        &opts,
    );
    assert!(matches!(r, Err(StorageError::InvalidArgument(_))));
}

#[test]
fn min_versions_survive_ttl() {
    let rules = FamilyRules {
        max_versions: 5,
        min_versions: 2,
        ttl_secs: Some(1),
        ..FamilyRules::default()
    };
    let schema = Schema {
        families: [(b"f".to_vec(), rules)].into_iter().collect(),
    };
    let data: Vec<_> = (1..=4).map(|t| put(b"r", b"f", b"q", t * SEC, t)).collect();
    let opts = ReadOptions {
        now_micros: 100 * SEC,
        ..ReadOptions::default()
    };
    let cells = read_row(&mut VecIter::new(data), b"r", &schema, &opts).expect("read");
    let ts: Vec<u64> = cells.iter().map(|c| c.ts / SEC).collect();
    assert_eq!(ts, vec![4, 3], "all expired, the two newest kept");
}

#[test]
fn put_after_delete_is_visible_and_row_helpers_step() {
    let schema = Schema {
        families: [(b"f".to_vec(), FamilyRules::new(3))].into_iter().collect(),
    };
    let del = CellKey {
        row: b"b".to_vec(),
        family: vec![],
        qualifier: vec![],
        ts: 10,
        kind: CellKind::DeleteRow,
        seq: 5,
    };
    let data = vec![
        put(b"a", b"f", b"q", 1, 1),
        put(b"b", b"f", b"q", 3, 4),
        (del.encode(), vec![]),
        put(b"b", b"f", b"q", 2, 6),
        put(b"c", b"f", b"q", 1, 2),
    ];
    let mut it = VecIter::new(data);
    let cells = read_row(&mut it, b"b", &schema, &ReadOptions::default()).expect("read");
    assert_eq!(
        cells
            .iter()
            .map(|c| (c.ts, c.value.clone()))
            .collect::<Vec<_>>(),
        vec![(2, b"2@6".to_vec())]
    );
    assert_eq!(prev_row(&mut it, b"c").expect("ok"), Some(b"b".to_vec()));
    assert_eq!(prev_row(&mut it, b"a").expect("ok"), None);
    assert_eq!(next_row(&mut it, b"a").expect("ok"), Some(b"b".to_vec()));
    assert_eq!(next_row(&mut it, b"c").expect("ok"), None);
}
