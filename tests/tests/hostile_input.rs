//! Hostile input: a 1 MiB state key and event type, 100,000 keys in one
//! delta, 100,000 groups in one call, group ids and counters near
//! `u64::MAX`, NUL bytes in room ids, event ids, types and state keys,
//! empty strings and empty calls.
//!
//! Each case either works, and then reads back exactly (on the in-memory
//! store, and on RocksDB before and after reopening it), or fails with a
//! typed error of the expected kind having written nothing: the failed
//! groups do not exist, no string was interned, the next group id is the
//! one it was, and `check()` finds nothing.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;

use mxstate_engine::{
    Engine, EngineOptions, ErrorKind, EventId, GroupId, GroupState, MemKv, NewGroup, RoomId, StateDelta, StateFilter,
    StateKey, StateMap,
};
use mxstate_tests::{rocks_store, small_policy_options};

fn ev(n: u64) -> EventId {
    EventId::parse(format!("$e{n}")).unwrap()
}

fn room(name: &str) -> RoomId {
    RoomId::parse(name).unwrap()
}

fn sk(t: &str, s: &str) -> StateKey {
    StateKey::new(t, s).unwrap()
}

fn sorted(m: StateMap) -> Vec<(StateKey, EventId)> {
    let mut v: Vec<_> = m.into_iter().collect();
    v.sort();
    v
}

fn state(e: &Engine, g: GroupId) -> Vec<(StateKey, EventId)> {
    sorted(e.state_for_group(g, &StateFilter::all()).unwrap())
}

fn full(e: &Engine, id: Option<GroupId>, r: &RoomId, event: &EventId, s: &StateMap) -> mxstate_engine::Result<GroupId> {
    e.store_group(NewGroup {
        id,
        room_id: r,
        event_id: event,
        state: GroupState::Full(s),
    })
}

fn delta(
    e: &Engine,
    id: Option<GroupId>,
    r: &RoomId,
    event: &EventId,
    prev: GroupId,
    d: &StateDelta,
) -> mxstate_engine::Result<GroupId> {
    e.store_group(NewGroup {
        id,
        room_id: r,
        event_id: event,
        state: GroupState::Delta { prev, delta: d },
    })
}

/// Asserts `check()` finds nothing.
fn assert_clean(e: &Engine, context: &str) {
    let report = e.check().unwrap();
    if report.problems.iter().any(|p| p.invariant == "unimplemented") {
        return;
    }
    assert!(report.is_clean(), "{context}: {:?}", report.problems);
}

/// What a failed call must leave alone: interned-string counters, rooms,
/// the groups.
#[derive(Debug, PartialEq, Eq)]
struct Footprint {
    events: u64,
    types: u64,
    skeys: u64,
    rooms: Vec<RoomId>,
    groups: Vec<GroupId>,
}

fn footprint(e: &Engine) -> Footprint {
    let s = e.stats().unwrap();
    let mut groups = Vec::new();
    e.for_each_group(&mut |g| {
        groups.push(g);
        Ok(())
    })
    .unwrap();
    Footprint {
        events: s.events,
        types: s.event_types,
        skeys: s.state_keys,
        rooms: e.rooms().unwrap(),
        groups,
    }
}

/// Runs `case` on a fresh engine over the in-memory store, and over
/// RocksDB; `verify` reads back what `case` returned, on RocksDB also after
/// reopening. `check()` must be clean each time.
fn on_memory_and_rocks<T>(opts: EngineOptions, case: impl Fn(&Engine) -> T, verify: impl Fn(&Engine, &T)) {
    let mem = Engine::with_kv(Box::new(MemKv::new()), opts.clone()).unwrap();
    let t = case(&mem);
    verify(&mem, &t);
    assert_clean(&mem, "in memory");
    drop(mem);

    let (dir, store) = rocks_store(opts.clone());
    let engine = store.engine().clone();
    drop(store);
    let t = case(&engine);
    verify(&engine, &t);
    assert_clean(&engine, "on RocksDB");
    drop(engine);
    let engine = reopen(&dir.path().join("db"), opts);
    verify(&engine, &t);
    assert_clean(&engine, "on RocksDB, reopened");
}

fn reopen(path: &Path, opts: EngineOptions) -> Engine {
    mxstate_rocks::open(path, opts).unwrap()
}

