//! mxstate-postgres: mxstate's key-value seam on PostgreSQL.
//!
//! The records live in one table, `mxstate_kv (cf smallint, k bytea,
//! v bytea, primary key (cf, k))`, of a database the admin already runs,
//! replicates and backs up. `bytea` compares byte by byte, so the primary
//! key's order is the engine's key order: prefix scans and "last key with
//! a prefix" are index range reads.
//!
//! - [`conn`]: connections on threads of their own, so that the engine's
//!   blocking calls work from any thread, async runtimes included;
//! - [`PgKv`]: the `KvStore`: atomic batches as one transaction, paged
//!   scans in bounded memory;
//! - [`lease`]: ownership of the database by one process at a time (a
//!   session advisory lock, and a lease row whose generation fences every
//!   write), and the writing connection's reconnection after a failover.

pub mod conn;
mod error;
mod kv;
pub mod lease;

pub use kv::{open, open_with, PgConfig, PgKv};

/// Whether `location` names a PostgreSQL database (a `postgresql://` or
/// `postgres://` URL) rather than a directory.
pub fn is_url(location: &str) -> bool {
    location.starts_with("postgresql://") || location.starts_with("postgres://")
}
