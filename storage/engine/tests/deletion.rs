//! Synapse's deletion protocol on the engine: marks, bumps, persists in
//! flight, readiness and the atomic purge. On the in-memory store.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, BTreeSet};

use mxstate_engine::{
    Engine, EngineOptions, EventId, GroupId, GroupState, MemKv, NewGroup, RoomId, StateDelta, StateFilter, StateKey,
    StateMap,
};

const DELAY: u64 = 600_000;

fn engine() -> Engine {
    Engine::with_kv(Box::new(MemKv::new()), EngineOptions::default()).unwrap()
}

fn room() -> RoomId {
    RoomId::parse("!r:x").unwrap()
}

fn ev(n: u64) -> EventId {
    EventId::parse(format!("$e{n}")).unwrap()
}

fn key(n: u64) -> StateKey {
    StateKey::new("m.room.member", format!("@u{n}:x")).unwrap()
}

/// A root group and a chain of `n` one-entry deltas on it: ids in order.
fn chain(e: &Engine, n: u64) -> Vec<GroupId> {
    let root: StateMap = [(StateKey::new("m.room.create", "").unwrap(), ev(0))]
        .into_iter()
        .collect();
    let r = room();
    let mut ids = vec![e
        .store_group(NewGroup {
            id: None,
            room_id: &r,
            event_id: &ev(0),
            state: GroupState::Full(&root),
        })
        .unwrap()];
    for i in 1..=n {
        let d: StateDelta = [(key(i), Some(ev(i)))].into_iter().collect();
        let prev = *ids.last().unwrap();
        ids.push(
            e.store_group(NewGroup {
                id: None,
                room_id: &r,
                event_id: &ev(i),
                state: GroupState::Delta { prev, delta: &d },
            })
            .unwrap(),
        );
    }
    ids
}

fn set(ids: &[GroupId]) -> BTreeSet<GroupId> {
    ids.iter().copied().collect()
}

#[test]
fn check_and_bump_reports_missing_and_renews_marks() {
    let e = engine();
    let ids = chain(&e, 2);
    e.mark_pending_deletion(&set(&ids[1..2]), 1000).unwrap();
    let before = e.pending_deletions(&set(&ids)).unwrap();
    assert_eq!(before.keys().copied().collect::<Vec<_>>(), vec![ids[1]]);
    let missing = e.check_and_bump_deletion(&set(&[ids[0], ids[1], 999]), 2000).unwrap();
    assert_eq!(missing, vec![999]);
    let after = e.pending_deletions(&set(&ids)).unwrap();
    assert_ne!(after[&ids[1]], before[&ids[1]], "the sequence number changes");
    // Marking again keeps the existing mark.
    e.mark_pending_deletion(&set(&ids[1..2]), 5000).unwrap();
    assert_eq!(e.pending_deletions(&set(&ids)).unwrap(), after);
    e.mark_used(&set(&ids[1..2])).unwrap();
    assert!(e.pending_deletions(&set(&ids)).unwrap().is_empty());
}

