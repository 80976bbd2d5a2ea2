//! A cold full state, timed inside the process (a fresh process's timing
//! from outside moves by tens of milliseconds on a shared VM):
//! `cargo run --release -p mxstate-benches --bin cold_state -- DB GROUP`
//! opens the RocksDB database DB and prints, in microseconds, the open, the
//! first full state of GROUP as a view through `Engine::state_view` (nothing
//! cached: the cold read), then a second (warm) one, and the entries.
//! With a third argument N it does so N times in the same process, closing
//! the engine each time: the later rounds are cold for the engine and
//! RocksDB (fresh caches) but reuse the process's heap, so they show the
//! read without a fresh process's first-touch page faults.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Instant;

use mxstate_engine::{EngineOptions, StateFilter};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let db = args.get(1).expect("DB");
    let group: u64 = args.get(2).expect("GROUP").parse().expect("GROUP: a group id");
    let rounds: usize = match args.get(3) {
        Some(n) => n.parse().expect("N: a number of rounds"),
        None => 1,
    };
    for round in 0..rounds {
        if rounds > 1 {
            print!("round {round}: ");
        }
        one_round(db, group, round + 1 == rounds);
    }
}

fn one_round(db: &str, group: u64, last: bool) {
    let opts = EngineOptions {
        create: false,
        ..EngineOptions::default()
    };
    let t = Instant::now();
    let engine = mxstate_rocks::open(std::path::Path::new(db), opts).unwrap();
    let open = t.elapsed();
    let t = Instant::now();
    let cold = engine.state_view(group, &StateFilter::all()).unwrap();
    let cold_t = t.elapsed();
    let t = Instant::now();
    let warm = engine.state_view(group, &StateFilter::all()).unwrap();
    let warm_t = t.elapsed();
    assert_eq!(cold.len(), warm.len());
    println!(
        "open {} us, cold full state {} us, warm {} us, {} entries",
        open.as_micros(),
        cold_t.as_micros(),
        warm_t.as_micros(),
        cold.len()
    );
    if last {
        engine.close_at_exit();
    } else {
        drop((cold, warm));
        drop(engine);
    }
}
