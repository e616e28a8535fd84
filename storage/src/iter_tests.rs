//! Model tests for the iterators: every move is compared against a sorted Vec.

use super::*;
use crate::testutil::{arb_key, arb_op, check_iter, Model};
use proptest::prelude::*;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    /// Children may hold the same key; the merged order is (key, child index).
    #[test]
    fn merging_matches_model(
        children in prop::collection::vec(prop::collection::btree_set(arb_key(), 0..12), 0..4),
        ops in prop::collection::vec(arb_op(), 1..40),
    ) {
        let mut all = Vec::new();
        let mut iters: Vec<Box<dyn EntryIter>> = Vec::new();
        for (ci, keys) in children.iter().enumerate() {
            let entries: Vec<_> = keys.iter().map(|k| (k.clone(), vec![ci as u8])).collect();
            for e in &entries {
                all.push((e.0.clone(), ci, e.1.clone()));
            }
            iters.push(Box::new(VecIter::new(entries)));
        }
        all.sort();
        let mut model = Model { entries: all.into_iter().map(|(k, _, v)| (k, v)).collect(), pos: None };
        let mut it = MergingIter::new(iters);
        check_iter(&mut it, &mut model, &ops)?;
    }

    #[test]
    fn clipped_matches_model(
        keys in prop::collection::btree_set(arb_key(), 0..20),
        lower in prop::option::of(arb_key()),
        upper in prop::option::of(arb_key()),
        ops in prop::collection::vec(arb_op(), 1..40),
    ) {
        let entries: Vec<_> = keys.iter().map(|k| (k.clone(), k.clone())).collect();
        let visible: Vec<_> = entries
            .iter()
            .filter(|e| lower.as_ref().is_none_or(|l| e.0 >= *l) && upper.as_ref().is_none_or(|u| e.0 < *u))
            .cloned()
            .collect();
        let mut model = Model { entries: visible, pos: None };
        let mut it = ClippedIter::new(Box::new(VecIter::new(entries)), lower, upper);
        check_iter(&mut it, &mut model, &ops)?;
    }

    /// A clipped view merged with other sources: the shape a split child's read path has.
    #[test]
    fn merged_clipped_matches_model(
        a in prop::collection::btree_set(arb_key(), 0..12),
        b in prop::collection::btree_set(arb_key(), 0..12),
        lower in arb_key(),
        ops in prop::collection::vec(arb_op(), 1..30),
    ) {
        let ea: Vec<_> = a.iter().map(|k| (k.clone(), b"a".to_vec())).collect();
        let eb: Vec<_> = b.iter().map(|k| (k.clone(), b"b".to_vec())).collect();
        let mut all: Vec<_> = ea.iter().filter(|e| e.0 >= lower).map(|e| (e.0.clone(), 0, e.1.clone())).collect();
        all.extend(eb.iter().map(|e| (e.0.clone(), 1, e.1.clone())));
        all.sort();
        let mut model = Model { entries: all.into_iter().map(|(k, _, v)| (k, v)).collect(), pos: None };
        let clipped = ClippedIter::new(Box::new(VecIter::new(ea)), Some(lower), None);
        let mut it = MergingIter::new(vec![Box::new(clipped), Box::new(VecIter::new(eb))]);
        check_iter(&mut it, &mut model, &ops)?;
    }
}

#[test]
fn vec_iter_dedups_keeping_last() {
    let mut it = VecIter::new(vec![
        (b"b".to_vec(), b"1".to_vec()),
        (b"a".to_vec(), b"x".to_vec()),
        (b"b".to_vec(), b"2".to_vec()),
    ]);
    assert!(it.seek_to_first().is_ok());
    assert_eq!(it.key(), b"a");
    assert!(it.next().is_ok());
    assert_eq!((it.key(), it.value()), (&b"b"[..], &b"2"[..]));
    assert!(it.next().is_ok());
    assert!(!it.valid());
}

#[test]
fn merging_empty_is_invalid() {
    let mut it = MergingIter::new(Vec::new());
    assert!(it.seek_to_first().is_ok());
    assert!(!it.valid());
    assert!(it.seek_for_prev(b"zz").is_ok());
    assert!(!it.valid());
}