#[test]
fn a_one_mebibyte_state_key_and_type() {
    let big_key = "k".repeat(1 << 20);
    let big_type = format!("t{}", "y".repeat((1 << 20) - 1));
    on_memory_and_rocks(
        small_policy_options(),
        |e| {
            let r = room("!big:x");
            let root: StateMap = [(sk("m.room.create", ""), ev(0)), (sk("m.room.member", &big_key), ev(1))]
                .into_iter()
                .collect();
            let g1 = full(e, None, &r, &ev(2), &root).unwrap();
            let d: StateDelta = [
                (sk(&big_type, ""), Some(ev(3))),
                (sk(&big_type, &big_key), Some(ev(4))),
                (sk("m.room.member", "@small:x"), Some(ev(5))),
            ]
            .into();
            let g2 = delta(e, None, &r, &ev(6), g1, &d).unwrap();
            let removal: StateDelta = [(sk("m.room.member", &big_key), None)].into();
            let g3 = delta(e, None, &r, &ev(7), g2, &removal).unwrap();
            e.set_current_state(&r, &root).unwrap();
            e.set_event_groups(&[(ev(6), g2)]).unwrap();
            (g1, g2, g3)
        },
        |e, &(g1, g2, g3)| {
            let mut want1 = vec![(sk("m.room.create", ""), ev(0)), (sk("m.room.member", &big_key), ev(1))];
            want1.sort();
            assert_eq!(state(e, g1), want1);
            let mut want2 = want1.clone();
            want2.extend([
                (sk(&big_type, ""), ev(3)),
                (sk(&big_type, &big_key), ev(4)),
                (sk("m.room.member", "@small:x"), ev(5)),
            ]);
            want2.sort();
            assert_eq!(state(e, g2), want2);
            let want3: Vec<_> = want2
                .iter()
                .filter(|(k, _)| *k != sk("m.room.member", &big_key))
                .cloned()
                .collect();
            assert_eq!(state(e, g3), want3);
            // Point lookups by the big key and type.
            let f = StateFilter::from_types([("m.room.member", Some(big_key.as_str()))]);
            assert_eq!(
                sorted(e.state_for_group(g2, &f).unwrap()),
                vec![(sk("m.room.member", &big_key), ev(1))]
            );
            assert!(e.state_for_group(g3, &f).unwrap().is_empty());
            let f = StateFilter::from_types([(big_type.as_str(), None)]);
            assert_eq!(e.state_for_group(g2, &f).unwrap().len(), 2);
            let d = e.state_group_delta(g2).unwrap().unwrap();
            assert_eq!(d.prev_group, g1);
            assert_eq!(d.delta.len(), 3);
            assert_eq!(d.delta[&sk(&big_type, &big_key)], Some(ev(4)));
            assert_eq!(
                sorted(e.current_state(&room("!big:x"), &StateFilter::all()).unwrap()),
                want1
            );
            assert_eq!(e.event_groups(&[ev(6)]).unwrap()[&ev(6)], g2);
        },
    );
}

#[test]
fn a_delta_of_100k_keys() {
    const N: u64 = 100_000;
    let member = |i: u64| sk("m.room.member", &format!("@user{i}:example.org"));
    on_memory_and_rocks(
        EngineOptions::default(),
        |e| {
            let r = room("!wide:x");
            let root: StateMap = [(sk("m.room.create", ""), ev(0))].into_iter().collect();
            let g1 = full(e, None, &r, &ev(1), &root).unwrap();
            let d: StateDelta = (0..N).map(|i| (member(i), Some(ev(10 + i)))).collect();
            let g2 = delta(e, None, &r, &ev(2), g1, &d).unwrap();
            let one: StateDelta = [(member(7), Some(ev(3)))].into();
            let g3 = delta(e, None, &r, &ev(4), g2, &one).unwrap();
            // Removing every one of them again, in one delta.
            let gone: StateDelta = (0..N).map(|i| (member(i), None)).collect();
            let g4 = delta(e, None, &r, &ev(5), g3, &gone).unwrap();
            // Deleting the wide group re-bases its child on the root.
            e.purge_groups(&r, &[g2]).unwrap();
            (g1, g2, g3, g4)
        },
        |e, &(g1, g2, g3, g4)| {
            assert!(!e.has_group(g2).unwrap());
            let s3 = e.state_for_group(g3, &StateFilter::all()).unwrap();
            assert_eq!(s3.len() as u64, N + 1);
            for i in [0, 7, 99_999] {
                let want = if i == 7 { ev(3) } else { ev(10 + i) };
                assert_eq!(s3[&member(i)], want, "member {i}");
            }
            let k = member(54_321);
            let f = StateFilter::from_types([("m.room.member", Some(k.state_key()))]);
            assert_eq!(sorted(e.state_for_group(g3, &f).unwrap()), vec![(k, ev(10 + 54_321))]);
            // g3 was re-based: its delta against the root is the wide one plus its own.
            let d = e.state_group_delta(g3).unwrap().unwrap();
            assert_eq!(d.prev_group, g1);
            assert_eq!(d.delta.len() as u64, N);
            assert_eq!(state(e, g4), vec![(sk("m.room.create", ""), ev(0))]);
            assert_eq!(e.state_group_delta(g4).unwrap().unwrap().delta.len() as u64, N);
        },
    );
}

