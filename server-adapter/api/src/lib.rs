//! mxstate-api: what a homeserver programs against, without any storage
//! backend in its dependency tree.
//!
//! - identifiers ([`RoomId`], [`EventId`], [`GroupId`]), validated once here;
//! - state types ([`StateKey`], [`StateMap`], [`StateDelta`], [`GroupDelta`])
//!   and [`StateFilter`], with Synapse's meaning;
//! - the [`StateStore`] trait, Synapse's state-group calls made async;
//! - [`MemoryStore`], the plain reference model every store is tested
//!   against (crate `mxstate-conformance` holds the shared suite);
//! - one [`Error`] type whose [`kind`](Error::kind) callers branch on.
//!
//! With the `ruma` feature, identifiers convert to and from ruma's.
#![deny(clippy::unwrap_used)]

mod auth;
mod error;
mod filter;
mod ids;
mod memory;
#[cfg(feature = "ruma")]
mod ruma;
mod state;
mod store;
mod view;

pub use auth::{AuthDifference, AuthEvents, ConflictedSubgraph};
pub use error::{BoxError, Error, ErrorKind, Result};
pub use filter::{StateFilter, TypeScope};
pub use ids::{EventId, GroupId, RoomId};
pub use memory::MemoryStore;
pub use state::{sorted_entries, GroupDelta, StateDelta, StateKey, StateMap};
pub use store::{GroupContent, GroupWrite, StateStore};
pub use view::{PackedTexts, StateTable, StateView, TableId, TextColumn, ViewPart, Visible};
