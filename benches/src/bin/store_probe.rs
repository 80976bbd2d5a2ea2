//! Single stores as `compare` times them, on an existing database, for
//! profiling: `cargo run --release -p mxstate-benches --bin store_probe --
//! DB N` opens the RocksDB database DB (a copy: it is written to) without
//! syncing writes, then stores N one-member joins one `store_group` call
//! each, chained from the newest group, with hash-form event ids, and
//! prints the median, the mean and some percentiles. With a third
//! argument `positions` it also prints the mean time of the stores at each
//! position modulo 64 (one store in 64 per string kind packs a `nids`
//! block).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use mxstate_engine::{EngineOptions, EventId, GroupState, NewGroup, StateDelta, StateKey};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let db = args.get(1).expect("DB");
    let n: u64 = args.get(2).map_or(1000, |a| a.parse().expect("N: a number of stores"));
    let positions = match args.get(3).map(String::as_str) {
        None => false,
        Some("positions") => true,
        Some(other) => panic!("unknown third argument {other:?} (expected `positions`)"),
    };
    let rocks = mxstate_rocks::RocksConfig {
        sync_writes: false,
        ..Default::default()
    };
    let opts = EngineOptions {
        create: false,
        ..EngineOptions::default()
    };
    let engine = mxstate_rocks::open_with(std::path::Path::new(db), opts, &rocks).unwrap();
    let mut prev = engine.max_group().unwrap().expect("a database with groups");
    let room = engine.group_room(prev).unwrap();
    let mut times: Vec<Duration> = Vec::with_capacity(n as usize);
    for i in 0..n {
        let mut hash = [0u8; 32];
        hash[..8].copy_from_slice(&(i ^ 0x5eed_5eed).wrapping_mul(0x9E37_79B9_7F4A_7C15).to_le_bytes());
        hash[8..16].copy_from_slice(&i.to_le_bytes());
        let event = EventId::parse(format!("${}", URL_SAFE_NO_PAD.encode(hash))).unwrap();
        let mut delta = StateDelta::new();
        delta.insert(
            StateKey::new("m.room.member", format!("@probe{i}:probe.example")).unwrap(),
            Some(event.clone()),
        );
        let t = Instant::now();
        prev = engine
            .store_group(NewGroup {
                id: None,
                room_id: &room,
                event_id: &event,
                state: GroupState::Delta { prev, delta: &delta },
            })
            .unwrap();
        times.push(t.elapsed());
    }
    if positions {
        let mut sums = [(Duration::ZERO, 0u32); 64];
        for (i, t) in times.iter().enumerate() {
            if let Some((sum, count)) = sums.get_mut(i % 64) {
                *sum += *t;
                *count += 1;
            }
        }
        let means: Vec<String> = sums
            .iter()
            .map(|(sum, count)| format!("{:.0}", sum.as_secs_f64() * 1e6 / f64::from((*count).max(1))))
            .collect();
        println!("mean µs by store position modulo 64: {}", means.join(" "));
    }
    let total: Duration = times.iter().sum();
    times.sort_unstable();
    let at = |q: f64| {
        let i = ((times.len() as f64 - 1.0) * q).round() as usize;
        times.get(i).copied().unwrap_or_default().as_secs_f64() * 1e6
    };
    println!(
        "{n} stores: median {:.2} µs, mean {:.2} µs (p10 {:.2}, p90 {:.2}, p99 {:.2}, max {:.0} µs)",
        at(0.5),
        total.as_secs_f64() * 1e6 / n.max(1) as f64,
        at(0.1),
        at(0.9),
        at(0.99),
        at(1.0)
    );
}
