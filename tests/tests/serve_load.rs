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
