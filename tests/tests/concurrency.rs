//! Readers see whole groups while a writer writes: every group a reader can
//! name resolves to exactly its state, never to half of a batch.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use mxstate_engine::{EventId, GroupState, NewGroup, RoomId, StateDelta, StateFilter, StateKey, StateMap};
use mxstate_tests::small_policy_options;

#[test]
fn readers_never_see_partial_batches() {
    let dir = tempfile::tempdir().unwrap();
    let engine = Arc::new(mxstate_rocks::open(&dir.path().join("db"), small_policy_options()).unwrap());
    let room = RoomId::parse("!c:x").unwrap();
    let ev = |n: u64| EventId::parse(format!("$e{n}")).unwrap();
    let root_state: StateMap = [(StateKey::new("m.room.create", "").unwrap(), ev(0))]
        .into_iter()
        .collect();
    let e0 = ev(1);
    let root = engine
        .store_group(NewGroup {
            id: Some(1),
            room_id: &room,
            event_id: &e0,
            state: GroupState::Full(&root_state),
        })
        .unwrap();
    assert_eq!(root, 1);
    // Group g (> 1) holds members @u2..=@ug: g entries with the create event.
    let published = Arc::new(AtomicU64::new(1));
    let readers: Vec<_> = (0..2)
        .map(|r| {
            let (engine, published) = (engine.clone(), published.clone());
            std::thread::spawn(move || {
                let mut checks = 0u64;
                while published.load(Ordering::Acquire) < 400 {
                    let g = published.load(Ordering::Acquire);
                    // The latest group and a batch neighbour not yet published.
                    for probe in [g, g + 1, g + 7] {
                        match engine.state_for_group(probe, &StateFilter::all()) {
                            Ok(s) => {
                                assert_eq!(s.len() as u64, probe, "reader {r}: group {probe} is partial");
                                let members = engine
                                    .state_for_group(probe, &StateFilter::from_types([("m.room.member", None)]))
                                    .unwrap();
                                assert_eq!(members.len() as u64, probe - 1);
                                checks += 1;
                            }
                            Err(mxstate_engine::Error::UnknownGroup(_)) => assert!(probe > g),
                            Err(e) => panic!("reader {r}: {e}"),
                        }
                    }
                }
                checks
            })
        })
        .collect();
    let mut next = 2u64;
    while next <= 400 {
        // Batches of 8 groups, each a delta on the one before.
        let items: Vec<(u64, EventId, StateDelta)> = (next..next + 8)
            .map(|g| {
                let d: StateDelta = [(StateKey::new("m.room.member", format!("@u{g}:x")).unwrap(), Some(ev(g)))].into();
                (g, ev(10_000 + g), d)
            })
            .collect();
        let batch: Vec<NewGroup<'_>> = items
            .iter()
            .map(|(g, e, d)| NewGroup {
                id: Some(*g),
                room_id: &room,
                event_id: e,
                state: GroupState::Delta { prev: g - 1, delta: d },
            })
            .collect();
        engine.store_groups(&batch).unwrap();
        next += 8;
        published.store(next - 1, Ordering::Release);
    }
    let checks: u64 = readers.into_iter().map(|h| h.join().unwrap()).sum();
    assert!(checks > 0);
}