#[test]
fn a_call_storing_100k_groups() {
    const N: usize = 100_000;
    let member = |i: usize| sk("m.room.member", &format!("@u{i}:x"));
    on_memory_and_rocks(
        EngineOptions::default(),
        |e| {
            let r = room("!long:x");
            let root: StateMap = [(sk("m.room.create", ""), ev(0))].into_iter().collect();
            let g1 = full(e, None, &r, &ev(1), &root).unwrap();
            let deltas: Vec<StateDelta> = (0..N)
                .map(|i| [(member(i % 1000), Some(ev(i as u64 + 10)))].into())
                .collect();
            let events: Vec<EventId> = (0..N).map(|i| ev(i as u64 + 1_000_000)).collect();
            let mut batch: Vec<NewGroup<'_>> = deltas
                .iter()
                .zip(&events)
                .enumerate()
                .map(|(i, (d, event))| NewGroup {
                    id: None,
                    room_id: &r,
                    event_id: event,
                    state: if i == 0 {
                        GroupState::Delta { prev: g1, delta: d }
                    } else {
                        GroupState::DeltaOnPrevious { delta: d }
                    },
                })
                .collect();
            // The same call with a bad last group writes nothing.
            let before = footprint(e);
            let bad_event = ev(99);
            batch.push(NewGroup {
                id: Some(g1),
                room_id: &r,
                event_id: &bad_event,
                state: GroupState::Full(&root),
            });
            let err = e.store_groups(&batch).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::Conflict, "{err}");
            assert_eq!(footprint(e), before, "a failed call of 100k groups left something");
            batch.pop();
            let ids = e.store_groups(&batch).unwrap();
            assert_eq!(ids.len(), N);
            assert_eq!(ids[0], g1 + 1);
            assert!(ids.windows(2).all(|w| w[1] == w[0] + 1));
            // And as many event mappings in one call.
            let pairs: Vec<(EventId, GroupId)> = events.iter().cloned().zip(ids.iter().copied()).collect();
            e.set_event_groups(&pairs).unwrap();
            ids
        },
        |e, ids| {
            assert_eq!(e.room_groups(&room("!long:x")).unwrap().len(), N + 1);
            for i in [0, 1, 999, 1000, 54_321, N - 1] {
                let s = e.state_for_group(ids[i], &StateFilter::all()).unwrap();
                assert_eq!(s.len(), 1 + (i + 1).min(1000), "group #{i}");
                assert_eq!(s[&member(i % 1000)], ev(i as u64 + 10));
                if i >= 1000 {
                    assert_eq!(s[&member((i + 1) % 1000)], ev(i as u64 + 10 - 999));
                }
                let d = e.state_group_delta(ids[i]).unwrap().unwrap();
                assert_eq!(d.prev_group, ids[i] - 1);
            }
            let sample: Vec<EventId> = [0u64, 77_777, N as u64 - 1].iter().map(|i| ev(i + 1_000_000)).collect();
            let got = e.event_groups(&sample).unwrap();
            assert_eq!(got.len(), 3);
            assert_eq!(got[&ev(1_000_000 + 77_777)], ids[77_777]);
        },
    );
}

