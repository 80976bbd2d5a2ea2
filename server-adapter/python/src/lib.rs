//! mxstate's engine as a Python module (`mxstate_synapse._native`), for
//! Synapse. Every call releases the GIL while the engine works, every
//! engine error becomes a typed Python exception, and no Rust panic
//! crosses into Python (it becomes `InternalError`).
#![deny(clippy::unwrap_used)]

mod backend;
mod convert;
mod errors;
mod sections;
mod store;

use pyo3::prelude::*;

/// The Python module.
#[pymodule]
mod _native {
    #[pymodule_export]
    use crate::errors::{
        BackendError, CapacityError, ConflictError, CorruptError, InternalError, InvalidInputError, MxStateError,
        NotFoundError,
    };
    #[pymodule_export]
    use crate::store::Store;

    #[pymodule_init]
    fn init(m: &pyo3::Bound<'_, pyo3::types::PyModule>) -> pyo3::PyResult<()> {
        use pyo3::prelude::PyModuleMethods;
        m.add("__version__", env!("CARGO_PKG_VERSION"))?;
        Ok(())
    }
}
