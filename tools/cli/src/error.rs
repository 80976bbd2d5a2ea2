//! The CLI's error type: every failure ends as one line on stderr, exit 1.

/// Result alias for commands.
pub type CliResult<T = ()> = Result<T, CliError>;

/// What a command can fail with.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CliError {
    #[error("{0}")]
    Storage(#[from] mxstate_api::Error),
    #[error("{0}")]
    Import(Box<mxstate_synapse_import::ImportError>),
    #[error("{0}")]
    Usage(String),
    #[error("{0}")]
    Dump(#[from] mxstate_synapse_dump::DumpError),
    /// Bad input found while importing or verifying, located in the source.
    #[error("{source_name}: {error}")]
    Source {
        source_name: String,
        error: Box<mxstate_synapse_import::ImportError>,
    },
    #[error("{0} groups differ from the source")]
    Mismatches(u64),
    #[error("the database is damaged: {0} problems found")]
    Damaged(u64),
    #[error("{0}")]
    Synth(#[from] mxstate_synth::SynthError),
    #[error("{path}: {source}")]
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
