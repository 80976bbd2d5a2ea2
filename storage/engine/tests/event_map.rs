//! Event mappings keyed by stored event ids (format 4) in buckets (format
//! 6): hash ids that share their first bytes share one bucket and one
//! reverse entry, and moving, remapping, interning and purging keep both
//! indexes exact.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::sync::Arc;

use base64::engine::general_purpose::{STANDARD_NO_PAD, URL_SAFE_NO_PAD};
use base64::Engine as _;

use mxstate_engine::event_bucket::Slot;
use mxstate_engine::kv::{Cf, KvStore};
use mxstate_engine::{
    decode_record, Engine, EngineOptions, EventId, GroupId, GroupState, MemKv, NewGroup, Record, RoomId, StateKey,
    StateMap,
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

/// Every mapping, as `for_each_event_group` visits them.
fn every_mapping(e: &Engine) -> Vec<(EventId, GroupId)> {
    let mut seen = Vec::new();
    e.for_each_event_group(&mut |ev, g| {
        seen.push((ev.clone(), g));
        Ok(())
    })
    .unwrap();
    seen
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
    assert_eq!(every_mapping(&e), vec![(c, g2)]);
}

/// The entries of the bucket of the colliding ids, and the `strings`
/// entries of event ids.
fn bucket_and_strings(kv: &MemKv) -> (Vec<Slot>, usize) {
    let key = mxstate_engine::event_key::encode(colliding(0).as_str())[..5].to_vec();
    let slots = match kv.get(Cf::EventGroups, &key).unwrap() {
        Some(v) => match decode_record(Cf::EventGroups, &key, &v).unwrap() {
            Record::EventBucket { slots, .. } => slots,
            other => panic!("{other:?}"),
        },
        None => Vec::new(),
    };
    let mut strings = 0;
    kv.scan_prefix(Cf::Strings, b"E", &mut |_, _| {
        strings += 1;
        Ok(true)
    })
    .unwrap();
    (slots, strings)
}

#[test]
fn interned_and_mapped_ids_share_a_bucket_and_are_told_apart() {
    let kv = Arc::new(MemKv::new());
    let e = Engine::with_kv(Box::new(kv.clone()), EngineOptions::default()).unwrap();
    let room = RoomId::parse("!r:x").unwrap();
    // a: interned and mapped; b: mapped only; c: interned only; d: unknown;
    // f: mapped first, interned later. All in one bucket.
    let (a, b, c, d, f) = (colliding(1), colliding(2), colliding(3), colliding(4), colliding(5));
    let create = StateKey::new("m.room.create", "").unwrap();
    let member = StateKey::new("m.room.member", "@u:x").unwrap();
    let state: StateMap = [(create.clone(), a.clone()), (member.clone(), c.clone())]
        .into_iter()
        .collect();
    let g1 = e
        .store_group(NewGroup {
            id: None,
            room_id: &room,
            event_id: &a,
            state: GroupState::Full(&state),
        })
        .unwrap();
    e.set_event_groups(&[(a.clone(), g1), (b.clone(), g1), (f.clone(), g1)])
        .unwrap();
    let all = [a.clone(), b.clone(), c.clone(), d.clone(), f.clone()];
    let mapped = BTreeMap::from([(a.clone(), g1), (b.clone(), g1), (f.clone(), g1)]);
    assert_eq!(groups_of(&e, &all), mapped);
    let (slots, strings) = bucket_and_strings(&kv);
    assert_eq!(strings, 0, "hash-form ids are interned in their bucket");
    assert_eq!(
        slots
            .iter()
            .map(|s| matches!(s, Slot::Interned { .. }))
            .collect::<Vec<_>>(),
        vec![true, true, false, false],
        "{slots:?}"
    );
    assert_eq!(reverse_entries(&kv, g1), 1);
    clean(&e);

    // f joins the state: its mapped entry becomes an interned one.
    let delta = [(member.clone(), Some(f.clone()))].into_iter().collect();
    let g2 = e
        .store_group(NewGroup {
            id: None,
            room_id: &room,
            event_id: &f,
            state: GroupState::Delta {
                prev: g1,
                delta: &delta,
            },
        })
        .unwrap();
    assert_eq!(bucket_and_strings(&kv).0.len(), 4);
    assert_eq!(groups_of(&e, &all), mapped);
    clean(&e);

    // A new engine (nothing cached) tells the ids apart by their texts.
    drop(e);
    let e = Engine::with_kv(Box::new(kv.clone()), EngineOptions::default()).unwrap();
    assert_eq!(groups_of(&e, &all), mapped);
    assert_eq!(groups_of(&e, std::slice::from_ref(&d)), BTreeMap::new());
    let filter = mxstate_engine::StateFilter::all();
    let s2 = e.state_for_group(g2, &filter).unwrap();
    assert_eq!(s2.get(&member), Some(&f));
    assert_eq!(s2.get(&create), Some(&a));
    clean(&e);

    // Purging g1 forgets its mappings; the interned ids stay, and g2's
    // state still reads them.
    e.set_event_groups(&[(f.clone(), g2)]).unwrap();
    e.purge_groups(&room, &[g1]).unwrap();
    assert_eq!(groups_of(&e, &all), BTreeMap::from([(f.clone(), g2)]));
    let (slots, _) = bucket_and_strings(&kv);
    assert_eq!(slots.len(), 3, "b's entry is gone: {slots:?}");
    assert_eq!(e.state_for_group(g2, &filter).unwrap(), s2);
    clean(&e);
    assert_eq!(every_mapping(&e), vec![(f, g2)]);
}
