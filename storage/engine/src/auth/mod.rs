//! The auth index: each room's auth events as an in-memory graph of dense
//! local ids (loaded from the `auth` family, kept current by the writer),
//! and the questions state resolution and joins ask of it, answered with
//! roaring bitmaps over those ids.

mod cache;
mod graph;
mod query;

pub use cache::{GraphCache, SharedGraph};
pub use graph::AuthGraph;
pub use query::{Bits, Conflicted};
