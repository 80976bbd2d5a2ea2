//! The on-disk format: every key and value layout (see docs/design.md),
//! each with its encoder and decoder. This is where bytes from disk are
//! decoded: no indexing that can panic.
#![deny(clippy::indexing_slicing)]

pub mod auth;
pub mod counters;
pub mod deletion;
pub mod delta;
pub mod event_bucket;
pub mod event_key;
pub mod group;
pub mod keys;
pub mod nid_block;
pub mod record;
pub mod snapshot;
pub mod values;
pub mod varint;
pub mod version;
