//! One conformance suite for every [`StateStore`], like TiKV's
//! `engine_traits_tests`. Each check takes a fresh, empty store and panics
//! (with the failing assertion) when the store does not behave as Synapse's
//! tables would.
//!
//! A backend gets every check, one test each, with one line:
//!
//! ```text
//! mxstate_conformance::suite!(memory, ((), mxstate_api::MemoryStore::new()));
//! ```
//!
//! The second argument is an expression evaluated once per test; it gives
//! `(guard, store)`, where `guard` (a temporary directory, a server) lives
//! as long as the test. The list of checks exists once, in
//! [`for_each_check!`].
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, BTreeSet};

use mxstate_api::{
    ConflictedSubgraph, Error, ErrorKind, EventId, GroupId, RoomId, StateDelta, StateFilter, StateKey, StateMap,
};
use mxstate_api::{GroupContent, GroupWrite, StateStore};

/// Event id number `n`, in the forms homeservers send: two in three as
/// room-version-3+ ids (`$` + unpadded base64 of 32 pseudo-random bytes,
/// standard or URL-safe alphabet), one in three as a short text id (room
/// versions 1 and 2 put anything there). Stores that keep hash ids as bytes
/// meet both forms in every test that uses these.
pub fn event_id(n: u64) -> EventId {
    use base64::engine::general_purpose::{STANDARD_NO_PAD, URL_SAFE_NO_PAD};
    use base64::Engine as _;
    let mut hash = [0u8; 32];
    let mut x = n;
    for chunk in hash.chunks_mut(8) {
        // splitmix64
        x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = x;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        chunk.copy_from_slice(&(z ^ (z >> 31)).to_le_bytes());
    }
    let text = match n % 3 {
        0 => format!("$e{n}"),
        1 => format!("${}", STANDARD_NO_PAD.encode(hash)),
        _ => format!("${}", URL_SAFE_NO_PAD.encode(hash)),
    };
    EventId::parse(text).unwrap()
}

/// Calls `$callback!($($args)* [check, check, ...])` with every check's
/// name: the one list of checks.
#[macro_export]
macro_rules! for_each_check {
    ($($callback:ident)::+ ! ($($args:tt)*)) => {
        $($callback)::+! { $($args)* [
            delta_chain,
            filters,
            removals_and_forks,
            long_chains,
            chosen_ids_and_errors,
            batch_is_atomic,
            event_mappings,
            current_state,
            purge_room,
            purge_groups,
            auth_chains,
            auth_difference,
        ] }
    };
}

/// Generates module `$name` with one `#[tokio::test]` per check, each on a
/// store made by `$make` (an expression giving `(guard, store)`).
#[macro_export]
macro_rules! suite {
    ($name:ident, $make:expr) => {
        $crate::for_each_check!($crate::__mxstate_conformance_suite!($name, $make,));
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __mxstate_conformance_suite {
    ($name:ident, $make:expr, [$($check:ident),* $(,)?]) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $check() {
                    let (_guard, store) = $make;
                    $crate::checks::$check(&store).await;
                }
            )*
        }
    };
}

macro_rules! names {
    ([$($check:ident),* $(,)?]) => {
        /// Names of all checks, in order.
        pub const CHECKS: &[&str] = &[$(stringify!($check)),*];
    };
}
for_each_check!(names!());

pub use checks::{delta, ev, key, room, state};

pub mod checks {
    //! The checks, one `async fn(&dyn StateStore)` each.
    use super::*;

    /// A room id.
    pub fn room(n: u32) -> RoomId {
        RoomId::parse(format!("!room{n}:example.org")).unwrap()
    }
    /// An event id.
    pub fn ev(n: u64) -> EventId {
        crate::event_id(n)
    }
    /// A state key.
    pub fn key(t: &str, s: &str) -> StateKey {
        StateKey::new(t, s).unwrap()
    }
    /// A state map from `(type, state_key, event)` triples.
    pub fn state(entries: &[(&str, &str, u64)]) -> StateMap {
        entries.iter().map(|&(t, s, e)| (key(t, s), ev(e))).collect()
    }
    /// A delta from `(type, state_key, Some(event) | None)` triples.
    pub fn delta(entries: &[(&str, &str, Option<u64>)]) -> StateDelta {
        entries.iter().map(|&(t, s, e)| (key(t, s), e.map(ev))).collect()
    }