#[test]
fn persists_in_flight_protect_and_clear_marks() {
    let e = engine();
    let ids = chain(&e, 2);
    // A persist naming a missing group marks nothing.
    assert_eq!(e.mark_persisting(&set(&[ids[1], 77]), "master", 10).unwrap(), vec![77]);
    assert!(e.persisting_marks().unwrap().is_empty());
    e.mark_pending_deletion(&set(&ids[1..3]), 10).unwrap();
    assert!(e.mark_persisting(&set(&ids[1..3]), "master", 20).unwrap().is_empty());
    assert_eq!(e.persisting_marks().unwrap().len(), 2);
    // Not ready while persisting, even long after.
    let cands = e.pending_deletions(&set(&ids)).unwrap();
    assert!(e.ready_for_deletion(&cands, 10 + DELAY * 2, DELAY).unwrap().is_empty());
    assert!(e.next_deletion_candidates(10 + DELAY * 2, DELAY).unwrap().is_none());
    // A failed persist keeps the marks pending, renewed.
    e.finish_persisting(&set(&ids[1..2]), "master", true, 30).unwrap();
    let now = e.pending_deletions(&set(&ids)).unwrap();
    assert_ne!(now[&ids[1]], cands[&ids[1]]);
    // A successful one clears them: the groups are in use.
    e.finish_persisting(&set(&ids[2..3]), "master", false, 40).unwrap();
    assert_eq!(
        e.pending_deletions(&set(&ids))
            .unwrap()
            .keys()
            .copied()
            .collect::<Vec<_>>(),
        vec![ids[1]]
    );
    assert!(e.persisting_marks().unwrap().is_empty());
    // Stale marks of another instance go at startup.
    e.mark_persisting(&set(&ids[0..1]), "worker1", 50).unwrap();
    e.mark_persisting(&set(&ids[1..2]), "worker2", 5_000).unwrap();
    let cleared = e.clear_persisting("master", 1_000).unwrap();
    assert_eq!(cleared, set(&ids[0..1]));
    assert_eq!(
        e.persisting_marks().unwrap(),
        vec![(ids[1], "worker2".to_owned(), 5_000)]
    );
}

#[test]
fn readiness_follows_delay_sequence_and_ancestors() {
    let e = engine();
    let ids = chain(&e, 3);
    e.mark_pending_deletion(&set(&ids[2..4]), 1_000).unwrap();
    let cands = e.pending_deletions(&set(&ids)).unwrap();
    assert!(
        e.ready_for_deletion(&cands, 1_000 + DELAY - 1, DELAY)
            .unwrap()
            .is_empty(),
        "too recent"
    );
    assert_eq!(
        e.ready_for_deletion(&cands, 1_000 + DELAY, DELAY).unwrap(),
        set(&ids[2..4])
    );
    // The leaf becomes used again (its number changes): the leaf is not
    // ready, and neither is any ancestor of a candidate (ids[2]).
    e.check_and_bump_deletion(&set(&ids[3..4]), 2_000).unwrap();
    assert!(e.ready_for_deletion(&cands, 10 * DELAY, DELAY).unwrap().is_empty());
    // A group that was never marked is not ready.
    let unmarked: BTreeMap<GroupId, u64> = [(ids[1], 1)].into_iter().collect();
    assert!(e.ready_for_deletion(&unmarked, 10 * DELAY, DELAY).unwrap().is_empty());
}

#[test]
fn next_candidates_take_the_oldest_mark_of_one_room() {
    let e = engine();
    let ids = chain(&e, 4);
    assert!(e.next_deletion_candidates(0, DELAY).unwrap().is_none());
    e.mark_pending_deletion(&set(&ids[3..5]), 5_000).unwrap();
    e.mark_pending_deletion(&set(&ids[1..2]), 7_000).unwrap();
    e.mark_pending_deletion(&set(&[4242]), 1_000).unwrap(); // a group that does not exist
    assert!(
        e.next_deletion_candidates(5_000 + DELAY, DELAY).unwrap().is_none(),
        "not old enough"
    );
    let (r, c) = e.next_deletion_candidates(5_001 + DELAY, DELAY).unwrap().unwrap();
    assert_eq!(r, room());
    assert_eq!(c.keys().copied().collect::<Vec<_>>(), ids[3..5].to_vec());
}

