//! The on-disk format: every key and value layout (see docs/design.md).

pub mod delta;
pub mod group;
pub mod keys;
pub mod snapshot;
pub mod varint;
pub mod version;
