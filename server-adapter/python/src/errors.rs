//! Engine errors as Python exceptions, one class per error kind, all
//! subclasses of `MxStateError`.

use std::panic::{catch_unwind, AssertUnwindSafe};

use mxstate_api::{Error, ErrorKind};
use pyo3::create_exception;
use pyo3::exceptions::PyException;
use pyo3::PyErr;

create_exception!(mxstate_synapse._native, MxStateError, PyException, "An mxstate error.");
create_exception!(
    mxstate_synapse._native,
    NotFoundError,
    MxStateError,
    "A group, room or database that does not exist."
);
create_exception!(
    mxstate_synapse._native,
    InvalidInputError,
    MxStateError,
    "Input mxstate does not accept."
);
create_exception!(
    mxstate_synapse._native,
    ConflictError,
    MxStateError,
    "A conflict with what is stored."
);
create_exception!(
    mxstate_synapse._native,
    CorruptError,
    MxStateError,
    "Stored bytes that do not decode."
);
create_exception!(
    mxstate_synapse._native,
    CapacityError,
    MxStateError,
    "An id outgrew the format's integers."
);
create_exception!(
    mxstate_synapse._native,
    BackendError,
    MxStateError,
    "The storage backend or the file system failed."
);
create_exception!(
    mxstate_synapse._native,
    InternalError,
    MxStateError,
    "A bug in mxstate (a broken invariant or a panic)."
);

/// The Python exception for an engine error.
pub fn to_py(e: Error) -> PyErr {
    let msg = e.to_string();
    match e.kind() {
        ErrorKind::NotFound => NotFoundError::new_err(msg),
        ErrorKind::InvalidInput => InvalidInputError::new_err(msg),
        ErrorKind::Conflict => ConflictError::new_err(msg),
        ErrorKind::Corrupt => CorruptError::new_err(msg),
        ErrorKind::Capacity => CapacityError::new_err(msg),
        ErrorKind::Backend => BackendError::new_err(msg),
        _ => InternalError::new_err(msg),
    }
}

/// Runs `f`, turning an engine error into its exception and a panic into
/// `InternalError` (a panic never unwinds into Python).
pub fn guard<T>(what: &str, f: impl FnOnce() -> Result<T, Error>) -> Result<T, PyErr> {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(r) => r.map_err(to_py),
        Err(panic) => {
            let detail = panic
                .downcast_ref::<&str>()
                .map(|s| (*s).to_owned())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "no message".to_owned());
            Err(InternalError::new_err(format!("mxstate panicked in {what}: {detail}")))
        }
    }
}

/// An input error raised on the Python side of a conversion.
pub fn invalid(msg: impl Into<String>) -> PyErr {
    InvalidInputError::new_err(msg.into())
}
