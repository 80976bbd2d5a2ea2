//! The short load run against `mxstate serve`: 16 clients (4 writing) for
//! 3 seconds over a unix socket, every answer checked against what the
//! writers acknowledged. `serve-bench` runs the long one (64 clients,
//! 60 s) and prints the figures for docs/benchmarks.md.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::Duration;

use mxstate_api::StateStore;
use mxstate_engine::EngineOptions;
use mxstate_tests::load::{run_load, LoadConfig};
use mxstate_tests::served::Served;

#[test]
fn many_clients_get_right_answers() {
    let served = Served::start(EngineOptions::default());
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let cfg = LoadConfig {
        clients: 16,
        writers: 4,
        duration: Duration::from_secs(3),
        seed: 7,
    };
    let report = rt.block_on(run_load(|| Arc::new(served.client()) as Arc<dyn StateStore>, &cfg));
    println!("{report}");
    assert_eq!(report.failures_total, 0, "{:?}", report.failures);
    assert!(report.checked > 100, "too few answers checked: {report}");
    for s in &report.shapes {
        assert!(s.requests > 0, "no {} request ran", s.name);
    }
}

/// Where the service answers reads: a cold read (a group not in the
/// engine's caches, after a restart) needs the store and runs on the
/// blocking pool, not on a runtime thread; the same read again is answered
/// from the caches on the connection's task. Both give the stored state.
#[test]
fn cold_reads_run_on_the_pool_and_cached_ones_inline() {
    use mxstate_api::{EventId, RoomId, StateFilter, StateKey, StateMap};

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let reads = |served: &Served| -> (u64, u64) {
        let stats: serde_json::Value = serde_json::from_str(&rt.block_on(served.client().stats()).unwrap()).unwrap();
        let n = |k: &str| {
            stats["service"][k]
                .as_u64()
                .unwrap_or_else(|| panic!("no {k} in {stats}"))
        };
        (n("reads_cached"), n("reads_blocking"))
    };
    let served = Served::start(EngineOptions::default());
    let mut state = StateMap::default();
    for i in 0..200 {
        state.insert(
            StateKey::new("m.room.member", format!("@u{i}:x")).unwrap(),
            EventId::parse(format!("$e{i}")).unwrap(),
        );
    }
    let room = RoomId::parse("!r:x").unwrap();
    let event = EventId::parse("$e0").unwrap();
    let g = rt
        .block_on(
            served
                .client()
                .store_state_group(event, room, None, None, state.clone()),
        )
        .unwrap();
    let served = served.restart(EngineOptions::default());
    let client = served.client();
    let read = || {
        rt.block_on(client.state_for_groups(vec![g], StateFilter::all()))
            .unwrap()
            .remove(&g)
            .unwrap()
    };
    assert_eq!(reads(&served), (0, 0));
    assert_eq!(read(), state, "cold");
    assert_eq!(reads(&served), (0, 1), "the cold read ran on the pool");
    assert_eq!(read(), state, "cached");
    assert_eq!(reads(&served), (1, 1), "the cached read was answered inline");
}
