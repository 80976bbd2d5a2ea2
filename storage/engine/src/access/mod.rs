//! Reading the committed database: the data-access trait ([`Source`]),
//! its cached implementation ([`Committed`]), interned strings.

mod cache;
mod committed;
pub mod event_index;
pub mod intern;
mod point;
mod source;

pub use cache::Caches;
pub use committed::Committed;
pub use source::{at, chain_of, Source};
