//! Waiting on the runtime from Python's thread: the GIL released, Ctrl-C honoured.

use crate::{errors, runtime};
use pyo3::prelude::*;
use std::future::Future;
use std::time::Duration;

/// How often a blocking wait looks for Ctrl-C.
const SIGNAL_CHECK: Duration = Duration::from_millis(100);

/// Runs `fut` on the runtime with the GIL released, looking for Ctrl-C between slices.
pub(crate) fn block_on<T: Send + 'static>(
    py: Python<'_>,
    fut: impl Future<Output = T> + Send + 'static,
) -> PyResult<T> {
    let rt = runtime::get()?;
    let mut task = rt.spawn(fut);
    loop {
        let done = py
            .detach(|| rt.block_on(async { tokio::time::timeout(SIGNAL_CHECK, &mut task).await }));
        match done {
            Ok(Ok(v)) => return Ok(v),
            Ok(Err(e)) => {
                return Err(errors::raise(
                    "GpujobsError",
                    format!("internal task failed: {e}"),
                    &[],
                ));
            }
            Err(_) => {
                if let Err(e) = py.check_signals() {
                    task.abort();
                    return Err(e);
                }
            }
        }
    }
}

pub(crate) fn seconds(timeout: Option<f64>) -> PyResult<Duration> {
    match timeout {
        None => Ok(Duration::from_secs(100 * 365 * 24 * 3600)),
        Some(s) if s.is_finite() && s >= 0.0 => Ok(Duration::from_secs_f64(s)),
        Some(s) => Err(errors::validation(format!(
            "timeout must be a number of seconds ≥ 0 or None, got {s}"
        ))),
    }
}
