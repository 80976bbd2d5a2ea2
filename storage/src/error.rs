//! The engine's one error type.

use std::path::PathBuf;

/// Result alias for the storage engine.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in the storage engine.
///
/// Input errors name the offending value; corruption errors name the column
/// family and key where the bad bytes were found.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A RocksDB operation failed; its kind is kept.
    #[error("rocksdb: {0}")]
    Rocks(#[from] rocksdb::Error),
    /// Plain I/O failure (directory handling).
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The directory exists but holds no mxstate database.
    #[error("{0}: not an mxstate database")]
    NotADatabase(PathBuf),
    /// The directory does not exist and creation was not asked for.
    #[error("{0}: no database here")]
    NoDatabase(PathBuf),
    /// The database was written by a format this build cannot read.
    #[error("database format version {found} is not supported (this build reads version {supported})")]
    UnsupportedFormat { found: u32, supported: u32 },
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
    /// A room id not of the form `!opaque[:server]`.
    #[error("invalid room id {0:?}: expected '!opaque' or '!opaque:server'")]
    InvalidRoomId(String),
    /// An event id not of the form `$opaque`.
    #[error("invalid event id {0:?}: expected '$opaque'")]
    InvalidEventId(String),
    /// An empty event type.
    #[error("empty event type in state key (state_key {0:?})")]
    EmptyEventType(String),
    /// The group does not exist.
    #[error("state group {0} does not exist")]
    UnknownGroup(u64),
    /// The prev group belongs to another room.
    #[error("state group {group}: prev group {prev} is in room {prev_room}, not {room}")]
    PrevGroupInOtherRoom {
        group: u64,
        prev: u64,
        room: String,
        prev_room: String,
    },
    /// A caller-chosen group id that is already used.
    #[error("state group id {0} is already taken")]
    GroupIdTaken(u64),
    /// Group id 0 is reserved.
    #[error("state group id 0 is reserved")]
    ReservedGroupId,
    /// A group named for purging belongs to another room.
    #[error("state group {group} is not in room {room}")]
    GroupNotInRoom { group: u64, room: String },
    /// Bad input to an import, located by line (or row) and group.
    #[error("{}{}{detail}", line.map(|l| format!("line {l}: ")).unwrap_or_default(), group.map(|g| format!("state group {g}: ")).unwrap_or_default())]
    Import {
        line: Option<u64>,
        group: Option<u64>,
        detail: String,
    },
    /// The room is not known.
    #[error("unknown room {0}")]
    UnknownRoom(String),
}

impl Error {
    pub(crate) fn corrupt(what: &'static str, location: impl Into<String>, detail: impl Into<String>) -> Self {
        Error::Corrupt {
            what,
            location: location.into(),
            detail: detail.into(),
        }
    }
}