    async fn store_full(s: &dyn StateStore, r: u32, e: u64, st: StateMap) -> GroupId {
        s.store_state_group(ev(e), room(r), None, None, st).await.unwrap()
    }
    async fn store_delta(s: &dyn StateStore, r: u32, e: u64, prev: GroupId, d: StateDelta) -> GroupId {
        s.store_state_group(ev(e), room(r), Some(prev), Some(d), StateMap::default())
            .await
            .unwrap()
    }
    async fn full_state(s: &dyn StateStore, g: GroupId) -> StateMap {
        filtered(s, g, StateFilter::all()).await
    }
    /// `g`'s state under `f`, as a map; the shared view of the same read
    /// must hold the same entries, each once.
    async fn filtered(s: &dyn StateStore, g: GroupId, f: StateFilter) -> StateMap {
        let map = s
            .state_for_groups(vec![g], f.clone())
            .await
            .unwrap()
            .remove(&g)
            .unwrap();
        let view = s.state_view(g, f.clone()).await.unwrap();
        assert_eq!(view.len(), map.len(), "group {g}, {f:?}: view length");
        assert_eq!(view.iter().count(), map.len(), "group {g}, {f:?}: view entries");
        assert_eq!(view.to_map(), map, "group {g}, {f:?}: view");
        map
    }
    fn storage_err(e: Error) -> Error {
        e
    }

    pub async fn delta_chain(s: &dyn StateStore) {
        let g1 = store_full(
            s,
            1,
            1,
            state(&[("m.room.create", "", 1), ("m.room.member", "@a:x", 2)]),
        )
        .await;
        let g2 = store_delta(s, 1, 3, g1, delta(&[("m.room.member", "@b:x", Some(3))])).await;
        let g3 = store_delta(s, 1, 4, g2, delta(&[("m.room.member", "@a:x", Some(4))])).await;
        assert!(g1 < g2 && g2 < g3, "ids increase: {g1} {g2} {g3}");
        assert_eq!(
            full_state(s, g3).await,
            state(&[
                ("m.room.create", "", 1),
                ("m.room.member", "@a:x", 4),
                ("m.room.member", "@b:x", 3)
            ])
        );
        assert_eq!(full_state(s, g1).await.len(), 2);
        let d = s.state_group_delta(g3).await.unwrap().unwrap();
        assert_eq!(d.prev_group, g2);
        assert_eq!(d.delta, delta(&[("m.room.member", "@a:x", Some(4))]));
        assert_eq!(s.state_group_delta(g1).await.unwrap(), None);
        let many = s.state_for_groups(vec![g1, g3], StateFilter::all()).await.unwrap();
        assert_eq!(many.keys().copied().collect::<Vec<_>>(), vec![g1, g3]);
        assert_eq!(s.room_groups(room(1)).await.unwrap(), vec![g1, g2, g3]);
        assert!(s.room_groups(room(9)).await.unwrap().is_empty());
        let missing = s
            .state_for_groups(vec![g3 + 100], StateFilter::all())
            .await
            .unwrap_err();
        assert!(matches!(storage_err(missing), Error::UnknownGroup(g) if g == g3 + 100));
        let missing = s.state_view(g3 + 100, StateFilter::all()).await.unwrap_err();
        assert!(matches!(storage_err(missing), Error::UnknownGroup(g) if g == g3 + 100));
    }