/// Ids and counters at the top of `u64`: a group id that would leave the
/// counter nowhere to go fails typed and writes nothing; the ids below it
/// work (prev near the top too), and then the counter has no id left to
/// give while explicit ids still work. (Low and high ids stay in rooms of
/// their own: see `a_prev_more_than_i64_max_away`.)
#[test]
fn group_ids_near_the_top_of_u64() {
    const TOP: u64 = u64::MAX;
    on_memory_and_rocks(
        small_policy_options(),
        |e| {
            let (low_room, top_room) = (room("!low:x"), room("!top:x"));
            let root: StateMap = [(sk("m.room.create", ""), ev(0))].into_iter().collect();
            let g1 = full(e, None, &low_room, &ev(1), &root).unwrap();
            assert_eq!(g1, 1);
            let d: StateDelta = [(sk("m.room.name", ""), Some(ev(2)))].into();

            // u64::MAX as an id: the counter would have to move past it.
            let before = footprint(e);
            let err = full(e, Some(TOP), &top_room, &ev(3), &root).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::Capacity, "{err}");
            let err = delta(e, Some(TOP), &low_room, &ev(3), g1, &d).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::Capacity, "{err}");
            assert_eq!(footprint(e), before, "a refused id left something");
            assert!(!e.has_group(TOP).unwrap());
            let g2 = delta(e, None, &low_room, &ev(4), g1, &d).unwrap();
            assert_eq!(g2, 2, "the counter moved");

            // The ids just below the top work, prev near the top too.
            let high = full(e, Some(TOP - 1), &top_room, &ev(5), &root).unwrap();
            let high2 = delta(e, Some(TOP - 3), &top_room, &ev(6), high, &d).unwrap();
            let d2: StateDelta = [(sk("m.room.topic", ""), Some(ev(7)))].into();
            let high3 = delta(e, Some(TOP - 2), &top_room, &ev(8), high2, &d2).unwrap();
            let many: Vec<StateDelta> = (0..20)
                .map(|i| [(sk("m.room.member", &format!("@u{i}:x")), Some(ev(100 + i)))].into())
                .collect();
            let events: Vec<EventId> = (0..20).map(|i| ev(200 + i)).collect();
            let chain: Vec<NewGroup<'_>> = many
                .iter()
                .zip(&events)
                .enumerate()
                .map(|(i, (d, event))| NewGroup {
                    id: Some(TOP - 100 + i as u64),
                    room_id: &top_room,
                    event_id: event,
                    state: if i == 0 {
                        GroupState::Delta { prev: high3, delta: d }
                    } else {
                        GroupState::DeltaOnPrevious { delta: d }
                    },
                })
                .collect();
            let chain_ids = e.store_groups(&chain).unwrap();

            // Now the counter stands at u64::MAX: no id is left to give.
            let before = footprint(e);
            let err = delta(e, None, &top_room, &ev(9), high, &d2).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::Capacity, "{err}");
            let err = full(e, None, &room("!elsewhere:x"), &ev(9), &root).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::Capacity, "{err}");
            assert_eq!(footprint(e), before, "a failed store left something");
            // Explicit ids still work.
            let g4 = delta(e, Some(4), &low_room, &ev(10), g2, &d2).unwrap();
            e.set_event_groups(&[(ev(11), high), (ev(12), g4)]).unwrap();
            e.purge_groups(&top_room, &[high2]).unwrap();
            (high, high3, g4, chain_ids)
        },
        |e, (high, high3, g4, chain_ids)| {
            let name = (sk("m.room.name", ""), ev(2));
            let topic = (sk("m.room.topic", ""), ev(7));
            let create = (sk("m.room.create", ""), ev(0));
            assert_eq!(state(e, *high), vec![create.clone()]);
            let mut want = vec![create, name, topic];
            want.sort();
            assert_eq!(state(e, *high3), want);
            assert_eq!(state(e, *g4), want);
            let d = e.state_group_delta(*high3).unwrap().unwrap();
            assert_eq!(d.prev_group, *high, "prev after purging the group between");
            assert_eq!(d.delta.len(), 2);
            let last = *chain_ids.last().unwrap();
            assert_eq!(last, TOP - 81);
            assert_eq!(state(e, last).len(), 3 + 20);
            assert_eq!(e.event_groups(&[ev(11)]).unwrap()[&ev(11)], *high);
            assert_eq!(e.max_group().unwrap(), Some(TOP - 1));
            let mut top: Vec<GroupId> = chain_ids.clone();
            top.extend([TOP - 2, TOP - 1]);
            assert_eq!(e.room_groups(&room("!top:x")).unwrap(), top);
            assert_eq!(e.room_groups(&room("!low:x")).unwrap(), vec![1, 2, 4]);
            // Still no id left after reopening.
            let root: StateMap = [(sk("m.room.create", ""), ev(0))].into_iter().collect();
            let err = full(e, None, &room("!low:x"), &ev(13), &root).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::Capacity, "{err}");
        },
    );
}

