#![doc = include_str!("../README.md")]

mod error;
pub mod kernels;
pub mod ptx;

#[cfg(feature = "cuda")]
mod backend;
#[cfg(not(feature = "cuda"))]
#[path = "disabled.rs"]
mod backend;

pub use backend::{CudaExecutor, devices, devices_with_pool, driver_version, register};
pub use error::CudaError;

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