    pub async fn filters(s: &dyn StateStore) {
        let mut base = vec![
            ("m.room.create", "", 1),
            ("m.room.power_levels", "", 2),
            ("m.room.name", "", 3),
        ];
        let users: Vec<String> = (0..300).map(|i| format!("@u{i}:x")).collect();
        for (i, u) in users.iter().enumerate() {
            base.push(("m.room.member", u.as_str(), 10 + i as u64));
        }
        let g1 = store_full(s, 1, 1000, state(&base)).await;
        let g2 = store_delta(
            s,
            1,
            1001,
            g1,
            delta(&[("m.room.member", "@u5:x", Some(1001)), ("m.room.name", "", Some(1002))]),
        )
        .await;
        let get = |f: StateFilter| async move { filtered(s, g2, f).await };
        let one = get(StateFilter::from_types([("m.room.power_levels", Some(""))])).await;
        assert_eq!(one, state(&[("m.room.power_levels", "", 2)]));
        let no_members = get(StateFilter::all_except_types(["m.room.member"])).await;
        assert_eq!(
            no_members,
            state(&[
                ("m.room.create", "", 1),
                ("m.room.power_levels", "", 2),
                ("m.room.name", "", 1002)
            ])
        );
        let members = get(StateFilter::from_types([("m.room.member", None)])).await;
        assert_eq!(members.len(), 300);
        assert_eq!(members.get(&key("m.room.member", "@u5:x")), Some(&ev(1001)));
        let some =
            get(
                StateFilter::from_types([("m.room.member", Some("@u5:x")), ("m.room.member", Some("@nobody:x"))])
                    .with_include_others(true),
            )
            .await;
        assert_eq!(some.len(), 4);
        assert!(get(StateFilter::none()).await.is_empty());
        assert!(get(StateFilter::from_types([("m.unknown.type", None)]))
            .await
            .is_empty());
        assert_eq!(get(StateFilter::all()).await.len(), 303);
    }

    pub async fn removals_and_forks(s: &dyn StateStore) {
        let g1 = store_full(s, 1, 1, state(&[("a", "", 1), ("b", "", 2), ("c", "x", 3)])).await;
        let left = store_delta(s, 1, 4, g1, delta(&[("b", "", None), ("d", "", Some(4))])).await;
        let right = store_delta(s, 1, 5, g1, delta(&[("c", "x", Some(5))])).await;
        let merge = store_delta(s, 1, 6, left, delta(&[("c", "x", Some(5))])).await;
        assert_eq!(
            full_state(s, left).await,
            state(&[("a", "", 1), ("c", "x", 3), ("d", "", 4)])
        );
        assert_eq!(
            full_state(s, right).await,
            state(&[("a", "", 1), ("b", "", 2), ("c", "x", 5)])
        );
        assert_eq!(
            full_state(s, merge).await,
            state(&[("a", "", 1), ("c", "x", 5), ("d", "", 4)])
        );
        let d = s.state_group_delta(left).await.unwrap().unwrap();
        assert_eq!(d.delta, delta(&[("b", "", None), ("d", "", Some(4))]));
        // A removal of a key that is not there changes nothing.
        let noop = store_delta(s, 1, 7, right, delta(&[("zz", "", None)])).await;
        assert_eq!(full_state(s, noop).await, full_state(s, right).await);
    }

    pub async fn long_chains(s: &dyn StateStore) {
        // Longer than any chain policy's runs: forces checkpoints and snapshots.
        let mut g = store_full(s, 1, 1, state(&[("m.room.create", "", 1)])).await;
        let mut model = state(&[("m.room.create", "", 1)]);
        let mut groups = vec![(g, model.clone())];
        for i in 0..1500u64 {
            let d = if i % 7 == 3 {
                delta(&[("m.room.member", &format!("@u{}:x", i % 50), None)])
            } else {
                delta(&[("m.room.member", &format!("@u{}:x", i % 50), Some(100 + i))])
            };
            for (k, v) in &d {
                match v {
                    Some(e) => model.insert(k.clone(), e.clone()),
                    None => model.remove(k),
                };
            }
            let prev = if i % 97 == 0 && groups.len() > 10 {
                groups[groups.len() - 10].0
            } else {
                g
            };
            if prev != g {
                // A fork: rebuild the model from that group.
                model = full_state(s, prev).await;
                for (k, v) in &d {
                    match v {
                        Some(e) => model.insert(k.clone(), e.clone()),
                        None => model.remove(k),
                    };
                }
            }
            g = store_delta(s, 1, 100 + i, prev, d.clone()).await;
            groups.push((g, model.clone()));
            assert_eq!(s.state_group_delta(g).await.unwrap().unwrap().delta, d);
        }
        for (g, want) in groups.iter().step_by(37).chain(groups.last()) {
            assert_eq!(&full_state(s, *g).await, want, "group {g}");
        }
    }

