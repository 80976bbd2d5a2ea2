//! Every conformance check against the reference model and the engine on
//! RocksDB (default chain policy and a tiny one). The engine's own tests
//! run the suite on the in-memory key-value store. The `remote` suites run
//! it through `RemoteStore` against a service started by the test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use mxstate_api::MemoryStore;
use mxstate_engine::EngineOptions;
use mxstate_tests::served::served_store;
use mxstate_tests::{rocks_store, small_policy_options};

mxstate_conformance::suite!(memory, ((), MemoryStore::new()));
mxstate_conformance::suite!(rocks, rocks_store(EngineOptions::default()));
mxstate_conformance::suite!(rocks_small_policy, rocks_store(small_policy_options()));
// The same engine behind `mxstate serve`, through RemoteStore.
mxstate_conformance::suite!(remote, served_store(EngineOptions::default()));
mxstate_conformance::suite!(remote_small_policy, served_store(small_policy_options()));
