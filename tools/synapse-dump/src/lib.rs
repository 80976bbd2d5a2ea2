//! Synapse room-state I/O for mxstate.
//!
//! Synapse keeps room state in four PostgreSQL tables (`state_groups`,
//! `state_group_edges`, `state_groups_state`, `event_to_state_groups`),
//! and each event's auth events in `event_auth` (main database).
//! This crate reads their rows as [`Record`]s (and, when asked for with
//! [`Include::StateAndAuth`], `event_auth` rows as [`AuthEdge`]s) from a `pg_dump`
//! ([`DumpReader`]: plain, gzip, zstd, custom/tar/directory format via
//! `pg_restore`) or from a live database ([`LiveSource`]), writes them back as
//! a psql-loadable SQL file ([`CopyWriter`]), knows Synapse's DDL for them
//! ([`schema`]), and can start a private PostgreSQL server for tests
//! ([`PgCluster`]).
//!
//! ```no_run
//! use mxstate_synapse_dump::{DumpReader, Record};
//! let mut groups = 0;
//! for record in DumpReader::open("synapse.sql.zst".as_ref())? {
//!     if let Record::StateGroup { .. } = record? {
//!         groups += 1;
//!     }
//! }
//! # Ok::<(), mxstate_synapse_dump::DumpError>(())
//! ```

pub mod copy;
pub mod error;
mod header;
mod input;
mod lines;
pub mod live;
pub mod pgcluster;
mod pgtools;
pub mod reader;
pub mod record;
mod row;
pub mod schema;
pub mod table;
pub mod writer;

pub use error::{DumpError, Location};
pub use live::{LiveRecords, LiveSource};
pub use pgcluster::PgCluster;
pub use reader::DumpReader;
pub use record::{AuthEdge, Include, Record, SourceRow};
pub use schema::STATE_SCHEMA_SQL;
pub use table::Table;
pub use writer::{CopyWriter, Schema};
