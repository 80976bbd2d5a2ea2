//! The one error type of the state API, with a [`kind`](Error::kind)
//! callers branch on.

use std::path::PathBuf;

/// Result alias for the state API.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A backend's own error, carried boxed so that no backend type crosses the API.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// What kind of failure an [`Error`] is: what a caller can branch on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// A group, room or database that does not exist.
    NotFound,
    /// The caller's input is not acceptable (bad identifier, wrong room, ...).
    InvalidInput,
    /// The request conflicts with what is stored (an id taken, an import running).
    Conflict,
    /// Stored bytes do not decode, or the database is not one this build reads.
    Corrupt,
    /// An id or size no longer fits the format's integer types.
    Capacity,
    /// The key-value backend or the file system failed.
    Backend,
    /// A bug: a broken invariant, a panicked task, a poisoned lock.
    Internal,
}

/// Everything that can go wrong behind the state API.
///
/// Input errors name the offending value; corruption errors name where the
/// bad bytes were found.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The group does not exist.
    #[error("state group {0} does not exist")]
    UnknownGroup(u64),
    /// The room is not known.
    #[error("unknown room {0}")]
    UnknownRoom(String),
    /// No database where one was named (a missing or empty directory), and
    /// creation was not asked for.
    #[error("{0}: no database here")]
    NoDatabase(String),

    /// A room id not of the form `!opaque[:server]`.
    #[error("invalid room id {0:?}: expected '!opaque' or '!opaque:server'")]
    InvalidRoomId(String),
    /// An event id not of the form `$opaque`.
    #[error("invalid event id {0:?}: expected '$opaque'")]
    InvalidEventId(String),
    /// An empty event type.
    #[error("empty event type in state key (state_key {0:?})")]
    EmptyEventType(String),
    /// Group id 0 is reserved.
    #[error("state group id 0 is reserved")]
    ReservedGroupId,
    /// The prev group belongs to another room.
    #[error("state group {group}: prev group {prev} is in room {prev_room}, not {room}")]
    PrevGroupInOtherRoom {
        group: u64,
        prev: u64,
        room: String,
        prev_room: String,
    },
    /// A group named for purging belongs to another room.
    #[error("state group {group} is not in room {room}")]
    GroupNotInRoom { group: u64, room: String },
    /// The path holds something that is not an mxstate database.
    #[error("{0}: not an mxstate database")]
    NotADatabase(String),

    /// A service address that is not `unix:PATH` or `tcp:HOST:PORT`.
    #[error("invalid service address {0}")]
    InvalidAddress(String),
    /// A request that breaks the protocol's rules.
    #[error("invalid request: {0}")]
    InvalidRequest(String),
    /// The state service cannot be reached (down, restarting, refusing).
    #[error("state service {address} unavailable: {reason}")]
    Unavailable { address: String, reason: String },
    /// An error the state service reported, with its kind.
    #[error("{message}")]
    Remote { kind: ErrorKind, message: String },

    /// Another process has the database open (a running `mxstate serve`).
    #[error(
        "{0}: the database is in use by another process (a running `mxstate serve`? read through it with --server)"
    )]
    DatabaseInUse(String),

    /// An event added again with other auth events than it has.
    #[error("event {0} is already recorded with other auth events")]
    AuthEventsDiffer(String),
    /// A caller-chosen group id that is already used.
    #[error("state group id {0} is already taken")]
    GroupIdTaken(u64),
    /// An import into this database started and did not finish.
    #[error("an import into this database did not complete ({0}); rerun the import to completion")]
    ImportIncomplete(String),

    /// Bytes read from disk do not decode.
    #[error("corrupt {what} at {location}: {detail}")]
    Corrupt {
        what: &'static str,
        location: String,
        detail: String,
    },
    /// The database was written by a format this build cannot read.
    #[error("database format version {found} is not supported (this build reads version {supported})")]
    UnsupportedFormat { found: u32, supported: u32 },

    /// An id or count outgrew the integer type the format gives it.
    #[error("capacity exceeded: {what} {value} does not fit in {limit}")]
    Capacity {
        what: &'static str,
        value: u64,
        limit: &'static str,
    },

    /// File-system failure on a path the store manages.
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The key-value backend failed; `kind` is the backend's own
    /// classification (a corruption it detected is [`ErrorKind::Corrupt`]).
    #[error("{backend}: {source}")]
    Backend {
        backend: &'static str,
        kind: ErrorKind,
        #[source]
        source: BoxError,
    },

    /// A broken invariant or a failed task: a bug, named.
    #[error("internal error: {0}")]
    Internal(String),
}

