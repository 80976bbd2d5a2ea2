//! Event mappings keyed by stored event ids (format 4): hash ids that
//! share their first bytes share one reverse entry, and moving, remapping
//! and purging keep both indexes exact.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::sync::Arc;

use base64::engine::general_purpose::{STANDARD_NO_PAD, URL_SAFE_NO_PAD};
use base64::Engine as _;

use mxstate_engine::kv::{Cf, KvStore};
use mxstate_engine::{
    Engine, EngineOptions, EventId, GroupId, GroupState, MemKv, NewGroup, RoomId, StateKey, StateMap,
};

/// A room-version-4+ event id whose hash starts with `AA BB CC DD`, then `n`.
fn colliding(n: u8) -> EventId {
    let mut hash = [n; 32];
    hash[..4].copy_from_slice(&[0xaa, 0xbb, 0xcc, 0xdd]);
    EventId::parse(format!("${}", URL_SAFE_NO_PAD.encode(hash))).unwrap()
}

fn clean(e: &Engine) {
    let report = e.check().unwrap();
    assert!(report.problems.is_empty(), "{:?}", report.problems);
}

fn reverse_entries(kv: &MemKv, g: GroupId) -> usize {
    let mut n = 0;
    kv.scan_prefix(Cf::GroupEvents, &g.to_be_bytes(), &mut |_, _| {
        n += 1;
        Ok(true)
    })
    .unwrap();
    n
}

fn groups_of(e: &Engine, events: &[EventId]) -> BTreeMap<EventId, GroupId> {
    e.event_groups(events).unwrap()
}

#[test]
fn shared_reverse_entries_survive_moves_and_purges() {
    let kv = Arc::new(MemKv::new());
    let e = Engine::with_kv(Box::new(kv.clone()), EngineOptions::default()).unwrap();
    let room = RoomId::parse("!r:x").unwrap();
    let create = EventId::parse(format!("${}", STANDARD_NO_PAD.encode([7u8; 32]))).unwrap();
    let state: StateMap = [(StateKey::new("m.room.create", "").unwrap(), create.clone())]
        .into_iter()
        .collect();
    let mut groups = Vec::new();
    for _ in 0..3 {
        groups.push(
            e.store_group(NewGroup {
                id: None,
                room_id: &room,
                event_id: &create,
                state: GroupState::Full(&state),
            })
            .unwrap(),
        );
    }
    let (g1, g2, g3) = (groups[0], groups[1], groups[2]);
    let (a, b, c) = (colliding(1), colliding(2), colliding(3));
    let text = EventId::parse("$text:example.org").unwrap();
    let all = [a.clone(), b.clone(), c.clone(), text.clone()];

    e.set_event_groups(&[(a.clone(), g1), (b.clone(), g1), (text.clone(), g1)])
        .unwrap();
    assert_eq!(
        reverse_entries(&kv, g1),
        2,
        "a and b share one entry, the text id has its own"
    );
    clean(&e);

    // a moves: b still needs g1's entry.
    e.set_event_groups(&[(a.clone(), g2)]).unwrap();
    assert_eq!(reverse_entries(&kv, g1), 2);
    clean(&e);
    // b moves too: g1 keeps only the text id's entry.
    e.set_event_groups(&[(b.clone(), g2)]).unwrap();
    assert_eq!(reverse_entries(&kv, g1), 1);
    clean(&e);

    // One call: both leave g2 while c joins it under the same part; a is
    // given twice and ends in g3.
    e.set_event_groups(&[(a.clone(), g1), (b.clone(), g3), (c.clone(), g2), (a.clone(), g3)])
        .unwrap();
    assert_eq!(
        groups_of(&e, &all),
        BTreeMap::from([(a.clone(), g3), (b.clone(), g3), (c.clone(), g2), (text.clone(), g1)])
    );
    clean(&e);
    // Both leave g2's part in one call while nothing else holds it.
    e.set_event_groups(&[(c.clone(), g3), (a.clone(), g3)]).unwrap();
    assert_eq!(reverse_entries(&kv, g2), 0);
    clean(&e);

    // Purging g3 forgets exactly the events mapped to it.
    e.set_event_groups(&[(c.clone(), g2)]).unwrap();
    e.purge_groups(&room, &[g3]).unwrap();
    assert_eq!(
        groups_of(&e, &all),
        BTreeMap::from([(c.clone(), g2), (text.clone(), g1)])
    );
    clean(&e);
    e.purge_groups(&room, &[g1]).unwrap();
    assert_eq!(groups_of(&e, &all), BTreeMap::from([(c.clone(), g2)]));
    clean(&e);

    // Every mapping reads back in text form.
    let mut seen = Vec::new();
    e.for_each_event_group(&mut |ev, g| {
        seen.push((ev.clone(), g));
        Ok(())
    })
    .unwrap();
    assert_eq!(seen, vec![(c, g2)]);
}
