//! Deterministic, streaming generator of Synapse-shaped state-group dumps.
//!
//! [`write_dump`] writes a plain-format SQL dump in Synapse's schema
//! (`state_groups`, `state_group_edges`, `state_groups_state`,
//! `event_to_state_groups`) holding a synthetic but Synapse-shaped state
//! history; [`Generator`] yields the same history group by group, for
//! benchmarks and tests.
//!
//! The same [`SynthOptions`] (seed included) always give the same bytes.
//! Memory is bounded by the members of one room: each COPY block is written
//! by regenerating the history from the seed.
//!
//! ```
//! use mxstate_synth::{write_dump, Generator, SynthOptions};
//!
//! let opts = SynthOptions { rooms: 2, members: 50, seed: 1, ..Default::default() };
//! let mut sql = Vec::new();
//! let summary = write_dump(&opts, &mut sql)?;
//! assert_eq!(summary.bytes_written, sql.len() as u64);
//!
//! // The same history, group by group, without formatting.
//! let mut generator = Generator::new(&opts)?;
//! let mut rows = 0;
//! while let Some(group) = generator.next_group() {
//!     rows += group.row_count() as u64;
//! }
//! assert_eq!(rows, summary.state_rows);
//! # Ok::<(), mxstate_synth::SynthError>(())
//! ```

mod chain_cover;
mod dump;
mod error;
mod generator;
pub mod ids;
mod members;
mod options;
mod rng;
mod room;
mod state;

pub use dump::{write_auth_dump, write_dump, SynthSummary};
pub use error::SynthError;
pub use generator::{groups, Generator, GroupRef, Groups, StateRow, SynthGroup};
pub use members::Membership;
pub use options::{RoomSpec, SynthOptions, MAX_STATE_DELTA_HOPS};
pub use room::{INITIAL_STATE_EVENTS, MEMBER, WIDGETS};