#[test]
fn purge_if_ready_rebases_and_deletes_atomically() {
    let e = engine();
    let ids = chain(&e, 4);
    let want: BTreeMap<GroupId, StateMap> = ids
        .iter()
        .map(|&g| (g, e.state_for_group(g, &StateFilter::all()).unwrap()))
        .collect();
    e.mark_pending_deletion(&set(&ids[1..3]), 0).unwrap();
    let cands = e.pending_deletions(&set(&ids)).unwrap();
    // A stale view of the numbers deletes nothing.
    e.check_and_bump_deletion(&set(&ids[2..3]), 0).unwrap();
    assert!(e.purge_if_ready(&room(), &cands, DELAY, DELAY).unwrap().is_empty());
    assert!(e.has_group(ids[1]).unwrap() && e.has_group(ids[2]).unwrap());
    let cands = e.pending_deletions(&set(&ids)).unwrap();
    let gone = e.purge_if_ready(&room(), &cands, DELAY, DELAY).unwrap();
    assert_eq!(gone, ids[1..3].to_vec());
    assert!(!e.has_group(ids[1]).unwrap() && !e.has_group(ids[2]).unwrap());
    assert!(
        e.pending_deletions(&set(&ids)).unwrap().is_empty(),
        "marks go with the groups"
    );
    for g in [ids[0], ids[3], ids[4]] {
        assert_eq!(
            e.state_for_group(g, &StateFilter::all()).unwrap(),
            want[&g],
            "group {g}"
        );
    }
    // The child of a deleted group takes the deleted group's prev.
    assert_eq!(e.previous_groups(&set(&ids[3..4])).unwrap()[&ids[3]], ids[0]);
    assert_eq!(
        e.next_groups(&set(&ids[0..1])).unwrap(),
        BTreeMap::from([(ids[3], ids[0])])
    );
}

#[test]
fn storing_on_a_pending_group_renews_its_mark() {
    let e = engine();
    let ids = chain(&e, 1);
    e.mark_pending_deletion(&set(&ids[1..2]), 0).unwrap();
    let before = e.pending_deletions(&set(&ids)).unwrap()[&ids[1]];
    let d: StateDelta = [(key(9), Some(ev(9)))].into_iter().collect();
    let r = room();
    e.store_groups_at(
        &[NewGroup {
            id: None,
            room_id: &r,
            event_id: &ev(9),
            state: GroupState::Delta {
                prev: ids[1],
                delta: &d,
            },
        }],
        Some(5),
    )
    .unwrap();
    assert_ne!(e.pending_deletions(&set(&ids)).unwrap()[&ids[1]], before);
}

#[test]
fn chains_stored_in_one_call_link_to_the_previous_group() {
    let e = engine();
    let ids = chain(&e, 0);
    let r = room();
    let deltas: Vec<StateDelta> = (1..=3).map(|i| [(key(i), Some(ev(i)))].into_iter().collect()).collect();
    let events: Vec<EventId> = (1..=3).map(ev).collect();
    let groups: Vec<NewGroup<'_>> = deltas
        .iter()
        .zip(&events)
        .enumerate()
        .map(|(i, (d, ev))| NewGroup {
            id: None,
            room_id: &r,
            event_id: ev,
            state: if i == 0 {
                GroupState::Delta { prev: ids[0], delta: d }
            } else {
                GroupState::DeltaOnPrevious { delta: d }
            },
        })
        .collect();
    let new = e.store_groups(&groups).unwrap();
    assert_eq!(new.len(), 3);
    let prevs = e.previous_groups(&set(&new)).unwrap();
    assert_eq!(
        prevs,
        BTreeMap::from([(new[0], ids[0]), (new[1], new[0]), (new[2], new[1])])
    );
    assert_eq!(e.state_for_group(new[2], &StateFilter::all()).unwrap().len(), 4);
    assert_eq!(e.group_event(new[1]).unwrap(), ev(2));
    // A chain link cannot come first.
    let lone = [NewGroup {
        id: None,
        room_id: &r,
        event_id: &events[0],
        state: GroupState::DeltaOnPrevious { delta: &deltas[0] },
    }];
    assert!(e.store_groups(&lone).is_err());
    assert_eq!(e.max_group().unwrap(), Some(new[2]));
    assert_eq!(e.groups_below(new[2], 2).unwrap(), vec![new[1], new[0]]);
}
