//! Every conformance check, against the reference store and the RocksDB
//! store (default chain policy and a tiny one).

use mxstate_server_adapter::conformance::{run, CHECKS};
use mxstate_server_adapter::MemoryStore;
use mxstate_storage::EngineOptions;
use mxstate_tests::{rocks_store, small_policy_options};

macro_rules! checks {
    ($($name:ident),* $(,)?) => {
        mod memory {
            $(#[tokio::test] async fn $name() { super::run(stringify!($name), &super::MemoryStore::new()).await; })*
        }
        mod rocks {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)] async fn $name() {
                let (_dir, store) = super::rocks_store(super::EngineOptions::default());
                super::run(stringify!($name), &store).await;
            })*
        }
        mod rocks_small_policy {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)] async fn $name() {
                let (_dir, store) = super::rocks_store(super::small_policy_options());
                super::run(stringify!($name), &store).await;
            })*
        }
        #[test]
        fn every_check_is_run() {
            let listed: Vec<&str> = vec![$(stringify!($name)),*];
            assert_eq!(listed, CHECKS.to_vec());
        }
    };
}

checks!(
    delta_chain,
    filters,
    removals_and_forks,
    long_chains,
    chosen_ids_and_errors,
    batch_is_atomic,
    event_mappings,
    current_state,
    purge_room,
    purge_groups,
);