    pub async fn chosen_ids_and_errors(s: &dyn StateStore) {
        let w = |id: Option<GroupId>, r: u32, content: GroupContent| GroupWrite {
            id,
            room_id: room(r),
            event_id: ev(id.unwrap_or(0) + 1),
            content,
        };
        let full = GroupContent::Full(state(&[("a", "", 1)]));
        let ids = s.store_state_groups(vec![w(Some(500), 1, full.clone())]).await.unwrap();
        assert_eq!(ids, vec![500]);
        let ids = s
            .store_state_groups(vec![w(
                Some(200),
                1,
                GroupContent::Delta {
                    prev: 500,
                    delta: delta(&[("b", "", Some(2))]),
                },
            )])
            .await
            .unwrap();
        assert_eq!(ids, vec![200]);
        assert_eq!(full_state(s, 200).await, state(&[("a", "", 1), ("b", "", 2)]));
        let next = s.store_state_groups(vec![w(None, 1, full.clone())]).await.unwrap()[0];
        assert!(next > 500, "auto ids go past chosen ones: {next}");
        let taken = s
            .store_state_groups(vec![w(Some(500), 1, full.clone())])
            .await
            .unwrap_err();
        assert!(matches!(storage_err(taken), Error::GroupIdTaken(500)));
        let zero = s
            .store_state_groups(vec![w(Some(0), 1, full.clone())])
            .await
            .unwrap_err();
        assert!(matches!(storage_err(zero), Error::ReservedGroupId));
        let unknown = s
            .store_state_groups(vec![w(
                None,
                1,
                GroupContent::Delta {
                    prev: 99_999,
                    delta: StateDelta::new(),
                },
            )])
            .await
            .unwrap_err();
        assert!(matches!(storage_err(unknown), Error::UnknownGroup(99_999)));
        let other_room = s
            .store_state_groups(vec![w(
                Some(900),
                2,
                GroupContent::Delta {
                    prev: 500,
                    delta: StateDelta::new(),
                },
            )])
            .await
            .unwrap_err();
        assert!(matches!(
            storage_err(other_room),
            Error::PrevGroupInOtherRoom {
                group: 900,
                prev: 500,
                ..
            }
        ));
        assert_eq!(s.room_groups(room(1)).await.unwrap(), vec![200, 500, next]);
        assert!(s.room_groups(room(2)).await.unwrap().is_empty());
    }

    pub async fn batch_is_atomic(s: &dyn StateStore) {
        let g1 = store_full(s, 1, 1, state(&[("a", "", 1)])).await;
        let batch = vec![
            GroupWrite {
                id: Some(10),
                room_id: room(1),
                event_id: ev(10),
                content: GroupContent::Delta {
                    prev: g1,
                    delta: delta(&[("b", "", Some(10))]),
                },
            },
            GroupWrite {
                id: Some(11),
                room_id: room(1),
                event_id: ev(11),
                content: GroupContent::Delta {
                    prev: 10,
                    delta: delta(&[("c", "", Some(11))]),
                },
            },
            GroupWrite {
                id: Some(12),
                room_id: room(1),
                event_id: ev(12),
                content: GroupContent::Delta {
                    prev: 4242,
                    delta: StateDelta::new(),
                },
            },
        ];
        assert!(s.store_state_groups(batch.clone()).await.is_err());
        assert_eq!(s.room_groups(room(1)).await.unwrap(), vec![g1]);
        let ok: Vec<GroupWrite> = batch.into_iter().take(2).collect();
        assert_eq!(s.store_state_groups(ok).await.unwrap(), vec![10, 11]);
        assert_eq!(
            full_state(s, 11).await,
            state(&[("a", "", 1), ("b", "", 10), ("c", "", 11)])
        );
    }

    pub async fn event_mappings(s: &dyn StateStore) {
        let g1 = store_full(s, 1, 1, state(&[("a", "", 1)])).await;
        let g2 = store_delta(s, 1, 2, g1, delta(&[("b", "", Some(2))])).await;
        s.set_state_groups_for_events(vec![(ev(1), g1), (ev(2), g2), (ev(3), g2)])
            .await
            .unwrap();
        let got = s.state_groups_for_events(vec![ev(1), ev(3), ev(77)]).await.unwrap();
        assert_eq!(got, BTreeMap::from([(ev(1), g1), (ev(3), g2)]));
        s.set_state_groups_for_events(vec![(ev(3), g1)]).await.unwrap();
        assert_eq!(s.state_groups_for_events(vec![ev(3)]).await.unwrap()[&ev(3)], g1);
        let bad = s.set_state_groups_for_events(vec![(ev(4), 777)]).await.unwrap_err();
        assert!(matches!(storage_err(bad), Error::UnknownGroup(777)));
        // The state at an event in one call.
        let (g, at) = s.state_view_at_event(ev(2), StateFilter::all()).await.unwrap().unwrap();
        assert_eq!(g, g2);
        assert_eq!(at.to_map(), state(&[("a", "", 1), ("b", "", 2)]));
        let (_, at) = s
            .state_view_at_event(ev(2), StateFilter::from_types([("b", None)]))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(at.to_map(), state(&[("b", "", 2)]));
        assert!(s
            .state_view_at_event(ev(77), StateFilter::all())
            .await
            .unwrap()
            .is_none());
    }

