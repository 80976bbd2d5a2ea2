//! PostgreSQL's errors as the API's backend errors.

use mxstate_api::{Error, ErrorKind};

/// Wraps a PostgreSQL error, classified by its SQLSTATE class.
pub fn pg(e: postgres::Error) -> Error {
    let kind = match e.code().map(|c| c.code()) {
        // 23: integrity constraint, 40: transaction rollback (serialization, deadlock).
        Some(c) if c.starts_with("23") || c.starts_with("40") => ErrorKind::Conflict,
        // 22: data exception, 42: syntax or access rule.
        Some(c) if c.starts_with("22") || c.starts_with("42") => ErrorKind::InvalidInput,
        // XX: internal error (data corrupted, index corrupted).
        Some(c) if c.starts_with("XX") => ErrorKind::Corrupt,
        _ => ErrorKind::Backend,
    };
    Error::backend("postgresql", kind, e)
}
