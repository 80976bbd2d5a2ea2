//! The adapter's error type.

/// Result alias for adapter calls.
pub type AdapterResult<T> = Result<T, AdapterError>;

/// Errors from a [`crate::StateStore`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AdapterError {
    /// The storage engine refused or failed (input errors included).
    #[error(transparent)]
    Storage(#[from] mxstate_storage::Error),
    /// The blocking task running the call did not complete.
    #[error("storage task failed: {0}")]
    Task(String),
}

impl AdapterError {
    /// The storage error, if that is what this is.
    pub fn storage(&self) -> Option<&mxstate_storage::Error> {
        match self {
            AdapterError::Storage(e) => Some(e),
            AdapterError::Task(_) => None,
        }
    }
}
