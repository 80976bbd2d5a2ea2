//! The write path: a transaction with its overlay, the chain policy that
//! places new groups, the room index, storing groups and purging them.

pub mod chain;
pub mod deletion;
pub mod event_map;
pub mod purge;
pub mod room_index;
pub mod store;
pub mod txn;

pub use chain::ChainPolicy;
pub use store::{GroupState, NewGroup};
pub use txn::{Txn, WriterMemory};
