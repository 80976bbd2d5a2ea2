//! The synthetic auth events and chain cover: the chain cover answers
//! auth chain and auth difference questions, with the algorithms of
//! Synapse's `_get_auth_chain_ids_using_cover_index_txn` and
//! `_get_auth_chain_difference_using_cover_index_txn`, exactly as a plain
//! walk of the `event_auth` edges does.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeSet, HashMap, HashSet};

use mxstate_synth::{write_dump, Generator, SynthOptions};

fn opts() -> SynthOptions {
    SynthOptions {
        rooms: 3,
        members: 300,
        seed: 11,
        fork_every: 9,
        auth: true,
        ..Default::default()
    }
}

/// One room's auth edges and chain cover, read from the generator.
#[derive(Default)]
struct Room {
    auth: HashMap<String, Vec<String>>,
    position: HashMap<String, (i64, i64)>,
    at: HashMap<(i64, i64), String>,
    /// origin chain -> (origin seq, target chain, target seq)
    links: HashMap<i64, Vec<(i64, i64, i64)>>,
    /// Every group's full state, as event ids.
    states: Vec<Vec<String>>,
}

fn rooms(opts: &SynthOptions) -> Vec<Room> {
    let mut out: Vec<Room> = Vec::new();
    let mut generator = Generator::new(opts).unwrap();
    let mut room_id = String::new();
    while let Some(g) = generator.next_group() {
        if g.room_id() != room_id {
            room_id = g.room_id().to_owned();
            out.push(Room::default());
        }
        let room = out.last_mut().unwrap();
        let auth: Vec<String> = g.auth_events().map(str::to_owned).collect();
        if let Some(pos) = g.auth_chain_position() {
            assert!(
                room.at.insert(pos, g.event_id().to_owned()).is_none(),
                "{pos:?} given twice"
            );
            room.position.insert(g.event_id().to_owned(), pos);
            for &(tc, ts) in g.auth_chain_links() {
                assert_ne!(tc, pos.0, "a link within a chain");
                room.links.entry(pos.0).or_default().push((pos.1, tc, ts));
            }
            room.auth.insert(g.event_id().to_owned(), auth);
        } else {
            assert!(auth.is_empty(), "auth events of a non-state event");
        }
        room.states.push(g.state().map(|r| r.event_id.to_owned()).collect());
    }
    out
}

/// The plain walk: everything reachable by one or more auth edges.
fn walk(room: &Room, events: &[String]) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut stack: Vec<&String> = events.iter().collect();
    while let Some(e) = stack.pop() {
        for a in room.auth.get(e).into_iter().flatten() {
            if out.insert(a.clone()) {
                stack.push(a);
            }
        }
    }
    out
}

/// Synapse's `_materialize`, walking backwards.
fn materialize(chain: i64, seq: i64, links: &HashMap<i64, Vec<(i64, i64, i64)>>, out: &mut HashMap<i64, i64>) {
    let mut stack = vec![(chain, seq)];
    while let Some((c, s)) = stack.pop() {
        for &(os, tc, ts) in links.get(&c).into_iter().flatten() {
            if os > s {
                continue;
            }
            if out.get(&tc).copied().unwrap_or(0) < ts {
                out.insert(tc, ts);
                stack.push((tc, ts));
            }
        }
    }
}

/// The chains (max seq reachable) of a set, the set's own positions
/// included when `with_given`.
fn reach(room: &Room, events: &[String], with_given: bool) -> HashMap<i64, i64> {
    let mut given: HashMap<i64, i64> = HashMap::new();
    for e in events {
        let (c, s) = room.position[e];
        let m = given.entry(c).or_insert(0);
        *m = (*m).max(s);
    }
    let mut chains = HashMap::new();
    for (&c, &s) in &given {
        materialize(c, s, &room.links, &mut chains);
    }
    for (&c, &s) in &given {
        let top = if with_given { s } else { s - 1 };
        if top > 0 {
            let m = chains.entry(c).or_insert(0);
            *m = (*m).max(top);
        }
    }
    chains
}

/// `_get_auth_chain_ids_using_cover_index_txn`, include_given false.
fn cover_chain(room: &Room, events: &[String]) -> BTreeSet<String> {
    let chains = reach(room, events, false);
    let mut out = BTreeSet::new();
    for (&c, &max) in &chains {
        for s in 1..=max {
            out.insert(room.at[&(c, s)].clone());
        }
    }
    out
}