    pub async fn current_state(s: &dyn StateStore) {
        let st = state(&[
            ("m.room.create", "", 1),
            ("m.room.member", "@a:x", 2),
            ("m.room.member", "@b:x", 3),
        ]);
        s.set_current_state(room(1), st.clone()).await.unwrap();
        assert_eq!(s.current_state(room(1), StateFilter::all()).await.unwrap(), st);
        let members = s
            .current_state(room(1), StateFilter::from_types([("m.room.member", None)]))
            .await
            .unwrap();
        assert_eq!(members.len(), 2);
        let smaller = state(&[("m.room.create", "", 1)]);
        s.set_current_state(room(1), smaller.clone()).await.unwrap();
        assert_eq!(s.current_state(room(1), StateFilter::all()).await.unwrap(), smaller);
        assert!(s.current_state(room(2), StateFilter::all()).await.unwrap().is_empty());
    }

    pub async fn purge_room(s: &dyn StateStore) {
        let g1 = store_full(s, 1, 1, state(&[("a", "", 1)])).await;
        let g2 = store_delta(s, 1, 2, g1, delta(&[("b", "", Some(2))])).await;
        let h1 = store_full(s, 2, 3, state(&[("a", "", 3)])).await;
        s.set_state_groups_for_events(vec![(ev(2), g2), (ev(3), h1)])
            .await
            .unwrap();
        s.set_current_state(room(1), state(&[("a", "", 1)])).await.unwrap();
        assert_eq!(full_state(s, g2).await, state(&[("a", "", 1), ("b", "", 2)]));
        s.purge_room(room(1)).await.unwrap();
        assert!(s.room_groups(room(1)).await.unwrap().is_empty());
        assert!(s.state_for_groups(vec![g2], StateFilter::all()).await.is_err());
        assert!(s.current_state(room(1), StateFilter::all()).await.unwrap().is_empty());
        assert_eq!(
            s.state_groups_for_events(vec![ev(2), ev(3)]).await.unwrap(),
            BTreeMap::from([(ev(3), h1)])
        );
        assert_eq!(full_state(s, h1).await, state(&[("a", "", 3)]));
        let unknown = s.purge_room(room(7)).await.unwrap_err();
        assert!(matches!(storage_err(unknown), Error::UnknownRoom(_)));
        // The purged ids can be given again, and answer with their new state.
        let again = s
            .store_state_groups(vec![GroupWrite {
                id: Some(g2),
                room_id: room(1),
                event_id: ev(20),
                content: GroupContent::Full(state(&[("z", "", 20)])),
            }])
            .await
            .unwrap();
        assert_eq!(again, vec![g2]);
        assert_eq!(full_state(s, g2).await, state(&[("z", "", 20)]));
    }

