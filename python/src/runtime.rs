//! The one tokio runtime of the process, shared by every queue, cluster and awaitable
//! the module hands out, and registered with pyo3-async-runtimes so that `await job`
//! runs its future there.

use pyo3::PyResult;
use pyo3::exceptions::PyRuntimeError;
use std::sync::OnceLock;
use tokio::runtime::Runtime;

static RUNTIME: OnceLock<Result<Runtime, String>> = OnceLock::new();

/// The runtime, started on first use (importing the module starts no thread).
pub(crate) fn get() -> PyResult<&'static Runtime> {
    let rt = RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .thread_name("gpujobs")
            .build()
            .map_err(|e| format!("cannot start the gpujobs runtime: {e}"))
    });
    match rt {
        Ok(rt) => {
            // Fails only when it was registered already, which is what we want.
            let _ = pyo3_async_runtimes::tokio::init_with_runtime(rt);
            Ok(rt)
        }
        Err(e) => Err(PyRuntimeError::new_err(e.clone())),
    }
}
