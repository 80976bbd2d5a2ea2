//! `Engine::state_view` answers exactly what `state_for_group` answers,
//! and `state_view_at_event` finds the event's group in the same call.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;

use mxstate_engine::{EventId, GroupState, NewGroup, RoomId, StateDelta, StateFilter, StateKey, StateMap};
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
