//! After any sequence of stores and purges, every physical chain stays
//! within the policy's bound and every group keeps its state. Runs on the
//! in-memory key-value store: no RocksDB needed.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;

use mxstate_engine::{
    ChainPolicy, Engine, EngineOptions, EventId, GroupId, GroupState, MemKv, NewGroup, RoomId, StateDelta, StateFilter,
    StateKey, StateMap,
};
use proptest::prelude::*;

#[derive(Debug, Clone)]
enum Op {
    /// A delta of `changes` on the group picked by `prev`.
    Delta {
        prev: usize,
        changes: Vec<(u8, Option<u8>)>,
    },
    /// A full state.
    Full { entries: Vec<u8> },
    /// Purge the group picked by `pick`.
    Purge { pick: usize },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        12 => (any::<usize>(), proptest::collection::vec((0u8..12, proptest::option::of(0u8..200)), 1..4))
            .prop_map(|(prev, changes)| Op::Delta { prev, changes }),
        1 => proptest::collection::vec(0u8..12, 0..8).prop_map(|entries| Op::Full { entries }),
        2 => any::<usize>().prop_map(|pick| Op::Purge { pick }),
    ]
}

fn key(k: u8) -> StateKey {
    StateKey::new(
        if k.is_multiple_of(3) {
            "m.room.name"
        } else {
            "m.room.member"
        },
        format!("@u{k}:x"),
    )
    .unwrap()
}

fn ev(n: u64) -> EventId {
    EventId::parse(format!("$e{n}")).unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    #[test]
    fn chains_stay_bounded_and_states_stay(ops in proptest::collection::vec(op(), 1..120)) {
        let policy = ChainPolicy::new(vec![3, 3, 2]).unwrap().with_snapshot_min_delta(4);
        let bound = policy.max_hops();
        let engine = Engine::with_kv(
            Box::new(MemKv::new()),
            EngineOptions { policy, cache_bytes: 1 << 20, ..EngineOptions::default() },
        ).unwrap();
        let room = RoomId::parse("!r:x").unwrap();
        let mut model: BTreeMap<GroupId, StateMap> = BTreeMap::new();
        let mut n = 0u64;
        for op in ops {
            n += 1;
            match op {
                Op::Delta { prev, changes } if !model.is_empty() => {
                    let ids: Vec<GroupId> = model.keys().copied().collect();
                    let p = ids[prev % ids.len()];
                    let delta: StateDelta = changes.iter().map(|&(k, e)| (key(k), e.map(|e| ev(u64::from(e))))).collect();
                    let g = engine.store_group(NewGroup {
                        id: None, room_id: &room, event_id: &ev(1000 + n),
                        state: GroupState::Delta { prev: p, delta: &delta },
                    }).unwrap();
                    let mut s = model[&p].clone();
                    for (k, v) in delta {
                        match v { Some(e) => { s.insert(k, e); } None => { s.remove(&k); } }
                    }
                    model.insert(g, s);
                }
                Op::Delta { .. } => {}
                Op::Full { entries } => {
                    let s: StateMap = entries.iter().map(|&k| (key(k), ev(u64::from(k)))).collect();
                    let g = engine.store_group(NewGroup {
                        id: None, room_id: &room, event_id: &ev(1000 + n), state: GroupState::Full(&s),
                    }).unwrap();
                    model.insert(g, s);
                }
                Op::Purge { pick } if !model.is_empty() => {
                    let ids: Vec<GroupId> = model.keys().copied().collect();
                    let g = ids[pick % ids.len()];
                    engine.purge_groups(&room, &[g]).unwrap();
                    model.remove(&g);
                }
                Op::Purge { .. } => {}
            }
            let longest = engine.stats().unwrap().longest_chain;
            prop_assert!(longest <= bound, "a chain of {} deltas, bound {}", longest, bound);
        }
        for (g, want) in &model {
            prop_assert_eq!(&engine.state_for_group(*g, &StateFilter::all()).unwrap(), want, "group {}", g);
        }
    }
}
