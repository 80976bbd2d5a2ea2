//! The crate's error type.

/// Errors of synthetic dump generation.
#[derive(Debug, thiserror::Error)]
pub enum SynthError {
    /// The options cannot describe a dump.
    #[error("invalid synth options: {0}")]
    InvalidOptions(String),
    /// Writing the dump failed.
    #[error("writing the dump: {0}")]
    Io(#[from] std::io::Error),
}
