//! The adapter a homeserver calls instead of Synapse's state SQL.
//!
//! [`StateStore`] is the trait (no RocksDB type crosses it); [`RocksStore`]
//! is the production implementation, [`MemoryStore`] the obviously-correct
//! reference both are tested against (see `conformance`).

pub mod conformance;
mod error;
mod memory;
mod rocks;
mod store;

pub use error::{AdapterError, AdapterResult};
pub use memory::MemoryStore;
pub use rocks::RocksStore;
pub use store::{GroupContent, GroupWrite, StateStore};

pub use mxstate_storage::{EventId, GroupDelta, GroupId, RoomId, StateDelta, StateFilter, StateKey, StateMap};
