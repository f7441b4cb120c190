//! The native module of the `gpujobs` Python package (`gpujobs._native`).
//!
//! It only converts: numpy arrays and Python values into job envelopes, records and
//! output buffers back into dicts and numpy arrays, Rust errors into the exceptions of
//! `gpujobs.errors`. Queues, scheduling, workers and kernels are the Rust library's. The
//! Python API users see is the pure-Python package around it (python/gpujobs).

mod arrays;
mod blocking;
mod core;
mod envelope;
mod errors;
mod model;
mod payload;
mod records;
mod runtime;
mod waiting;

use pyo3::prelude::*;

/// The module.
#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<core::Core>()?;
    m.add_class::<core::Prepared>()?;
    m.add_class::<arrays::PooledBuffer>()?;
    m.add_class::<records::Record>()?;
    m.add_function(wrap_pyfunction!(model::model_to_safetensors, m)?)?;
    m.add_function(wrap_pyfunction!(model::model_from_safetensors, m)?)?;
    m.add_function(wrap_pyfunction!(cuda_devices, m)?)?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}

/// The CUDA devices this build and machine have, or why there are none.
#[pyfunction]
fn cuda_devices() -> (Vec<String>, String) {
    match gpujobs::cuda::devices() {
        Ok(d) => (
            d.iter()
                .map(|x| gpujobs::Backend::device(x).to_string())
                .collect(),
            String::new(),
        ),
        Err(why) => (Vec::new(), why.to_string()),
    }
}