/// A group whose prev or base is more than `i64::MAX` ids away (a low id
/// on a group near the top, or the other way round; also a full state
/// stored as a delta on the room's latest group, and a purge re-basing a
/// child across the gap). This test found that such a record was written
/// (`zigzag(id.wrapping_sub(prev) as i64)`) but did not decode (the reader
/// added with `checked_add_signed`): reads from the store failed with a
/// `Corrupt` error and `check()` reported "record decodes". Ids are now
/// decoded modulo 2^64, as they are encoded.
#[test]
fn a_prev_more_than_i64_max_away() {
    const TOP: u64 = u64::MAX;
    on_memory_and_rocks(
        small_policy_options(),
        |e| {
            let r = room("!far:x");
            let root: StateMap = [(sk("m.room.create", ""), ev(0))].into_iter().collect();
            let high = full(e, Some(TOP - 1), &r, &ev(1), &root).unwrap();
            let d: StateDelta = [(sk("m.room.name", ""), Some(ev(2)))].into();
            let low = delta(e, Some(5), &r, &ev(3), high, &d).unwrap();
            let d2: StateDelta = [(sk("m.room.topic", ""), Some(ev(4)))].into();
            let high2 = delta(e, Some(TOP - 3), &r, &ev(5), low, &d2).unwrap();
            // A full state close to the room's latest group is stored as a delta on it.
            let mut s = root.clone();
            s.insert(sk("m.room.name", ""), ev(6));
            let low2 = full(e, Some(7), &r, &ev(7), &s).unwrap();
            let child = delta(e, Some(8), &r, &ev(8), low2, &d2).unwrap();
            e.purge_groups(&r, &[low2]).unwrap();
            (high, low, high2, child)
        },
        |e, &(high, low, high2, child)| {
            assert_eq!(e.state_group_delta(low).unwrap().unwrap().prev_group, high);
            assert_eq!(e.state_group_delta(high2).unwrap().unwrap().prev_group, low);
            assert_eq!(state(e, high2).len(), 3);
            assert_eq!(state(e, child).len(), 3);
            assert_eq!(e.state_group_delta(child).unwrap(), None, "its root was purged");
            let mut n = 0;
            e.for_each_group(&mut |_| {
                n += 1;
                Ok(())
            })
            .unwrap();
            assert_eq!(n, 4);
        },
    );
}

/// NUL bytes: refused in room and event ids (typed), kept exactly in
/// types and state keys (including keys that differ only after a NUL).
#[test]
fn nul_bytes() {
    for bad in ["!a\0b:x", "!ab:x\0", "!\0"] {
        let err = RoomId::parse(bad).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput, "{bad:?}");
    }
    for bad in ["$a\0b", "$\0", "$ab:x\0"] {
        let err = EventId::parse(bad).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput, "{bad:?}");
    }
    let keys = [
        sk("m.room.member", "a"),
        sk("m.room.member", "a\0"),
        sk("m.room.member", "a\0b"),
        sk("m.room.member", "\0"),
        sk("m.room.member\0", "a"),
        sk("\0", ""),
        sk("\0\0", "\0\0"),
        sk("m.room\0member", "@u:x"),
    ];
    on_memory_and_rocks(
        small_policy_options(),
        |e| {
            let r = room("!nul:x");
            let st: StateMap = keys
                .iter()
                .enumerate()
                .map(|(i, k)| (k.clone(), ev(i as u64)))
                .collect();
            let g1 = full(e, None, &r, &ev(100), &st).unwrap();
            let d: StateDelta = [(keys[1].clone(), None), (keys[5].clone(), Some(ev(200)))].into();
            let g2 = delta(e, None, &r, &ev(101), g1, &d).unwrap();
            e.set_current_state(&r, &st).unwrap();
            (g1, g2)
        },
        |e, &(g1, g2)| {
            let mut want: Vec<_> = keys
                .iter()
                .enumerate()
                .map(|(i, k)| (k.clone(), ev(i as u64)))
                .collect();
            want.sort();
            assert_eq!(state(e, g1), want);
            let f = StateFilter::from_types([("m.room.member", Some("a\0"))]);
            assert_eq!(
                sorted(e.state_for_group(g1, &f).unwrap()),
                vec![(keys[1].clone(), ev(1))]
            );
            assert!(e.state_for_group(g2, &f).unwrap().is_empty());
            let f = StateFilter::from_types([("\0", None)]);
            assert_eq!(
                sorted(e.state_for_group(g2, &f).unwrap()),
                vec![(keys[5].clone(), ev(200))]
            );
            let f = StateFilter::from_types([("m.room.member", None)]);
            assert_eq!(e.state_for_group(g1, &f).unwrap().len(), 4);
            assert_eq!(e.state_for_group(g2, &f).unwrap().len(), 3);
            assert_eq!(e.state_group_delta(g2).unwrap().unwrap().delta.len(), 2);
            assert_eq!(
                sorted(e.current_state(&room("!nul:x"), &StateFilter::all()).unwrap()),
                want
            );
        },
    );
}

