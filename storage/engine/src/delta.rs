//! The merge-joins over sorted interned states and deltas: apply, diff,
//! compose, lookup. A state is a list of `(key, event)` sorted by key; a
//! delta a list of `(key, Some(event) | None = removed)` sorted by key.

use crate::format::delta::Entry;
use crate::format::keys::{EventNid, IKey};

/// A sorted, interned state.
pub type SortedState = [(IKey, EventNid)];

/// Applies sorted delta `delta` to sorted state `state`.
pub fn apply(state: &SortedState, delta: &[Entry]) -> Vec<(IKey, EventNid)> {
    let mut out = Vec::with_capacity(state.len() + delta.len());
    let (mut i, mut j) = (0, 0);
    while i < state.len() || j < delta.len() {
        match (state.get(i), delta.get(j)) {
            (Some(a), Some(b)) if a.0 < b.0 => {
                out.push(*a);
                i += 1;
            }
            (Some(a), None) => {
                out.push(*a);
                i += 1;
            }
            (a, Some(&(k, v))) => {
                if a.is_some_and(|a| a.0 == k) {
                    i += 1;
                }
                if let Some(e) = v {
                    out.push((k, e));
                }
                j += 1;
            }
            (None, None) => break,
        }
    }
    out
}

/// The delta turning sorted state `from` into sorted state `to`.
pub fn diff(from: &SortedState, to: &SortedState) -> Vec<Entry> {
    let mut out = Vec::new();
    let (mut i, mut j) = (0, 0);
    while i < from.len() || j < to.len() {
        match (from.get(i), to.get(j)) {
            (Some(a), Some(b)) if a.0 == b.0 => {
                if a.1 != b.1 {
                    out.push((b.0, Some(b.1)));
                }
                i += 1;
                j += 1;
            }
            (Some(a), Some(b)) if a.0 < b.0 => {
                out.push((a.0, None));
                i += 1;
            }
            (Some(a), None) => {
                out.push((a.0, None));
                i += 1;
            }
            (_, Some(b)) => {
                out.push((b.0, Some(b.1)));
                j += 1;
            }
            (None, None) => break,
        }
    }
    out
}

/// The delta equivalent to applying `older` then `newer`.
pub fn compose(older: &[Entry], newer: &[Entry]) -> Vec<Entry> {
    let mut out = Vec::with_capacity(older.len() + newer.len());
    let (mut i, mut j) = (0, 0);
    while let (Some(&a), Some(&b)) = (older.get(i), newer.get(j)) {
        match a.0.cmp(&b.0) {
            std::cmp::Ordering::Less => {
                out.push(a);
                i += 1;
            }
            std::cmp::Ordering::Greater => {
                out.push(b);
                j += 1;
            }
            std::cmp::Ordering::Equal => {
                out.push(b);
                i += 1;
                j += 1;
            }
        }
    }
    out.extend_from_slice(older.get(i..).unwrap_or_default());
    out.extend_from_slice(newer.get(j..).unwrap_or_default());
    out
}

/// The entry for `k`, if the delta mentions it.
pub fn lookup(d: &[Entry], k: IKey) -> Option<Option<EventNid>> {
    let i = d.binary_search_by_key(&k, |e| e.0).ok()?;
    d.get(i).map(|e| e.1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::keys::ikey;
    use proptest::prelude::*;
    use std::collections::BTreeMap;

    fn arb_delta() -> impl Strategy<Value = Vec<Entry>> {
        proptest::collection::btree_map((0u32..5, 0u32..50), proptest::option::of(0u64..50), 0..40)
            .prop_map(|m| m.into_iter().map(|((t, s), e)| (ikey(t, s), e)).collect())
    }

    fn arb_state() -> impl Strategy<Value = Vec<(IKey, EventNid)>> {
        proptest::collection::btree_map((0u32..5, 0u32..50), 0u64..50, 0..60)
            .prop_map(|m| m.into_iter().map(|((t, s), e)| (ikey(t, s), e)).collect())
    }

    /// The plain model: a state as a map, a delta applied key by key.
    fn model_apply(state: &SortedState, delta: &[Entry]) -> Vec<(IKey, EventNid)> {
        let mut m: BTreeMap<IKey, EventNid> = state.iter().copied().collect();
        for &(k, v) in delta {
            match v {
                Some(e) => m.insert(k, e),
                None => m.remove(&k),
            };
        }
        m.into_iter().collect()
    }

    proptest! {
        #[test]
        fn apply_matches_the_model(s in arb_state(), d in arb_delta()) {
            prop_assert_eq!(apply(&s, &d), model_apply(&s, &d));
        }

        #[test]
        fn diff_then_apply_gives_the_target(a in arb_state(), b in arb_state()) {
            let d = diff(&a, &b);
            prop_assert!(d.windows(2).all(|w| w[0].0 < w[1].0), "sorted, unique");
            prop_assert_eq!(apply(&a, &d), b.clone());
            prop_assert!(diff(&b, &b).is_empty());
        }

        #[test]
        fn compose_is_sequential_application(s in arb_state(), a in arb_delta(), b in arb_delta()) {
            let mut m: BTreeMap<IKey, Option<u64>> = BTreeMap::new();
            for &(k, v) in a.iter().chain(b.iter()) { m.insert(k, v); }
            let want: Vec<Entry> = m.into_iter().collect();
            prop_assert_eq!(compose(&a, &b), want);
            prop_assert_eq!(apply(&s, &compose(&a, &b)), apply(&apply(&s, &a), &b));
        }

        #[test]
        fn lookup_finds_exactly_the_entries(d in arb_delta(), t in 0u32..5, sk in 0u32..50) {
            let k = ikey(t, sk);
            prop_assert_eq!(lookup(&d, k), d.iter().find(|e| e.0 == k).map(|e| e.1));
        }
    }
}
