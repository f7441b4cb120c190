#![doc = include_str!("../README.md")]

mod error;
pub mod kernels;
pub mod ptx;

#[cfg(feature = "cuda")]
mod backend;
#[cfg(not(feature = "cuda"))]
#[path = "disabled.rs"]
mod backend;
#[cfg(feature = "cuda")]
pub mod sim;

/// Custom GPU job kinds: load your PTX, launch your kernels with checked arguments,
/// and report the same stage times as the built-in kinds (feature `cuda`).
#[cfg(feature = "cuda")]
pub mod custom {
    pub use crate::backend::{Arg, DeviceArray, DeviceContext, KernelModule};
}

pub use backend::{CudaExecutor, devices, devices_with_pool, driver_version, register};
pub use error::CudaError;

/// Whether the loaded CUDA driver is the simulated one (`gpujobs-cuda-sim`, for tests):
/// then no timing is a measurement. Always `false` without the `cuda` feature.
pub fn simulated() -> bool {
    #[cfg(feature = "cuda")]
    {
        sim::simulator().is_some()
    }
    #[cfg(not(feature = "cuda"))]
    {
        false
    }
}

/// The environment variable that turns the device pipeline on (`1`), as
/// [`set_pipeline`] does; `gpujobs worker --cuda-pipeline` sets it.
pub const PIPELINE_ENV: &str = "GPUJOBS_CUDA_PIPELINE";

static PIPELINE: std::sync::atomic::AtomicU8 = std::sync::atomic::AtomicU8::new(2);

/// Turns the device pipeline on or off for jobs started from now on: inputs and
/// outputs registered for DMA in place (no staging copy), large memory-bound jobs
/// split in chunks over two streams so copies overlap compute. Off by default until a
/// GPU run has verified it (docs/cuda.md); the simulated driver tests it.
pub fn set_pipeline(on: bool) {
    PIPELINE.store(u8::from(on), std::sync::atomic::Ordering::Relaxed);
}

/// Whether the device pipeline is on ([`set_pipeline`], else [`PIPELINE_ENV`]).
pub fn pipeline_enabled() -> bool {
    match PIPELINE.load(std::sync::atomic::Ordering::Relaxed) {
        0 => false,
        1 => true,
        _ => std::env::var(PIPELINE_ENV).is_ok_and(|v| v == "1"),
    }
}

/// Whether this build includes the CUDA backend.
pub const COMPILED: bool = cfg!(feature = "cuda");

/// The environment variable that registers the CUDA executors not yet verified on a GPU
/// (today: `mlp-predict`). Set to `1` by the device check (`scripts/gpu-check.sh`),
/// which is what verifies them; everyone else gets those kinds on the CPU.
pub const UNVERIFIED_ENV: &str = "GPUJOBS_CUDA_UNVERIFIED";

/// Whether [`UNVERIFIED_ENV`] asks for the unverified executors.
pub fn unverified_enabled() -> bool {
    std::env::var(UNVERIFIED_ENV).is_ok_and(|v| v == "1")
}
