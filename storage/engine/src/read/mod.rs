//! The read path: a `StateFilter` in interned ids, a group's state resolved
//! along its physical chain, and the zero-copy view of the result.

pub mod filter;
pub mod resolve;
pub mod view;

pub use filter::IFilter;
pub use view::{SectionView, StateView};
