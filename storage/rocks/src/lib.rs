//! mxstate-rocks: the RocksDB backend of the engine's key-value seam.
//!
//! [`open`] opens an mxstate database in a directory: one RocksDB
//! database with a column family per key space, and the engine over it.
//! [`Scratch`] is a sort buffer on RocksDB for bulk imports.
#![deny(clippy::unwrap_used)]

mod error;
mod kv;
mod open;
mod scratch;

pub use error::rocks as rocks_error;
pub use kv::{RocksConfig, RocksKv};
pub use open::{open, open_store, open_with};
pub use scratch::{Scratch, ScratchIter};
