//! The importer's error: where in the source (line, group) and why.

use std::fmt;

/// Result alias for imports and verification.
pub type Result<T, E = ImportError> = std::result::Result<T, E>;

/// Why an import or a verification stopped.
#[derive(Debug)]
#[non_exhaustive]
pub enum Cause {
    /// The source is not valid Synapse state (a bad id, a cycle, ...).
    Input(String),
    /// The database refused or failed.
    Store(mxstate_api::Error),
}

/// An import error, located in the source when it can be: the dump line
/// (or live row number) and the state group.
#[derive(Debug)]
pub struct ImportError {
    pub line: Option<u64>,
    pub group: Option<u64>,
    pub cause: Cause,
}

impl ImportError {
    /// Bad input at `line`.
    pub fn input(line: u64, detail: impl Into<String>) -> Self {
        ImportError {
            line: Some(line),
            group: None,
            cause: Cause::Input(detail.into()),
        }
    }

    /// Names the group this error concerns, if not named yet; `line` is
    /// used when the error has none.
    pub fn in_group(mut self, group: u64, line: u64) -> Self {
        self.group.get_or_insert(group);
        self.line.get_or_insert(line);
        self
    }

    /// The store's error, if that is the cause.
    pub fn store_error(&self) -> Option<&mxstate_api::Error> {
        match &self.cause {
            Cause::Store(e) => Some(e),
            Cause::Input(_) => None,
        }
    }
}

impl From<mxstate_api::Error> for ImportError {
    fn from(e: mxstate_api::Error) -> Self {
        ImportError {
            line: None,
            group: None,
            cause: Cause::Store(e),
        }
    }
}

impl fmt::Display for ImportError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(l) = self.line {
            write!(f, "line {l}: ")?;
        }
        if let Some(g) = self.group {
            write!(f, "state group {g}: ")?;
        }
        match &self.cause {
            Cause::Input(d) => f.write_str(d),
            Cause::Store(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for ImportError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match &self.cause {
            Cause::Store(e) => Some(e),
            Cause::Input(_) => None,
        }
    }
}
