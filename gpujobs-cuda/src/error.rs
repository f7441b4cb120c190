//! Errors of the CUDA backend.

/// Why the CUDA backend cannot serve.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum CudaError {
    /// This build has no CUDA support.
    #[error("this gpujobs was built without CUDA support (build with `--features cuda`)")]
    NotCompiled,
    /// The CUDA driver could not be initialised (no driver, or no device).
    #[error("CUDA driver unavailable: {0}")]
    NoDriver(String),
    /// The driver works but sees no GPU.
    #[error("no CUDA device found")]
    NoDevice,
    /// The driver refused the PTX because it is newer than the driver.
    #[error(
        "the CUDA driver (CUDA {driver_major}.{driver_minor}) cannot load PTX ISA {isa_major}.{isa_minor} of module `{module}`, which needs a driver for CUDA {need_major}.{need_minor} or newer: update the driver, or rebuild the PTX with an older nvcc (GPUJOBS_NVCC=/path/to/nvcc cargo build ...)"
    )]
    UnsupportedPtx {
        /// The module.
        module: String,
        /// PTX ISA major version.
        isa_major: u32,
        /// PTX ISA minor version.
        isa_minor: u32,
        /// Driver's CUDA major version.
        driver_major: u32,
        /// Driver's CUDA minor version.
        driver_minor: u32,
        /// CUDA major version the PTX needs.
        need_major: u32,
        /// CUDA minor version the PTX needs.
        need_minor: u32,
    },
    /// Any other driver error, with what was being done.
    #[error("CUDA error while {doing}: {message}")]
    Driver {
        /// The operation.
        doing: String,
        /// The driver's message.
        message: String,
    },
}
