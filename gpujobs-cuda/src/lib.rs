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
