//! The timing breakdown every result carries.

use serde::{Deserialize, Serialize};
use std::time::Duration;

/// Where a job's time went, in seconds.
///
/// `compute_s` is the kernel or CPU computation alone: no input generation, no file I/O,
/// no transfers. `h2d_s` and `d2h_s` are host-to-device and device-to-host copies (zero
/// on the CPU). `total_s` runs from the moment the job was submitted to the moment its
/// result was recorded, so it includes `queue_wait_s`.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct Timings {
    /// From submit until a worker started the job.
    pub queue_wait_s: f64,
    /// Preparing inputs on the host (synthetic generation, blob decoding).
    pub prepare_s: f64,
    /// Host-to-device copies.
    pub h2d_s: f64,
    /// The computation itself.
    pub compute_s: f64,
    /// Device-to-host copies.
    pub d2h_s: f64,
    /// The executor's whole run, from job start to output ready.
    pub run_s: f64,
    /// Submit to result recorded.
    pub total_s: f64,
}

/// The stages an executor measures itself; the worker adds the queue-side ones.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct StageTimes {
    /// Preparing inputs on the host.
    pub prepare: Duration,
    /// Host-to-device copies.
    pub h2d: Duration,
    /// The computation.
    pub compute: Duration,
    /// Device-to-host copies.
    pub d2h: Duration,
}

impl StageTimes {
    /// Times of a CPU run: preparation and compute only.
    pub fn cpu(prepare: Duration, compute: Duration) -> Self {
        StageTimes {
            prepare,
            compute,
            ..Default::default()
        }
    }
}

/// Runs `f` and returns its value with the time it took.
pub fn timed<T>(f: impl FnOnce() -> T) -> (T, Duration) {
    let start = std::time::Instant::now();
    let value = f();
    (value, start.elapsed())
}
