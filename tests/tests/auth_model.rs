//! Auth chains against the reference model: random rooms shaped like
//! Matrix rooms (a create event; power levels and join rules, each
//! authorised by the previous one and the sender's membership; membership
//! chains per user; forks, where an event is authorised by an older power
//! levels or membership than the latest), added in random batches to the
//! engine on RocksDB (reopened once, so the graph is also loaded from
//! disk) and to `MemoryStore`, which walks the edges plainly. Every auth
//! chain, auth chain difference and conflicted subgraph asked must be
//! equal.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeSet;

use mxstate_api::{ConflictedSubgraph, MemoryStore, StateStore};
use mxstate_engine::{EngineOptions, EventId, RoomId};
use mxstate_tests::runtime;
use proptest::prelude::*;

fn ev(n: u32) -> EventId {
    EventId::parse(format!("$a{n}")).unwrap()
}

fn room() -> RoomId {
    RoomId::parse("!auth:x").unwrap()
}

/// What the generator draws for each event after the create event.
#[derive(Debug, Clone)]
enum Step {
    /// User `user` joins or leaves; `fork` picks an older power levels.
    Member { user: u8, fork: u8 },
    /// New power levels by `user`.
    PowerLevels { user: u8, fork: u8 },
    /// New join rules by `user`.
    JoinRules { user: u8 },
    /// An event also authorised by an arbitrary earlier event.
    Odd { user: u8, back: u16 },
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        5 => (0u8..8, 0u8..4).prop_map(|(user, fork)| Step::Member { user, fork }),
        2 => (0u8..8, 0u8..4).prop_map(|(user, fork)| Step::PowerLevels { user, fork }),
        1 => (0u8..8).prop_map(|user| Step::JoinRules { user }),
        1 => (0u8..8, any::<u16>()).prop_map(|(user, back)| Step::Odd { user, back }),
    ]
}

/// The room's events in order, each with its auth events.
fn build(steps: &[Step]) -> Vec<(u32, Vec<u32>)> {
    let mut out: Vec<(u32, Vec<u32>)> = vec![(1, vec![])];
    let mut pls: Vec<u32> = Vec::new();
    let mut jr: Option<u32> = None;
    let mut member: [Option<u32>; 8] = [None; 8];
    for (i, s) in steps.iter().enumerate() {
        let e = i as u32 + 2;
        let pl_at = |fork: u8| -> Option<u32> {
            let k = pls.len().checked_sub(1 + usize::from(fork))?;
            pls.get(k).copied()
        };
        let mut auth = vec![1];
        let push = |a: Option<u32>, auth: &mut Vec<u32>| {
            if let Some(a) = a {
                if !auth.contains(&a) {
                    auth.push(a);
                }
            }
        };
        match *s {
            Step::Member { user, fork } => {
                let u = usize::from(user);
                push(pl_at(fork).or(pls.last().copied()), &mut auth);
                push(jr, &mut auth);
                push(member[u], &mut auth);
                member[u] = Some(e);
            }
            Step::PowerLevels { user, fork } => {
                push(pl_at(fork).or(pls.last().copied()), &mut auth);
                push(member[usize::from(user)], &mut auth);
                pls.push(e);
            }
            Step::JoinRules { user } => {
                push(pls.last().copied(), &mut auth);
                push(jr, &mut auth);
                push(member[usize::from(user)], &mut auth);
                jr = Some(e);
            }
            Step::Odd { user, back } => {
                push(member[usize::from(user)], &mut auth);
                push(Some(1 + u32::from(back) % (e - 1)), &mut auth);
            }
        }
        out.push((e, auth));
    }
    out
}

/// One question, as picks among the room's events (indexes modulo the
/// count; `u32::MAX` stands for an event never added).
#[derive(Debug, Clone)]
enum Ask {
    Chain {
        events: Vec<u32>,
        given: bool,
    },
    Difference {
        sets: Vec<Vec<u32>>,
        conflicted: Option<(Vec<u32>, Vec<u32>)>,
    },
}

fn picks() -> impl Strategy<Value = Vec<u32>> {
    prop::collection::vec(prop_oneof![20 => any::<u32>(), 1 => Just(u32::MAX)], 0..8)
}

fn ask() -> impl Strategy<Value = Ask> {
    prop_oneof![
        (picks(), any::<bool>()).prop_map(|(events, given)| Ask::Chain { events, given }),
        (
            prop::collection::vec(picks(), 1..4),
            prop::option::of((picks(), picks()))
        )
            .prop_map(|(sets, conflicted)| Ask::Difference { sets, conflicted }),
    ]
}

