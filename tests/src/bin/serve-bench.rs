//! Figures of `mxstate serve` for docs/benchmarks.md:
//!
//! - `serve-bench load [CLIENTS] [SECONDS]`: CLIENTS clients (one in eight
//!   writing) for SECONDS over a unix socket, every answer checked;
//!   throughput and latency per request shape.
//! - `serve-bench overhead`: one client, one request at a time: one-key
//!   reads and one-group stores through the service against the same calls
//!   on an engine in this process (a database of the same content); then
//!   one-key reads from 16 clients for 10 s.
//!
//! The service runs in this process on its own runtime (two worker
//! threads), as `mxstate serve` would, behind a real unix socket.

use std::sync::Arc;
use std::time::{Duration, Instant};

use mxstate_api::{EventId, GroupId, RoomId, StateFilter, StateKey, StateMap, StateStore};
use mxstate_engine::EngineOptions;
use mxstate_tests::load::{run_load, LoadConfig};
use mxstate_tests::served::Served;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    match args.first().map(String::as_str) {
        Some("load") => {
            let clients = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(64);
            let secs = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(60);
            let served = Served::start(EngineOptions::default());
            let cfg = LoadConfig {
                clients,
                writers: (clients / 8).max(1),
                duration: Duration::from_secs(secs),
                seed: 1,
            };
            let report = rt.block_on(run_load(|| Arc::new(served.client()) as Arc<dyn StateStore>, &cfg));
            println!("load: {clients} clients ({} writing), {secs} s", cfg.writers);
            print!("{report}");
            if report.failures_total > 0 {
                eprintln!("wrong answers: {:?}", report.failures);
                std::process::exit(1);
            }
        }
        Some("overhead") => rt.block_on(overhead()),
        _ => {
            eprintln!("usage: serve-bench load [CLIENTS] [SECONDS] | serve-bench overhead");
            std::process::exit(2);
        }
    }
}

const MEMBERS: u64 = 1000;

fn key(n: u64) -> StateKey {
    StateKey::new("m.room.member", format!("@u{n}:x")).expect("key")
}

fn ev(n: u64) -> EventId {
    EventId::parse(format!("$e{n}")).expect("event")
}

/// A room of MEMBERS members as one root group and a chain of 200 deltas;
/// returns the last group.
async fn fill(store: &dyn StateStore) -> GroupId {
    let room = RoomId::parse("!bench:x").expect("room");
    let state: StateMap = (0..MEMBERS).map(|n| (key(n), ev(n))).collect();
    let mut g = store
        .store_state_group(ev(1_000_000), room.clone(), None, None, state)
        .await
        .expect("root");
    for i in 0..200 {
        let n = 2_000_000 + i;
        g = store
            .store_state_group(
                ev(n),
                room.clone(),
                Some(g),
                Some([(key(i), Some(ev(n)))].into()),
                StateMap::default(),
            )
            .await
            .expect("delta");
    }
    g
}

fn quantiles(mut v: Vec<u64>) -> (u64, u64) {
    v.sort_unstable();
    let q = |p: f64| {
        v.get(((v.len() as f64 * p) as usize).min(v.len() - 1))
            .copied()
            .unwrap_or(0)
    };
    (q(0.5), q(0.99))
}

async fn one_key_reads(store: &dyn StateStore, g: GroupId, n: u64) -> Vec<u64> {
    let mut lat = Vec::with_capacity(n as usize);
    for i in 0..n {
        let k = key(i % MEMBERS);
        let f = StateFilter::from_types([(k.event_type(), Some(k.state_key()))]);
        let t = Instant::now();
        let m = store.state_for_groups(vec![g], f).await.expect("read");
        lat.push(t.elapsed().as_nanos() as u64);
        assert_eq!(m[&g].len(), 1);
    }
    lat
}

async fn stores(store: &dyn StateStore, mut g: GroupId, n: u64) -> Vec<u64> {
    let room = RoomId::parse("!bench:x").expect("room");
    let mut lat = Vec::with_capacity(n as usize);
    for i in 0..n {
        let e = ev(3_000_000 + i + g * 10);
        let t = Instant::now();
        g = store
            .store_state_group(
                e.clone(),
                room.clone(),
                Some(g),
                Some([(key(i % MEMBERS), Some(e))].into()),
                StateMap::default(),
            )
            .await
            .expect("store");
        lat.push(t.elapsed().as_nanos() as u64);
    }
    lat
}

async fn overhead() {
    let local_dir = tempfile::tempdir().expect("tempdir");
    let local = mxstate_rocks::open_store(&local_dir.path().join("db"), EngineOptions::default()).expect("open");
    let served = Served::start(EngineOptions::default());
    let remote = served.client();
    let (gl, gr) = (fill(&local).await, fill(&remote).await);
    println!("| call | in-process p50 | via serve p50 | added p50 | in-process p99 | via serve p99 |");
    println!("|---|---:|---:|---:|---:|---:|");
    for (name, l, r) in [
        (
            "one-key read",
            one_key_reads(&local, gl, 20_000).await,
            one_key_reads(&remote, gr, 20_000).await,
        ),
        (
            "store one group (synced)",
            stores(&local, gl, 2_000).await,
            stores(&remote, gr, 2_000).await,
        ),
    ] {
        let ((l50, l99), (r50, r99)) = (quantiles(l), quantiles(r));
        println!(
            "| {name} | {:.1} µs | {:.1} µs | {:.1} µs | {:.1} µs | {:.1} µs |",
            l50 as f64 / 1e3,
            r50 as f64 / 1e3,
            (r50 as f64 - l50 as f64) / 1e3,
            l99 as f64 / 1e3,
            r99 as f64 / 1e3
        );
    }
    // Throughput of one-key reads from 16 clients.
    let clients: Vec<_> = (0..16).map(|_| served.client()).collect();
    let deadline = Instant::now() + Duration::from_secs(10);
    let start = Instant::now();
    let mut tasks = Vec::new();
    for (c, client) in clients.into_iter().enumerate() {
        tasks.push(tokio::spawn(async move {
            let mut n = 0u64;
            while Instant::now() < deadline {
                let k = key((n * 16 + c as u64) % MEMBERS);
                let f = StateFilter::from_types([(k.event_type(), Some(k.state_key()))]);
                client.state_for_groups(vec![gr], f).await.expect("read");
                n += 1;
            }
            n
        }));
    }
    let mut total = 0;
    for t in tasks {
        total += t.await.expect("client");
    }
    println!(
        "one-key reads, 16 clients, 10 s: {total} reads, {:.0} reads/s",
        total as f64 / start.elapsed().as_secs_f64()
    );
}
