//! The CLI's error type: every failure ends as one line on stderr, exit 1.

/// Result alias for commands.
pub type CliResult<T = ()> = Result<T, CliError>;

/// What a command can fail with.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CliError {
    #[error("{hint}{0}", hint = no_space_hint(.0))]
    Storage(#[from] mxstate_api::Error),
    #[error("{hint}{0}", hint = no_space_hint(.0))]
    Import(Box<mxstate_synapse_import::ImportError>),
    #[error("{0}")]
    Usage(String),
    #[error("{hint}{0}", hint = no_space_hint(.0))]
    Dump(#[from] mxstate_synapse_dump::DumpError),
    /// Bad input found while importing or verifying, located in the source.
    #[error("{hint}{source_name}: {error}", hint = no_space_hint(.error))]
    Source {
        source_name: String,
        error: Box<mxstate_synapse_import::ImportError>,
    },
    #[error("{0} groups differ from the source")]
    Mismatches(u64),
    #[error("{groups} groups and {auth} auth chain answers differ from the source")]
    AuthMismatches { groups: u64, auth: u64 },
    #[error("the database is damaged: {0} problems found")]
    Damaged(u64),
    #[error("{0}")]
    Synth(#[from] mxstate_synth::SynthError),
    #[error("{hint}{path}: {source}", hint = no_space_hint(.source))]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

impl From<mxstate_synapse_import::ImportError> for CliError {
    fn from(e: mxstate_synapse_import::ImportError) -> Self {
        CliError::Import(Box::new(e))
    }
}

impl CliError {
    /// An I/O error on `path`.
    pub fn io(path: impl Into<String>, source: std::io::Error) -> Self {
        CliError::Io {
            path: path.into(),
            source,
        }
    }
}

/// What a full disk's error starts with: what happened and what to do (the
/// store's own message, which follows, names the file).
const NO_SPACE: &str = "no space left on device: free some space (or grow the filesystem) and run the command \
                        again; an interrupted import resumes where it stopped. ";

/// [`NO_SPACE`] when `e` is a full disk (ENOSPC), else nothing.
fn no_space_hint<E: std::error::Error + 'static>(e: &E) -> &'static str {
    if is_no_space(e) {
        NO_SPACE
    } else {
        ""
    }
}

/// Whether `e`, or an error it wraps, is a full disk. RocksDB's errors are
/// text only: "IO error: No space left on device: ...".
pub fn is_no_space(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut cur = Some(e);
    while let Some(x) = cur {
        let io_full = x
            .downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::StorageFull);
        if io_full || x.to_string().contains("No space left on device") {
            return true;
        }
        cur = x.source();
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_disk_says_so_first() {
        let rocks = mxstate_api::Error::backend(
            "rocksdb",
            mxstate_api::ErrorKind::Backend,
            "IO error: No space left on device: While appending to file: db/000004.log: No space left on device",
        );
        let shown = CliError::from(rocks).to_string();
        assert!(shown.starts_with("no space left on device: free some space"), "{shown}");
        assert!(shown.ends_with("db/000004.log: No space left on device"), "{shown}");
        let io = CliError::io("out.sql", std::io::Error::from(std::io::ErrorKind::StorageFull));
        assert!(io.to_string().starts_with("no space left on device"), "{io}");
        let other = CliError::io("out.sql", std::io::Error::from(std::io::ErrorKind::PermissionDenied));
        assert!(other.to_string().starts_with("out.sql: "), "{other}");
    }
}
