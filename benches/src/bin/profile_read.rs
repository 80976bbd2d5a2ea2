//! A read loop to profile: `cargo run --release -p mxstate-benches --bin profile_read -- MEMBERS FILTER SECONDS [view|trait]`
//! with FILTER one of full, one, nomembers; or a store loop with FILTER
//! `store` (one-member deltas, one `store_group` call each, no sync).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use mxstate_benches::build_room;
use mxstate_engine::StateFilter;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let members: u64 = args.get(1).map_or(100_000, |a| a.parse().expect("members"));
    let filter = match args.get(2).map_or("full", String::as_str) {
        "one" => StateFilter::from_types([("m.room.power_levels", Some(""))]),
        "nomembers" => StateFilter::all_except_types(["m.room.member"]),
        _ => StateFilter::all(),
    };
    let secs: u64 = args.get(3).map_or(10, |a| a.parse().expect("seconds"));
    let view = args.get(4).is_some_and(|a| a == "view");
    let through_trait = args.get(4).is_some_and(|a| a == "trait");
    let room = build_room(members, 5_000);
    if args.get(2).is_some_and(|a| a == "store") {
        let start = Instant::now();
        let (mut prev, mut n) = (room.latest, 0u64);
        while start.elapsed() < Duration::from_secs(secs) {
            let e = mxstate_benches::event(20_000_000 + n);
            let d: mxstate_engine::StateDelta = [(mxstate_benches::member(members + n), Some(e.clone()))].into();
            prev = room
                .engine
                .store_group(mxstate_engine::NewGroup {
                    id: None,
                    room_id: &room.room,
                    event_id: &e,
                    state: mxstate_engine::GroupState::Delta { prev, delta: &d },
                })
                .unwrap();
            n += 1;
        }
        println!(
            "{n} stores: {:.2} µs each",
            start.elapsed().as_secs_f64() * 1e6 / n as f64
        );
        return;
    }
    if through_trait {
        // `StateStore::state_view` through the async trait, as a homeserver calls it.
        use mxstate_api::StateStore;
        let store = mxstate_engine::EngineStore::new(std::sync::Arc::new(room.engine));
        let rt = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .unwrap();
        let start = Instant::now();
        let (mut n, mut entries) = (0u64, 0);
        while start.elapsed() < Duration::from_secs(secs) {
            entries = rt
                .block_on(store.state_view(room.latest, filter.clone()))
                .unwrap()
                .len();
            n += 1;
        }
        println!(
            "{n} reads through the trait of {entries} entries: {:.1} µs each",
            start.elapsed().as_secs_f64() * 1e6 / n as f64
        );
        return;
    }
    let start = Instant::now();
    let mut n = 0u64;
    let mut entries = 0;
    while start.elapsed() < Duration::from_secs(secs) {
        entries = if view {
            room.engine.state_view(room.latest, &filter).unwrap().len()
        } else {
            room.engine.state_for_group(room.latest, &filter).unwrap().len()
        };
        n += 1;
    }
    println!(
        "{n} reads of {entries} entries: {:.1} µs each",
        start.elapsed().as_secs_f64() * 1e6 / n as f64
    );
}