impl Error {
    /// What kind of failure this is.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::UnknownGroup(_) | Error::UnknownRoom(_) | Error::NoDatabase(_) => ErrorKind::NotFound,
            Error::InvalidRoomId(_)
            | Error::InvalidEventId(_)
            | Error::EmptyEventType(_)
            | Error::ReservedGroupId
            | Error::PrevGroupInOtherRoom { .. }
            | Error::GroupNotInRoom { .. }
            | Error::NotADatabase(_)
            | Error::InvalidAddress(_)
            | Error::InvalidRequest(_) => ErrorKind::InvalidInput,
            Error::GroupIdTaken(_)
            | Error::AuthEventsDiffer(_)
            | Error::ImportIncomplete(_)
            | Error::DatabaseInUse(_) => ErrorKind::Conflict,
            Error::Corrupt { .. } | Error::UnsupportedFormat { .. } => ErrorKind::Corrupt,
            Error::Capacity { .. } => ErrorKind::Capacity,
            Error::Io { .. } => ErrorKind::Backend,
            Error::Backend { kind, .. } | Error::Remote { kind, .. } => *kind,
            Error::Unavailable { .. } => ErrorKind::Backend,
            Error::Internal(_) => ErrorKind::Internal,
        }
    }

    /// Bad bytes found at `location`.
    pub fn corrupt(what: &'static str, location: impl Into<String>, detail: impl Into<String>) -> Self {
        Error::Corrupt {
            what,
            location: location.into(),
            detail: detail.into(),
        }
    }

    /// A backend failure of the given kind.
    pub fn backend(backend: &'static str, kind: ErrorKind, source: impl Into<BoxError>) -> Self {
        Error::Backend {
            backend,
            kind,
            source: source.into(),
        }
    }

    /// A broken invariant, named.
    pub fn internal(what: impl Into<String>) -> Self {
        Error::Internal(what.into())
    }

    /// Checks that `value` fits the narrower integer type `T` of the format.
    pub fn fit<T: TryFrom<u64>>(what: &'static str, value: u64, limit: &'static str) -> Result<T> {
        T::try_from(value).map_err(|_| Error::Capacity { what, value, limit })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds() {
        assert_eq!(Error::UnknownGroup(3).kind(), ErrorKind::NotFound);
        assert_eq!(Error::ReservedGroupId.kind(), ErrorKind::InvalidInput);
        assert_eq!(Error::GroupIdTaken(1).kind(), ErrorKind::Conflict);
        assert_eq!(Error::corrupt("x", "y", "z").kind(), ErrorKind::Corrupt);
        let io = std::io::Error::other("disk");
        assert_eq!(
            Error::backend("rocksdb", ErrorKind::Corrupt, io).kind(),
            ErrorKind::Corrupt
        );
        assert_eq!(Error::internal("bug").kind(), ErrorKind::Internal);
    }

    #[test]
    fn fit_refuses_what_does_not_fit() {
        assert_eq!(Error::fit::<u32>("room nid", 7, "u32").ok(), Some(7u32));
        let e = Error::fit::<u32>("room nid", u64::from(u32::MAX) + 1, "u32").unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Capacity);
        assert!(e.to_string().contains("room nid 4294967296"), "{e}");
    }
}
