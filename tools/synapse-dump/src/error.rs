//! The crate's one error type, [`DumpError`], and the [`Location`] it points at.

use std::fmt;
use std::io;
use std::sync::Arc;

use crate::table::Table;

/// Where an error happened: a source name (file path, `<stdin>`, a database
/// URL without password) and a 1-based line number (0 when unknown).
///
/// Displays as `file:line: `, `file: ` or nothing, so that error messages can
/// start with it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Location {
    /// The input's name; empty when not known (e.g. [`crate::copy::decode_line`]).
    pub file: Arc<str>,
    /// 1-based line number (or row number for a live database); 0 = none.
    pub line: u64,
}

impl Location {
    /// A location in `file` at 1-based `line` (0 = the file as a whole).
    pub fn new(file: &Arc<str>, line: u64) -> Self {
        Self {
            file: Arc::clone(file),
            line,
        }
    }

    /// The whole file `file`, no line.
    pub fn file(file: impl Into<Arc<str>>) -> Self {
        Self {
            file: file.into(),
            line: 0,
        }
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.file.is_empty(), self.line) {
            (true, 0) => Ok(()),
            (true, line) => write!(f, "line {line}: "),
            (false, 0) => write!(f, "{}: ", self.file),
            (false, line) => write!(f, "{}:{line}: ", self.file),
        }
    }
}

/// `"state_groups: "` or nothing.
fn table_prefix(table: &Option<Table>) -> String {
    table.map(|t| format!("{t}: ")).unwrap_or_default()
}

/// A postgres error on one line, with the server's message when there is one
/// (`postgres::Error` alone displays as just "db error").
fn pg_message(err: &postgres::Error) -> String {
    match err.as_db_error() {
        Some(db) => {
            let mut text = format!("{}: {} ({})", db.severity(), db.message(), db.code().code());
            if let Some(detail) = db.detail() {
                text.push_str(": ");
                text.push_str(detail);
            }
            text
        }
        None => err.to_string(),
    }
}

