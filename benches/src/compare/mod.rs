//! The pieces of the `compare` binary: mxstate against Synapse's own
//! PostgreSQL tables and queries, on the same synthetic dump.

pub mod mx;
pub mod pg;
pub mod report;

/// Errors of the comparison: anything, with a message.
pub type Res<T> = Result<T, Box<dyn std::error::Error + Send + Sync>>;
