//! Shared fixtures for the benchmarks: rooms of a given size.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use mxstate_engine::{
    Engine, EngineOptions, EventId, GroupId, GroupState, NewGroup, RoomId, StateDelta, StateKey, StateMap,
};

/// A database holding one room of `members` members and `churn` one-entry
/// delta groups on top of its initial state.
pub struct Room {
    pub dir: tempfile::TempDir,
    pub engine: Engine,
    pub room: RoomId,
    pub latest: GroupId,
}

/// An event id for counter `n`.
pub fn event(n: u64) -> EventId {
    EventId::parse(format!("$ev{n:043}")).unwrap()
}

/// A member's state key.
pub fn member(n: u64) -> StateKey {
    StateKey::new("m.room.member", format!("@user{n}:bench.example")).unwrap()
}

/// Builds the room: a full state of `members` members plus the usual
/// state, then `churn` one-entry membership deltas stored in batches.
pub fn build_room(members: u64, churn: u64) -> Room {
    let dir = tempfile::tempdir().unwrap();
    // Writes without a sync each: the benchmarks measure the engine, not
    // the disk's flush (mxstate's default syncs every write).
    let rocks = mxstate_rocks::RocksConfig {
        sync_writes: false,
        ..Default::default()
    };
    let engine = mxstate_rocks::open_with(&dir.path().join("db"), EngineOptions::default(), &rocks).unwrap();
    let room = RoomId::parse("!bench:bench.example").unwrap();
    let mut state = StateMap::default();
    for (i, t) in [
        "m.room.create",
        "m.room.power_levels",
        "m.room.join_rules",
        "m.room.name",
        "m.room.topic",
    ]
    .iter()
    .enumerate()
    {
        state.insert(StateKey::new(t, "").unwrap(), event(i as u64));
    }
    for m in 0..members {
        state.insert(member(m), event(100 + m));
    }
    let root_ev = event(1);
    let mut latest = engine
        .store_group(NewGroup {
            id: None,
            room_id: &room,
            event_id: &root_ev,
            state: GroupState::Full(&state),
        })
        .unwrap();
    let mut n = 0;
    while n < churn {
        let batch_len = (churn - n).min(1000);
        let deltas: Vec<(EventId, StateDelta)> = (0..batch_len)
            .map(|i| {
                let e = event(10_000_000 + n + i);
                let d: StateDelta = [(member((n + i) * 7919 % members.max(1)), Some(e.clone()))].into();
                (e, d)
            })
            .collect();
        let mut groups = Vec::with_capacity(deltas.len());
        for (i, (e, d)) in deltas.iter().enumerate() {
            groups.push(NewGroup {
                id: Some(latest + 1 + i as u64),
                room_id: &room,
                event_id: e,
                state: GroupState::Delta {
                    prev: latest + i as u64,
                    delta: d,
                },
            });
        }
        latest = *engine.store_groups(&groups).unwrap().last().unwrap();
        n += batch_len;
    }
    Room {
        dir,
        engine,
        room,
        latest,
    }
}