/// Everything that can go wrong in this crate. Each message is one line
/// starting with its [`Location`], e.g.
/// `synapse-small.sql:21280: state_groups_state: expected 5 columns, found 4`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DumpError {
    /// Reading or writing failed.
    #[error("{at}I/O error: {source}")]
    Io {
        /// Where.
        at: Location,
        /// The underlying error.
        #[source]
        source: io::Error,
    },

    /// A COPY field does not decode to valid UTF-8.
    #[error("{at}{}column {column}: invalid UTF-8", table_prefix(.table))]
    InvalidUtf8 {
        /// Where.
        at: Location,
        /// The table of the COPY block, when known.
        table: Option<Table>,
        /// 1-based column position in the line.
        column: usize,
    },

    /// A COPY line ends with a lone backslash (an escape with nothing after it).
    #[error("{at}{}column {column}: line ends in a lone backslash", table_prefix(.table))]
    DanglingBackslash {
        /// Where.
        at: Location,
        /// The table of the COPY block, when known.
        table: Option<Table>,
        /// 1-based column position in the line.
        column: usize,
    },

    /// A row has a different number of columns than its COPY header.
    #[error("{at}{table}: expected {expected} columns, found {found}")]
    ColumnCount {
        /// Where.
        at: Location,
        /// The table.
        table: Table,
        /// Columns named by the COPY header (or the table, when writing).
        expected: usize,
        /// Columns in the row.
        found: usize,
    },

    /// An integer column (a state group id) holds something else.
    #[error("{at}{table}: column {column}: not an integer: {value:?}")]
    BadNumber {
        /// Where.
        at: Location,
        /// The table.
        table: Table,
        /// The column's name.
        column: &'static str,
        /// The decoded text found instead.
        value: String,
    },

    /// A column that Synapse declares `NOT NULL` holds NULL (`\N`).
    #[error("{at}{table}: column {column} is NULL")]
    Null {
        /// Where.
        at: Location,
        /// The table.
        table: Table,
        /// The column's name.
        column: &'static str,
    },

    /// A state table's COPY header lacks a column this crate needs.
    #[error("{at}{table}: COPY header has no column {column:?}")]
    MissingColumn {
        /// Where (the COPY header line).
        at: Location,
        /// The table.
        table: Table,
        /// The missing column's name.
        column: &'static str,
    },

    /// A state table's COPY header cannot be parsed.
    #[error("{at}{table}: malformed COPY header")]
    BadCopyHeader {
        /// Where (the COPY header line).
        at: Location,
        /// The table.
        table: Table,
    },

    /// The input ends inside a COPY block: the dump is truncated.
    #[error("{at}{table}: input ends inside the COPY block started at line {copy_line} (truncated dump?)")]
    Truncated {
        /// Where the input ends (the partial last line, or one past the last line).
        at: Location,
        /// The table whose block is cut.
        table: String,
        /// The line of that block's `COPY` header.
        copy_line: u64,
    },

    /// A COPY block runs into SQL text (blank line or `--` comment) without its `\.` end marker.
    #[error("{at}{table}: COPY block started at line {copy_line} is not terminated by \\.")]
    Unterminated {
        /// The first line that cannot be a row.
        at: Location,
        /// The table.
        table: String,
        /// The line of the block's `COPY` header.
        copy_line: u64,
    },

    /// The input is not a PostgreSQL dump (plain SQL, custom, tar or directory format).
    #[error("{at}not a PostgreSQL dump: {reason}")]
    NotADump {
        /// Where it became clear.
        at: Location,
        /// Why.
        reason: String,
    },

    /// A complete dump without any of Synapse's state tables.
    #[error(
        "{at}no Synapse state tables (state_groups, state_group_edges, state_groups_state, event_to_state_groups) in this dump"
    )]
    NoStateTables {
        /// The input (line = its last line).
        at: Location,
    },

    /// A custom/tar/directory-format dump needs `pg_restore`, which is not installed.
    #[error("{at}this is a custom-format dump and pg_restore was not found (searched {searched})")]
    PgRestoreNotFound {
        /// The input.
        at: Location,
        /// The places looked in.
        searched: String,
    },

    /// `pg_restore` ran and failed.
    #[error("{at}pg_restore failed ({status}): {stderr}")]
    PgRestoreFailed {
        /// The input.
        at: Location,
        /// Its exit status.
        status: String,
        /// The end of what it printed on stderr, on one line.
        stderr: String,
    },

    /// A PostgreSQL client error (connecting, querying, streaming COPY).
    #[error("{at}{context}: {}", pg_message(.source))]
    Postgres {
        /// The database (URL without password) and row, when known.
        at: Location,
        /// What was being done.
        context: String,
        /// The underlying error.
        #[source]
        source: postgres::Error,
    },

    /// PostgreSQL server binaries (initdb, pg_ctl, ...) are not installed.
    #[error("PostgreSQL binaries not found: {program} (searched {searched})")]
    PgBinariesNotFound {
        /// The program looked for.
        program: &'static str,
        /// The places looked in.
        searched: String,
    },

    /// An external command (initdb, pg_ctl, psql, ...) failed.
    #[error("{command} failed ({status}): {stderr}")]
    Command {
        /// The command line, shortened.
        command: String,
        /// Its exit status (or why it could not start).
        status: String,
        /// The end of what it printed on stderr, on one line.
        stderr: String,
    },

    /// [`crate::writer::CopyWriter`] was used out of order (e.g. a row outside a table).
    #[error("COPY writer: {reason}")]
    WriterMisuse {
        /// What was wrong.
        reason: &'static str,
    },
}

impl DumpError {
    /// The location of the error, when it has one.
    pub fn location(&self) -> Option<&Location> {
        match self {
            Self::Io { at, .. }
            | Self::InvalidUtf8 { at, .. }
            | Self::DanglingBackslash { at, .. }
            | Self::ColumnCount { at, .. }
            | Self::BadNumber { at, .. }
            | Self::Null { at, .. }
            | Self::MissingColumn { at, .. }
            | Self::BadCopyHeader { at, .. }
            | Self::Truncated { at, .. }
            | Self::Unterminated { at, .. }
            | Self::NotADump { at, .. }
            | Self::NoStateTables { at }
            | Self::PgRestoreNotFound { at, .. }
            | Self::PgRestoreFailed { at, .. }
            | Self::Postgres { at, .. } => Some(at),
            Self::PgBinariesNotFound { .. } | Self::Command { .. } | Self::WriterMisuse { .. } => None,
        }
    }

    /// The 1-based line number of the error (0 when it has none).
    pub fn line(&self) -> u64 {
        self.location().map_or(0, |at| at.line)
    }

    /// Fills in location and table of a codec error from [`crate::copy`].
    pub(crate) fn locate(self, loc: Location, tbl: Table) -> Self {
        match self {
            Self::InvalidUtf8 { column, .. } => Self::InvalidUtf8 {
                at: loc,
                table: Some(tbl),
                column,
            },
            Self::DanglingBackslash { column, .. } => Self::DanglingBackslash {
                at: loc,
                table: Some(tbl),
                column,
            },
            other => other,
        }
    }
}

/// Keeps the last `max` bytes of a tool's stderr, on one line.
pub(crate) fn tail_one_line(text: &str, max: usize) -> String {
    let joined = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if joined.len() <= max {
        return joined;
    }
    let mut start = joined.len() - max;
    while !joined.is_char_boundary(start) {
        start += 1;
    }
    format!("...{}", &joined[start..])
}