    pub async fn purge_groups(s: &dyn StateStore) {
        // root -> a -> b -> c, and a -> d (fork); a second root r2 -> e.
        let root = store_full(s, 1, 1, state(&[("x", "", 1), ("y", "", 1)])).await;
        let a = store_delta(s, 1, 2, root, delta(&[("x", "", Some(2))])).await;
        let b = store_delta(s, 1, 3, a, delta(&[("y", "", None), ("z", "", Some(3))])).await;
        let c = store_delta(s, 1, 4, b, delta(&[("z", "", Some(4))])).await;
        let d = store_delta(s, 1, 5, a, delta(&[("w", "", Some(5))])).await;
        let before: Vec<(GroupId, StateMap)> = {
            let mut v = Vec::new();
            for g in [root, a, b, c, d] {
                v.push((g, full_state(s, g).await));
            }
            v
        };
        s.purge_unreferenced_groups(room(1), vec![a, b]).await.unwrap();
        assert_eq!(s.room_groups(room(1)).await.unwrap(), vec![root, c, d]);
        for (g, want) in &before {
            if [root, c, d].contains(g) {
                assert_eq!(&full_state(s, *g).await, want, "group {g} changed");
            }
        }
        let dc = s.state_group_delta(c).await.unwrap().unwrap();
        assert_eq!(dc.prev_group, root);
        assert_eq!(
            dc.delta,
            delta(&[("x", "", Some(2)), ("y", "", None), ("z", "", Some(4))])
        );
        // Deleting the root makes its children roots with the same state.
        s.purge_unreferenced_groups(room(1), vec![root]).await.unwrap();
        assert_eq!(s.state_group_delta(c).await.unwrap(), None);
        for (g, want) in &before {
            if [c, d].contains(g) {
                assert_eq!(&full_state(s, *g).await, want, "group {g} changed");
            }
        }
        let gone = s.purge_unreferenced_groups(room(1), vec![a]).await.unwrap_err();
        assert!(matches!(storage_err(gone), Error::UnknownGroup(g) if g == a));
        let other = store_full(s, 2, 9, state(&[("x", "", 9)])).await;
        let wrong = s.purge_unreferenced_groups(room(1), vec![other]).await.unwrap_err();
        assert!(matches!(storage_err(wrong), Error::GroupNotInRoom { .. }));
        // Children still build on the survivors.
        let e = store_delta(s, 1, 10, c, delta(&[("v", "", Some(10))])).await;
        assert_eq!(full_state(s, e).await.len(), full_state(s, c).await.len() + 1);
    }

    /// A small room's auth events: 1 create; 2 alice joins; 3 power
    /// levels; 4 join rules; 5 bob joins; 6 power levels again; 7 carol
    /// joins; 8 bob leaves.
    async fn auth_room(s: &dyn StateStore, r: u32) {
        let edges: [(u64, &[u64]); 8] = [
            (1, &[]),
            (2, &[1]),
            (3, &[1, 2]),
            (4, &[1, 2, 3]),
            (5, &[1, 3, 4]),
            (6, &[1, 2, 3]),
            (7, &[1, 4, 6]),
            (8, &[1, 5, 6]),
        ];
        let events = edges
            .iter()
            .map(|(e, auth)| (ev(*e), auth.iter().map(|&a| ev(a)).collect()))
            .collect();
        s.add_auth_events(room(r), events).await.unwrap();
    }

    fn evs(ns: &[u64]) -> BTreeSet<EventId> {
        ns.iter().map(|&n| ev(n)).collect()
    }

