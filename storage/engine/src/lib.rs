//! mxstate-engine: Matrix room state as delta chains and roaring-bitmap
//! snapshots, over any sorted key-value store.
//!
//! Layers, from the disk up (each depends only on those before it):
//! - [`kv`]: the key-value seam ([`KvStore`]) and what a backend promises;
//! - `format`: every key and value layout, encoders and decoders
//!   (docs/design.md describes them byte by byte);
//! - `delta`: merge-joins over sorted states and deltas;
//! - `access`: the data-access trait the algorithms read through, its
//!   cached implementation, interned strings;
//! - `read`: resolving a group's state along its chain, views;
//! - `write`: transactions, chain placement, the room index, purges;
//! - `engine`: [`Engine`], the facade;
//! - `store`: [`EngineStore`], the async `StateStore` over an engine.
//!
//! No RocksDB here: crate `mxstate-rocks` provides the RocksDB backend.
#![deny(clippy::unwrap_used)]

mod access;
mod auth;
mod check;
mod delta;
mod engine;
mod format;
pub mod kv;
mod read;
mod store;
mod write;

pub use check::{CheckReport, Problem};
pub use engine::{AuthMark, CfStats, Engine, EngineOptions, ExportGroup, Stats};
pub use format::record::{decode_record, Record};
pub use format::{event_bucket, event_key, varint};
pub use kv::{KvMaintenance, KvStore, MemKv};
pub use store::EngineStore;
pub use write::{ChainPolicy, GroupState, NewGroup};

pub use mxstate_api::{
    sorted_entries, Error, ErrorKind, EventId, GroupDelta, GroupId, Result, RoomId, StateDelta, StateFilter, StateKey,
    StateMap, StateTable, StateView, TableId, ViewPart, Visible,
};

#[cfg(test)]
mod checked_build {
    /// `tests/run` builds the workspace's crates with overflow checks and
    /// debug assertions, and says so in `MXSTATE_CHECKED_BUILD`.
    #[test]
    fn the_test_suite_checks_overflow_and_debug_assertions() {
        if std::env::var_os("MXSTATE_CHECKED_BUILD").is_none() {
            return;
        }
        let debug_assertions = std::hint::black_box(cfg!(debug_assertions));
        assert!(debug_assertions, "debug assertions are off");
        let max = std::hint::black_box(u64::MAX);
        let wrapped = std::panic::catch_unwind(|| max + std::hint::black_box(1));
        assert!(wrapped.is_err(), "u64::MAX + 1 did not panic: overflow checks are off");
    }
}
