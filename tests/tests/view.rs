//! `Engine::state_view` answers exactly what `state_for_group` answers,
//! and `state_view_at_event` finds the event's group in the same call.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;
use std::sync::Arc;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use mxstate_engine::{
    Engine, EngineOptions, EventId, GroupId, GroupState, MemKv, NewGroup, RoomId, StateDelta, StateFilter, StateKey,
    StateMap, StateView,
};
use mxstate_tests::small_policy_options;

#[test]
fn view_equals_map_for_every_group_and_filter() {
    let dir = tempfile::tempdir().unwrap();
    let engine = mxstate_rocks::open(&dir.path().join("db"), small_policy_options()).unwrap();
    let room = RoomId::parse("!v:x").unwrap();
    let ev = |n: u64| EventId::parse(format!("$e{n}")).unwrap();
    let mut full = StateMap::default();
    for i in 0..200u64 {
        full.insert(StateKey::new("m.room.member", format!("@u{i}:x")).unwrap(), ev(i));
    }
    full.insert(StateKey::new("m.room.power_levels", "").unwrap(), ev(1000));
    let e0 = ev(5000);
    let mut g = engine
        .store_group(NewGroup {
            id: None,
            room_id: &room,
            event_id: &e0,
            state: GroupState::Full(&full),
        })
        .unwrap();
    let mut groups = vec![g];
    for i in 0..120u64 {
        let k = if i % 5 == 0 {
            StateKey::new("m.room.name", "").unwrap()
        } else {
            StateKey::new("m.room.member", format!("@u{}:x", i * 7 % 230)).unwrap()
        };
        let d: StateDelta = [(k, if i % 11 == 3 { None } else { Some(ev(6000 + i)) })].into();
        let e = ev(7000 + i);
        g = engine
            .store_group(NewGroup {
                id: None,
                room_id: &room,
                event_id: &e,
                state: GroupState::Delta { prev: g, delta: &d },
            })
            .unwrap();
        groups.push(g);
    }
    let filters = [
        StateFilter::all(),
        StateFilter::all_except_types(["m.room.member"]),
        StateFilter::from_types([("m.room.member", None)]),
        StateFilter::from_types([("m.room.member", Some("@u3:x"))]).with_include_others(true),
        StateFilter::from_types([("m.room.power_levels", Some(""))]),
    ];
    for &g in &groups {
        for f in &filters {
            let map = engine.state_for_group(g, f).unwrap();
            let view = engine.state_view(g, f).unwrap();
            let a: BTreeSet<(String, String, String)> = map
                .iter()
                .map(|(k, e)| {
                    (
                        k.event_type().to_owned(),
                        k.state_key().to_owned(),
                        e.as_str().to_owned(),
                    )
                })
                .collect();
            let b: Vec<(String, String, String)> = view
                .iter()
                .map(|(t, k, e)| (t.to_owned(), k.to_owned(), e.to_owned()))
                .collect();
            assert_eq!(b.len(), view.len(), "group {g}: len");
            assert_eq!(a, b.into_iter().collect::<BTreeSet<_>>(), "group {g} filter {f:?}");
            assert_eq!(view.to_map(), map);
            // The same entries, walked part by part; whole snapshot sections
            // carry their identity.
            let mut c: Vec<(String, String, String)> = Vec::new();
            for part in view.parts() {
                let table = part.table();
                if table.id().is_some() {
                    assert!(table.single_type().is_some(), "a section has one type");
                }
                for i in part.visible() {
                    let (t, k, e) = table.entry(i).unwrap();
                    assert!(!e.is_empty(), "a visible entry has an event");
                    c.push((t.to_owned(), k.to_owned(), e.to_owned()));
                }
            }
            assert_eq!(c.len(), view.len(), "group {g}: sections and loose entries");
            assert_eq!(
                a,
                c.into_iter().collect::<BTreeSet<_>>(),
                "group {g} filter {f:?}: sections"
            );
        }
    }
    let e = ev(7000 + 77);
    engine.set_event_groups(&[(e.clone(), groups[78])]).unwrap();
    let (g, view) = engine.state_view_at_event(&e, &StateFilter::all()).unwrap().unwrap();
    assert_eq!(g, groups[78]);
    assert_eq!(view.to_map(), engine.state_for_group(g, &StateFilter::all()).unwrap());
    assert!(engine
        .state_view_at_event(&ev(99_999), &StateFilter::all())
        .unwrap()
        .is_none());
}