fn resolve(picks: &[u32], n: u32) -> BTreeSet<EventId> {
    picks
        .iter()
        .map(|&p| if p == u32::MAX { ev(1_000_000) } else { ev(1 + p % n) })
        .collect()
}

proptest! {
    #![proptest_config(common::proptest_config(48, 0xA07B_C4A1))]

    #[test]
    fn auth_answers_equal_the_model(
        steps in prop::collection::vec(step(), 0..120),
        batches in prop::collection::vec(1usize..30, 1..8),
        reopen_after in 0usize..8,
        asks in prop::collection::vec(ask(), 1..24),
    ) {
        let events = build(&steps);
        let n = events.len() as u32;
        let rt = runtime();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db");
        let mut db = mxstate_rocks::open_store(&path, EngineOptions::default()).unwrap();
        let model = MemoryStore::new();
        let mut rest = &events[..];
        let mut i = 0;
        while !rest.is_empty() {
            let k = batches[i % batches.len()].min(rest.len());
            let (batch, tail) = rest.split_at(k);
            rest = tail;
            let batch: Vec<(EventId, Vec<EventId>)> =
                batch.iter().map(|(e, a)| (ev(*e), a.iter().map(|&x| ev(x)).collect())).collect();
            rt.block_on(db.add_auth_events(room(), batch.clone())).unwrap();
            rt.block_on(model.add_auth_events(room(), batch)).unwrap();
            if i == reopen_after {
                drop(db);
                db = mxstate_rocks::open_store(&path, EngineOptions::default()).unwrap();
            }
            i += 1;
        }
        for a in &asks {
            match a {
                Ask::Chain { events, given } => {
                    let q: Vec<EventId> = resolve(events, n).into_iter().collect();
                    let got = rt.block_on(db.auth_chain(room(), q.clone(), *given)).unwrap();
                    let want = rt.block_on(model.auth_chain(room(), q.clone(), *given)).unwrap();
                    // The same asked as text, answered as text.
                    let text: Vec<&str> = q.iter().map(EventId::as_str).collect();
                    let got_text: BTreeSet<String> = db
                        .engine()
                        .auth_chain_of_text(&room(), &text, *given)
                        .unwrap()
                        .iter()
                        .map(|s| s.to_string())
                        .collect();
                    prop_assert_eq!(got, want.clone(), "auth chain of {:?}", events);
                    let want_text: BTreeSet<String> = want.iter().map(|e| e.as_str().to_owned()).collect();
                    prop_assert_eq!(got_text, want_text, "auth chain of {:?} as text", events);
                }
                Ask::Difference { sets, conflicted } => {
                    let sets: Vec<BTreeSet<EventId>> = sets.iter().map(|s| resolve(s, n)).collect();
                    let c = conflicted.as_ref().map(|(c, a)| ConflictedSubgraph {
                        conflicted: resolve(c, n),
                        additional_backwards_reachable: resolve(a, n),
                    });
                    let got = rt.block_on(db.auth_chain_difference(room(), sets.clone(), c.clone())).unwrap();
                    let want = rt.block_on(model.auth_chain_difference(room(), sets.clone(), c.clone())).unwrap();
                    // The same asked as text, answered as text.
                    let text = |s: &BTreeSet<EventId>| -> Vec<String> { s.iter().map(|e| e.as_str().to_owned()).collect() };
                    let set_text: Vec<Vec<String>> = sets.iter().map(text).collect();
                    let c_text = c.as_ref().map(|c| (text(&c.conflicted), text(&c.additional_backwards_reachable)));
                    let (d, sub) = db
                        .engine()
                        .auth_chain_difference_of_text(&room(), &set_text, c_text.as_ref().map(|(c, a)| (c, a)))
                        .unwrap();
                    let sorted = |v: Vec<std::sync::Arc<str>>| -> BTreeSet<String> { v.iter().map(|s| s.to_string()).collect() };
                    let strings = |s: &BTreeSet<EventId>| -> BTreeSet<String> { s.iter().map(|e| e.as_str().to_owned()).collect() };
                    prop_assert_eq!(sorted(d), strings(&want.auth_difference));
                    prop_assert_eq!(sub.map(sorted), want.conflicted_subgraph.as_ref().map(strings));
                    prop_assert_eq!(got, want);
                }
            }
        }
        let report = db.engine().check().unwrap();
        prop_assert!(report.is_clean(), "check: {:?}", report.problems);
    }
}