/// `_get_auth_chain_difference_using_cover_index_txn`, without v2.1.
fn cover_difference(room: &Room, sets: &[Vec<String>]) -> BTreeSet<String> {
    let reached: Vec<HashMap<i64, i64>> = sets.iter().map(|s| reach(room, s, true)).collect();
    let chains: HashSet<i64> = reached.iter().flat_map(|m| m.keys().copied()).collect();
    let mut out = BTreeSet::new();
    for c in chains {
        let min = reached
            .iter()
            .map(|m| m.get(&c).copied().unwrap_or(0))
            .min()
            .unwrap_or(0);
        let max = reached
            .iter()
            .map(|m| m.get(&c).copied().unwrap_or(0))
            .max()
            .unwrap_or(0);
        for s in min + 1..=max {
            out.insert(room.at[&(c, s)].clone());
        }
    }
    out
}

/// Synapse's meaning: the union of the full chains (set included) less
/// their intersection.
fn walk_difference(room: &Room, sets: &[Vec<String>]) -> BTreeSet<String> {
    let full: Vec<BTreeSet<String>> = sets
        .iter()
        .map(|s| {
            let mut c = walk(room, s);
            c.extend(s.iter().cloned());
            c
        })
        .collect();
    let union: BTreeSet<String> = full.iter().flatten().cloned().collect();
    union
        .into_iter()
        .filter(|e| !full.iter().all(|f| f.contains(e)))
        .collect()
}

#[test]
fn the_chain_cover_answers_as_the_auth_edges_do() {
    let rooms = rooms(&opts());
    assert_eq!(rooms.len(), 3);
    let mut chains = 0;
    let mut differences = 0;
    for room in &rooms {
        assert!(room.links.values().map(Vec::len).sum::<usize>() > room.position.len() / 4);
        // Every state event has a position; only the create event has no
        // auth events.
        assert_eq!(room.auth.values().filter(|a| a.is_empty()).count(), 1);
        let n = room.states.len();
        for (i, state) in room.states.iter().enumerate().step_by(7) {
            let state: Vec<String> = state
                .iter()
                .filter(|e| room.position.contains_key(*e))
                .cloned()
                .collect();
            assert_eq!(
                cover_chain(room, &state),
                walk(room, &state),
                "chain of the state of group {i}"
            );
            chains += 1;
            for back in [1, 5, 40] {
                if i >= back {
                    let other: Vec<String> = room.states[i - back]
                        .iter()
                        .filter(|e| room.position.contains_key(*e))
                        .cloned()
                        .collect();
                    let sets = [state.clone(), other];
                    assert_eq!(
                        cover_difference(room, &sets),
                        walk_difference(room, &sets),
                        "difference of groups {i} and {}",
                        i - back
                    );
                    differences += 1;
                }
            }
            // Single events too: the deepest questions.
            for e in state.iter().take(20) {
                assert_eq!(
                    cover_chain(room, std::slice::from_ref(e)),
                    walk(room, std::slice::from_ref(e))
                );
            }
        }
        assert!(n > 40, "{n} groups");
    }
    assert!(
        chains > 100 && differences > 200,
        "{chains} chains, {differences} differences"
    );
}

#[test]
fn auth_rows_are_written_only_when_asked_for() {
    let mut with = Vec::new();
    let s = write_dump(&opts(), &mut with).unwrap();
    let text = String::from_utf8(with).unwrap();
    assert!(s.auth_rows > 0 && s.chain_positions > 0 && s.chain_links > 0);
    let block = |name: &str| -> usize {
        let start = text.find(&format!("COPY public.{name} (")).expect(name);
        text[start..].lines().skip(1).take_while(|l| *l != "\\.").count()
    };
    assert_eq!(block("event_auth") as u64, s.auth_rows);
    assert_eq!(block("event_auth_chains") as u64, s.chain_positions);
    assert_eq!(block("event_auth_chain_links") as u64, s.chain_links);
    assert!(text.contains(&format!("setval('event_auth_chain_id', {}, true)", s.max_chain_id)));

    let mut without = Vec::new();
    let plain = write_dump(&SynthOptions { auth: false, ..opts() }, &mut without).unwrap();
    let text = String::from_utf8(without).unwrap();
    assert!(!text.contains("event_auth"));
    assert_eq!((plain.auth_rows, plain.chain_positions, plain.chain_links), (0, 0, 0));
    // The state history is the same either way.
    assert_eq!((plain.groups, plain.state_rows), (s.groups, s.state_rows));
}