    pub async fn auth_chains(s: &dyn StateStore) {
        auth_room(s, 1).await;
        let chain = |events: &[u64], given: bool| s.auth_chain(room(1), events.iter().map(|&n| ev(n)).collect(), given);
        assert_eq!(chain(&[7], false).await.unwrap(), evs(&[1, 2, 3, 4, 6]));
        assert_eq!(chain(&[5, 7], true).await.unwrap(), evs(&[1, 2, 3, 4, 5, 6, 7]));
        // A given event in another's chain is in the answer.
        assert_eq!(chain(&[4, 7], false).await.unwrap(), evs(&[1, 2, 3, 4, 6]));
        assert_eq!(chain(&[1], false).await.unwrap(), evs(&[]));
        assert_eq!(chain(&[1], true).await.unwrap(), evs(&[1]));
        // Unknown events have no auth events; given, they are given back.
        assert_eq!(chain(&[99], false).await.unwrap(), evs(&[]));
        assert_eq!(chain(&[99, 2], true).await.unwrap(), evs(&[1, 2, 99]));
        // Another room does not see these edges.
        let other = s.auth_chain(room(2), vec![ev(7)], false).await.unwrap();
        assert!(other.is_empty());
        // Adding again the same is nothing (in any order); other auth
        // events are refused, and the whole call with them.
        auth_room(s, 1).await;
        s.add_auth_events(room(1), vec![(ev(7), vec![ev(6), ev(1), ev(4)])])
            .await
            .unwrap();
        assert_eq!(chain(&[7], false).await.unwrap(), evs(&[1, 2, 3, 4, 6]));
        let e = s
            .add_auth_events(room(1), vec![(ev(9), vec![ev(1)]), (ev(2), vec![ev(1), ev(3)])])
            .await
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Conflict, "{e}");
        assert_eq!(chain(&[9], false).await.unwrap(), evs(&[]));
        assert_eq!(chain(&[2], false).await.unwrap(), evs(&[1]));
        // An auth event may be named before it is added.
        s.add_auth_events(room(1), vec![(ev(10), vec![ev(11)])]).await.unwrap();
        assert_eq!(chain(&[10], false).await.unwrap(), evs(&[11]));
        s.add_auth_events(room(1), vec![(ev(11), vec![ev(7)])]).await.unwrap();
        assert_eq!(chain(&[10], false).await.unwrap(), evs(&[1, 2, 3, 4, 6, 7, 11]));
        // Purging the room deletes them.
        s.purge_room(room(1)).await.unwrap();
        assert_eq!(chain(&[7], false).await.unwrap(), evs(&[]));
        auth_room(s, 1).await;
        assert_eq!(chain(&[8], false).await.unwrap(), evs(&[1, 2, 3, 4, 5, 6]));
    }

    pub async fn auth_difference(s: &dyn StateStore) {
        auth_room(s, 1).await;
        let diff =
            |sets: Vec<BTreeSet<EventId>>, c: Option<ConflictedSubgraph>| s.auth_chain_difference(room(1), sets, c);
        // Full chains (the sets included): {1,2,3,4,5} and {1,2,3,4,5,6,8}.
        let d = diff(vec![evs(&[5, 3]), evs(&[8, 6])], None).await.unwrap();
        assert_eq!(d.auth_difference, evs(&[6, 8]));
        assert_eq!(d.conflicted_subgraph, None);
        // Identical sets differ in nothing; one set has no difference.
        let d = diff(vec![evs(&[7, 8]), evs(&[7, 8])], None).await.unwrap();
        assert!(d.auth_difference.is_empty());
        assert!(diff(vec![evs(&[7])], None).await.unwrap().auth_difference.is_empty());
        // An unknown event is in the chains of the sets holding it.
        let d = diff(vec![evs(&[5, 99]), evs(&[5, 98]), evs(&[5, 98])], None)
            .await
            .unwrap();
        assert_eq!(d.auth_difference, evs(&[98, 99]));
        // Three sets: {1..5}, {1,2,3,4,6,7}, {1,2}.
        let d = diff(vec![evs(&[5]), evs(&[7]), evs(&[2])], None).await.unwrap();
        assert_eq!(d.auth_difference, evs(&[3, 4, 5, 6, 7]));
        // State res v2.1: conflicted 3 and 8; below them and reaching them:
        // 3, 4, 5, 6, 8 (1 and 2 reach neither).
        let c = ConflictedSubgraph {
            conflicted: evs(&[3, 8]),
            additional_backwards_reachable: evs(&[]),
        };
        let d = diff(vec![evs(&[5, 3]), evs(&[8, 6])], Some(c.clone())).await.unwrap();
        assert_eq!(d.auth_difference, evs(&[6, 8]));
        assert_eq!(d.conflicted_subgraph, Some(evs(&[3, 4, 5, 6, 8])));
        // An additional event widens what is below: 7 reaches 3.
        let c7 = ConflictedSubgraph {
            additional_backwards_reachable: evs(&[7]),
            ..c
        };
        let d = diff(vec![evs(&[5, 3]), evs(&[8, 6, 7])], Some(c7)).await.unwrap();
        assert_eq!(d.conflicted_subgraph, Some(evs(&[3, 4, 5, 6, 7, 8])));
        // A conflicted event nothing else reaches is its own subgraph.
        let lone = ConflictedSubgraph {
            conflicted: evs(&[2, 99]),
            additional_backwards_reachable: evs(&[1]),
        };
        let d = diff(vec![evs(&[2]), evs(&[99])], Some(lone)).await.unwrap();
        assert_eq!(d.auth_difference, evs(&[1, 2, 99]));
        assert_eq!(d.conflicted_subgraph, Some(evs(&[2, 99])));
        // Another room knows none of it.
        let d = s
            .auth_chain_difference(room(3), vec![evs(&[5]), evs(&[8])], None)
            .await
            .unwrap();
        assert_eq!(d.auth_difference, evs(&[5, 8]));
    }
}