/// A room version 3+ event id: `$` and the unpadded base64 of 32 bytes.
fn hash_event(n: u64) -> EventId {
    let mut x = n.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ 0xD1B5_4A32_D192_ED03;
    let mut hash = [0u8; 32];
    for chunk in hash.chunks_mut(8) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        chunk.copy_from_slice(&x.to_le_bytes());
    }
    EventId::parse(format!("${}", URL_SAFE_NO_PAD.encode(hash))).unwrap()
}

fn entries(view: &StateView) -> BTreeSet<(String, String, String)> {
    let v: Vec<_> = view
        .iter()
        .map(|(t, k, e)| (t.to_owned(), k.to_owned(), e.to_owned()))
        .collect();
    assert_eq!(v.len(), view.len(), "a view's length is its entries'");
    v.into_iter().collect()
}

fn entries_of(map: &StateMap) -> BTreeSet<(String, String, String)> {
    map.iter()
        .map(|(k, e)| {
            (
                k.event_type().to_owned(),
                k.state_key().to_owned(),
                e.as_str().to_owned(),
            )
        })
        .collect()
}

/// A state large enough to be read on two threads when nothing is cached
/// (over 16,384 texts), whose snapshot sections' event ids are out of nid
/// order (members re-joined) and some of whose strings are not packed into
/// blocks yet: every group read cold, through a fresh engine, equals the
/// test's own model of it.
fn large_cold_states(open: &dyn Fn() -> Engine) {
    let room = RoomId::parse("!big:x").unwrap();
    let member = |i: u64| StateKey::new("m.room.member", format!("@user{i}:example.org")).unwrap();
    let mut model = StateMap::default();
    model.insert(StateKey::new("m.room.create", "").unwrap(), hash_event(1));
    for i in 0..9_000u64 {
        model.insert(member(i), hash_event(10 + i));
    }
    let mut groups: Vec<(GroupId, StateMap)> = Vec::new();
    {
        let engine = open();
        let g = engine
            .store_group(NewGroup {
                id: None,
                room_id: &room,
                event_id: &hash_event(1),
                state: GroupState::Full(&model),
            })
            .unwrap();
        groups.push((g, model.clone()));
        let mut next = 100_000u64;
        for step in 0..60u64 {
            // Re-joins of old members (new event nids, out of the order of
            // their state keys), a few new members, a leave.
            let mut d = StateDelta::default();
            for j in 0..40u64 {
                next += 1;
                d.insert(member((step * 977 + j * 131) % 9_000), Some(hash_event(next)));
            }
            next += 1;
            d.insert(member(9_000 + step), Some(hash_event(next)));
            d.insert(member((step * 31) % 9_000 + 1), None);
            for (k, v) in &d {
                match v {
                    Some(e) => model.insert(k.clone(), e.clone()),
                    None => model.remove(k),
                };
            }
            next += 1;
            let g = engine
                .store_group(NewGroup {
                    id: None,
                    room_id: &room,
                    event_id: &hash_event(next),
                    state: GroupState::Delta {
                        prev: groups.last().unwrap().0,
                        delta: &d,
                    },
                })
                .unwrap();
            groups.push((g, model.clone()));
        }
    }
    for (g, want) in groups.iter().step_by(7).chain(groups.last()) {
        // Nothing cached: each read is cold.
        let engine = open();
        let view = engine.state_view(*g, &StateFilter::all()).unwrap();
        assert_eq!(entries(&view), entries_of(want), "group {g}, cold");
        assert_eq!(view.to_map(), *want, "group {g}, cold, as a map");
        let again = engine.state_view(*g, &StateFilter::all()).unwrap();
        assert_eq!(entries(&again), entries_of(want), "group {g}, warm");
    }
}

#[test]
fn large_cold_states_on_rocksdb() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    let opts = || EngineOptions {
        cache_bytes: 64 << 20,
        ..small_policy_options()
    };
    large_cold_states(&|| mxstate_rocks::open(&path, opts()).unwrap());
}

#[test]
fn large_cold_states_in_memory() {
    let kv = Arc::new(MemKv::new());
    large_cold_states(&|| Engine::with_kv(Box::new(kv.clone()), small_policy_options()).unwrap());
}
