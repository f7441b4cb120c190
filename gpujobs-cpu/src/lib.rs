#![doc = include_str!("../README.md")]

pub mod buffer;
mod image_filter;
mod matmul;
mod mlp_train;
pub mod ops;
mod parallel;
pub mod simd;
mod vector_add;

pub use parallel::materialize;

use gpujobs_core::jobs::{ImageFilter, Matmul, MlpTrain, VectorAdd};
use gpujobs_core::{DeviceInfo, JobError, Registry};

/// Runs every built-in kind on this machine's CPUs (rayon's global pool).
#[derive(Debug, Clone)]
pub struct CpuExecutor {
    device: DeviceInfo,
}

impl CpuExecutor {
    /// An executor describing this machine's CPU.
    pub fn new() -> Self {
        let mut device = DeviceInfo::host_cpu();
        device.name = format!("{} [{:?}]", device.name, simd::level());
        CpuExecutor { device }
    }

    /// Runs `f` on tokio's blocking pool, so compute never stalls the async runtime.
    pub(crate) async fn blocking<T: Send + 'static>(
        f: impl FnOnce() -> Result<T, JobError> + Send + 'static,
    ) -> Result<T, JobError> {
        tokio::task::spawn_blocking(f)
            .await
            .map_err(|e| JobError::temporary(format!("CPU task panicked or was cancelled: {e}")))?
    }
}

impl Default for CpuExecutor {
    fn default() -> Self {
        Self::new()
    }
}

/// Registers the CPU executor for every built-in kind.
pub fn register(registry: &mut Registry, executor: &CpuExecutor) {
    registry.register::<VectorAdd, _>(executor.clone());
    registry.register::<Matmul, _>(executor.clone());
    registry.register::<ImageFilter, _>(executor.clone());
    registry.register::<MlpTrain, _>(executor.clone());
}

/// A registry with the built-in kinds and their CPU executors.
pub fn registry() -> Registry {
    let mut r = Registry::with_builtin_kinds();
    register(&mut r, &CpuExecutor::new());
    r
}