/// Empty strings and empty calls: an empty type is refused (typed), an
/// empty state key, state, delta or call works and changes nothing it
/// should not.
#[test]
fn empty_strings_and_empty_calls() {
    let err = StateKey::new("", "x").unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    for bad in ["", "!", "!:x", "!a:", "a"] {
        assert_eq!(
            RoomId::parse(bad).unwrap_err().kind(),
            ErrorKind::InvalidInput,
            "{bad:?}"
        );
    }
    for bad in ["", "$", "$:x", "$a:", "e"] {
        assert_eq!(
            EventId::parse(bad).unwrap_err().kind(),
            ErrorKind::InvalidInput,
            "{bad:?}"
        );
    }
    on_memory_and_rocks(
        small_policy_options(),
        |e| {
            let r = room("!empty:x");
            let before = footprint(e);
            assert_eq!(e.store_groups(&[]).unwrap(), Vec::<GroupId>::new());
            e.set_event_groups(&[]).unwrap();
            assert!(e.state_for_groups(&[], &StateFilter::all()).unwrap().is_empty());
            assert!(e.event_groups(&[]).unwrap().is_empty());
            assert!(e.current_state(&r, &StateFilter::all()).unwrap().is_empty());
            assert_eq!(
                e.purge_room(&r).unwrap_err().kind(),
                ErrorKind::NotFound,
                "purging an unknown room"
            );
            assert_eq!(footprint(e), before, "empty calls left something");
            let g1 = full(e, None, &r, &ev(1), &StateMap::default()).unwrap();
            assert_eq!(g1, 1);
            let g2 = delta(e, None, &r, &ev(2), g1, &StateDelta::new()).unwrap();
            let d: StateDelta = [(sk("m.room.name", ""), Some(ev(3)))].into();
            let g3 = delta(e, None, &r, &ev(4), g2, &d).unwrap();
            // Removing a key that is not there.
            let d: StateDelta = [(sk("m.room.topic", ""), None)].into();
            let g4 = delta(e, None, &r, &ev(5), g3, &d).unwrap();
            e.purge_groups(&r, &[]).unwrap();
            e.set_current_state(&r, &StateMap::default()).unwrap();
            (g1, g2, g3, g4)
        },
        |e, &(g1, g2, g3, g4)| {
            assert!(state(e, g1).is_empty());
            assert!(state(e, g2).is_empty());
            let d = e.state_group_delta(g2).unwrap().unwrap();
            assert_eq!((d.prev_group, d.delta.len()), (g1, 0));
            assert_eq!(state(e, g3), vec![(sk("m.room.name", ""), ev(3))]);
            assert_eq!(state(e, g4), vec![(sk("m.room.name", ""), ev(3))]);
            let d = e.state_group_delta(g4).unwrap().unwrap();
            assert_eq!(d.delta[&sk("m.room.topic", "")], None);
            assert_eq!(e.room_groups(&room("!empty:x")).unwrap(), vec![g1, g2, g3, g4]);
            assert!(e
                .state_for_group(g3, &StateFilter::from_types([("m.room.name", Some(""))]))
                .unwrap()
                .contains_key(&sk("m.room.name", "")));
            assert!(e
                .current_state(&room("!empty:x"), &StateFilter::all())
                .unwrap()
                .is_empty());
            assert!(e.rooms().unwrap().contains(&room("!empty:x")));
        },
    );
}
