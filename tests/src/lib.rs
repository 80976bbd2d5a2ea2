//! Helpers shared by the cross-crate tests.
#![allow(clippy::unwrap_used, clippy::expect_used)]

pub mod load;
pub mod served;

use mxstate_engine::{ChainPolicy, EngineOptions, EngineStore};

pub mod crash;

pub mod fault;

/// Engine options with a tiny chain policy, so that checkpoints and
/// snapshots happen within a few groups.
pub fn small_policy_options() -> EngineOptions {
    EngineOptions {
        policy: ChainPolicy::new(vec![3, 3, 2])
            .expect("valid policy")
            .with_snapshot_min_delta(3),
        cache_bytes: 1 << 20,
        ..EngineOptions::default()
    }
}

/// A RocksDB-backed store in a fresh temporary directory.
pub fn rocks_store(opts: EngineOptions) -> (tempfile::TempDir, EngineStore) {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = mxstate_rocks::open_store(&dir.path().join("db"), opts).expect("open store");
    (dir, store)
}

/// A runtime for tests that drive async stores from sync code.
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}
