//! mxstate-storage: Matrix room state as delta chains and roaring-bitmap
//! snapshots on RocksDB.
//!
//! The public surface is small: [`Engine`] and the types it takes and
//! returns. The on-disk format lives in `format/` (documented byte by byte
//! in docs/design.md), the key-value seam in `kv/`, the algorithms in
//! `engine/`.
#![deny(clippy::unwrap_used)]

mod engine;
mod error;
mod filter;
mod format;
mod ids;
pub mod import;
mod kv;
mod state;

pub use engine::{CfStats, ChainPolicy, Engine, EngineOptions, GroupState, NewGroup, RocksConfig, Stats};
pub use error::{Error, Result};
pub use filter::{StateFilter, TypeScope};
pub use ids::{EventId, GroupId, RoomId};
pub use state::{sorted_entries, GroupDelta, StateDelta, StateKey, StateMap};
