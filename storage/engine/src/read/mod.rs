//! The read path: a `StateFilter` in interned ids, a group's state resolved
//! along its physical chain (the engine turns it into a shared view).

pub mod filter;
pub mod resolve;

pub use filter::IFilter;
