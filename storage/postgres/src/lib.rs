//! mxstate-postgres: mxstate's key-value seam on PostgreSQL.
//!
//! The records live in tables of a database the admin already runs,
//! replicates and backs up (`schema`): recent records one a row of
//! `mxstate_rows (cf, k, v)`, older ones folded into compressed packs of
//! many records a row, `mxstate_packs (cf, lo, n, data)`. `bytea` compares
//! byte by byte, so the primary keys' order is the engine's key order:
//! reads are index range reads, merged over the two tables.
//!
//! - [`conn`]: connections on threads of their own, so that the engine's
//!   blocking calls work from any thread, async runtimes included;
//! - [`PgKv`]: the `KvStore`: atomic batches as one transaction, reads
//!   over rows and packs (`layers`), paged scans in bounded memory;
//! - `pack`: the encoding of a pack; [`fold`]: rows into packs;
//! - `schema`: the tables, and the move from the one-table layout;
//! - [`lease`]: ownership of the database by one process at a time (a
//!   session advisory lock, and a lease row whose generation fences every
//!   write), and the writing connection's reconnection after a failover.

pub mod conn;
mod error;
pub mod fold;
mod kv;
mod layers;
pub mod lease;
mod pack;
mod schema;
mod stmt;

pub use fold::{FoldPolicy, Folded};
pub use kv::{open, open_with, PgConfig, PgKv};

/// Whether `location` names a PostgreSQL database (a `postgresql://` or
/// `postgres://` URL) rather than a directory.
pub fn is_url(location: &str) -> bool {
    location.starts_with("postgresql://") || location.starts_with("postgres://")
}
