//! The shared conformance suite against the engine on the in-memory
//! key-value store (the RocksDB backend runs it in the `tests` crate).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use mxstate_engine::{ChainPolicy, Engine, EngineOptions, EngineStore, MemKv};

fn store(policy: ChainPolicy) -> ((), EngineStore) {
    let opts = EngineOptions {
        policy,
        cache_bytes: 1 << 20,
        ..EngineOptions::default()
    };
    let engine = Engine::with_kv(Box::new(MemKv::new()), opts).expect("engine on MemKv");
    ((), EngineStore::new(Arc::new(engine)))
}

mxstate_conformance::suite!(memkv, store(ChainPolicy::default()));
mxstate_conformance::suite!(
    memkv_small_policy,
    store(
        ChainPolicy::new(vec![3, 3, 2])
            .expect("policy")
            .with_snapshot_min_delta(3)
    )
);
