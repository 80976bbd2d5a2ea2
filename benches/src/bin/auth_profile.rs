//! The auth index on a Matrix-shaped room: `cargo run --release -p
//! mxstate-benches --bin auth_profile [MEMBERS]`. A create event, power
//! levels (changed every 5,000 joins) and join rules, then MEMBERS joins
//! (each authorised by the create event, the power levels, the join rules
//! and the user's previous membership), in batches of 1,000 events. Then
//! MEMBERS/10 users leave and rejoin. Prints the time of the auth chain of
//! the full state (cold: with the graph's load; warm), of auth chain
//! differences of two states differing by 1, 100 and 10,000 membership
//! events, of a v2.1 conflicted subgraph of 100 conflicted events, and the
//! `auth` family's bytes per event after a compaction.
//!
//! `auth_profile synth MEMBERS [ROUNDS]` instead adds the room of
//! `mxstate synth --auth` (the room `compare_auth` asks Synapse about) and
//! asks the auth chain of its full state and one auth difference ROUNDS
//! times each, printing the medians: a loop to run under `perf`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use mxstate_api::{ConflictedSubgraph, EventId, RoomId};
use mxstate_engine::EngineOptions;

fn ev(n: u64) -> EventId {
    EventId::parse(format!("$ev{n:012}aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa")).unwrap()
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

/// The room of `mxstate synth --auth`, its questions asked `rounds` times.
fn synth(members: u32, rounds: usize) {
    let opts = mxstate_synth::SynthOptions {
        rooms: 1,
        members,
        seed: 1,
        auth: true,
        ..Default::default()
    };
    let dir = tempfile::tempdir().unwrap();
    let engine = mxstate_rocks::open(&dir.path().join("db"), EngineOptions::default()).unwrap();
    let mut g = mxstate_synth::Generator::new(&opts).unwrap();
    let mut batch: Vec<(EventId, Vec<EventId>)> = Vec::new();
    let mut room = None;
    let mut state: Vec<EventId> = Vec::new();
    let mut earlier: Vec<EventId> = Vec::new();
    let mut n = 0u64;
    while let Some(group) = g.next_group() {
        let r = RoomId::parse(group.room_id()).unwrap();
        if group.auth_chain_position().is_some() {
            let auth = group.auth_events().map(|a| EventId::parse(a).unwrap()).collect();
            batch.push((EventId::parse(group.event_id()).unwrap(), auth));
            n += 1;
        }
        if batch.len() >= 1000 {
            engine.add_auth_events(&r, &batch).unwrap();
            batch.clear();
        }
        if n == u64::from(members) * 2 - 100 && earlier.is_empty() {
            earlier = group.state().map(|s| EventId::parse(s.event_id).unwrap()).collect();
        }
        if group.is_last_in_room() {
            state = group.state().map(|s| EventId::parse(s.event_id).unwrap()).collect();
        }
        room = Some(r);
    }
    let room = room.unwrap();
    engine.add_auth_events(&room, &batch).unwrap();
    let chain = engine.auth_chain_unordered(&room, &state, false).unwrap();
    let chains = median(
        (0..rounds)
            .map(|_| {
                let t = Instant::now();
                engine.auth_chain_unordered(&room, &state, false).unwrap();
                t.elapsed()
            })
            .collect(),
    );
    let sets = [state.clone(), earlier.clone()];
    let d = engine
        .auth_chain_difference_of(&room, &sets, None::<(&Vec<EventId>, &Vec<EventId>)>)
        .unwrap();
    let diffs = median(
        (0..rounds)
            .map(|_| {
                let t = Instant::now();
                engine
                    .auth_chain_difference_of(&room, &sets, None::<(&Vec<EventId>, &Vec<EventId>)>)
                    .unwrap();
                t.elapsed()
            })
            .collect(),
    );
    println!(
        "synth room, {members} members, {n} state events: chain of the full state ({} events) {} events, {:.2} ms; difference with the state ~100 events earlier: {} events, {:.2} ms (medians of {rounds})",
        state.len(),
        chain.len(),
        chains.as_secs_f64() * 1e3,
        d.auth_difference.len(),
        diffs.as_secs_f64() * 1e3
    );
    engine.compact().unwrap();
    let s = engine.stats().unwrap();
    let auth = s
        .column_families
        .iter()
        .find(|c| c.name == "auth")
        .map_or(0, |c| c.bytes);
    println!(
        "on disk after compaction: auth {auth} bytes = {:.2} bytes/event",
        auth as f64 / n as f64
    );
}

fn main() {
    if std::env::args().nth(1).as_deref() == Some("synth") {
        let members = std::env::args().nth(2).map_or(10_000, |a| a.parse().expect("a number"));
        let rounds = std::env::args().nth(3).map_or(20, |a| a.parse().expect("a number"));
        return synth(members, rounds);
    }
    let members: u64 = std::env::args().nth(1).map_or(10_000, |a| a.parse().expect("a number"));
    let dir = tempfile::tempdir().unwrap();
    let engine = mxstate_rocks::open(&dir.path().join("db"), EngineOptions::default()).unwrap();
    let room = RoomId::parse("!bench:example.org").unwrap();
    let mut next = 0u64;
    let mut new = || {
        next += 1;
        next
    };
    let mut events: Vec<(u64, Vec<u64>)> = Vec::new();
    let create = new();
    events.push((create, vec![]));
    let alice = new();
    events.push((alice, vec![create]));
    let mut pl = new();
    events.push((pl, vec![create, alice]));
    let jr = new();
    events.push((jr, vec![create, pl, alice]));
    let mut member: Vec<u64> = Vec::with_capacity(members as usize);
    for u in 0..members {
        if u % 5000 == 4999 {
            let p = new();
            events.push((p, vec![create, pl, alice]));
            pl = p;
        }
        let e = new();
        events.push((e, vec![create, pl, jr]));
        member.push(e);
    }
    for u in (0..members).step_by(10) {
        let i = u as usize;
        let leave = new();
        events.push((leave, vec![create, pl, member[i]]));
        let join = new();
        events.push((join, vec![create, pl, jr, leave]));
        member[i] = join;
    }
    let n_events = events.len();
    let t = Instant::now();
    for chunk in events.chunks(1000) {
        let batch: Vec<(EventId, Vec<EventId>)> = chunk
            .iter()
            .map(|(e, a)| (ev(*e), a.iter().map(|&x| ev(x)).collect()))
            .collect();
        engine.add_auth_events(&room, &batch).unwrap();
    }
    let add = t.elapsed();
    let state: Vec<EventId> = [create, pl, jr, alice]
        .into_iter()
        .chain(member.iter().copied())
        .map(ev)
        .collect();
    println!(
        "room: {members} members, {n_events} events; added in {:.2} s ({:.0} events/s)",
        add.as_secs_f64(),
        n_events as f64 / add.as_secs_f64()
    );

    // Cold: a fresh engine loads the graph on the first question.
    drop(engine);
    let engine = mxstate_rocks::open(&dir.path().join("db"), EngineOptions::default()).unwrap();
    let t = Instant::now();
    let chain = engine.auth_chain(&room, &state, false).unwrap();
    println!(
        "auth chain of the full state ({} events): {} events, cold (graph load included) {:.2} ms",
        state.len(),
        chain.len(),
        t.elapsed().as_secs_f64() * 1e3
    );
    let warm = median(
        (0..7)
            .map(|_| {
                let t = Instant::now();
                engine.auth_chain(&room, &state, false).unwrap();
                t.elapsed()
            })
            .collect(),
    );
    println!(
        "auth chain of the full state, warm: {:.2} ms (median of 7)",
        warm.as_secs_f64() * 1e3
    );

    // Two states: B has k members' newer memberships (leaves) instead.
    let a: BTreeSet<EventId> = state.iter().cloned().collect();
    for k in [1u64, 100, 10_000] {
        if k > members {
            continue;
        }
        let mut extra = Vec::new();
        let mut b = a.clone();
        for u in 0..k {
            let i = ((u * 7919) % members) as usize;
            let leave = new();
            extra.push((ev(leave), vec![ev(create), ev(pl), ev(member[i])]));
            b.remove(&ev(member[i]));
            b.insert(ev(leave));
        }
        for chunk in extra.chunks(1000) {
            engine.add_auth_events(&room, chunk).unwrap();
        }
        let sets = vec![a.clone(), b.clone()];
        let d = engine.auth_chain_difference(&room, &sets, None).unwrap();
        let took = median(
            (0..5)
                .map(|_| {
                    let t = Instant::now();
                    engine.auth_chain_difference(&room, &sets, None).unwrap();
                    t.elapsed()
                })
                .collect(),
        );
        println!(
            "auth difference of two full states differing by {k} memberships: {} events, {:.2} ms (median of 5)",
            d.auth_difference.len(),
            took.as_secs_f64() * 1e3
        );
        if k == 100 {
            let conflicted: BTreeSet<EventId> = a.symmetric_difference(&b).cloned().collect();
            let c = ConflictedSubgraph {
                conflicted,
                additional_backwards_reachable: BTreeSet::new(),
            };
            let took = median(
                (0..5)
                    .map(|_| {
                        let t = Instant::now();
                        engine.auth_chain_difference(&room, &sets, Some(&c)).unwrap();
                        t.elapsed()
                    })
                    .collect(),
            );
            let d = engine.auth_chain_difference(&room, &sets, Some(&c)).unwrap();
            println!(
                "  with the v2.1 conflicted subgraph of those {} events: subgraph {} events, {:.2} ms",
                c.conflicted.len(),
                d.conflicted_subgraph.map_or(0, |s| s.len()),
                took.as_secs_f64() * 1e3
            );
        }
    }
    engine.compact().unwrap();
    let s = engine.stats().unwrap();
    let cf = |name: &str| s.column_families.iter().find(|c| c.name == name).map_or(0, |c| c.bytes);
    let total = next as f64;
    println!(
        "on disk after compaction: auth {} bytes = {:.2} bytes/event; strings+nids {:.1} bytes/event",
        cf("auth"),
        cf("auth") as f64 / total,
        (cf("strings") + cf("nids")) as f64 / total
    );
}
