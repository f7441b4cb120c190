//! The real CUDA backend (feature `cuda`).
//!
//! One [`CudaExecutor`] per device. Each owns a dedicated OS thread ([`thread`]) that
//! makes the device's primary context current once and owns every CUDA object
//! ([`state::DeviceState`]): `cust` contexts are current per thread and its `Drop`s
//! ignore errors, so nothing CUDA ever crosses threads. Async callers hand the thread
//! closures through a channel and await the answer.

mod image_filter;
mod launch;
mod matmul;
mod mlp_train;
mod probe;
mod state;
mod thread;
mod vector_add;

use crate::CudaError;
use gpujobs_core::jobs::{ImageFilter, Matmul, MlpTrain, VectorAdd};
use gpujobs_core::{DeviceInfo, JobError, Registry};
use state::DeviceState;
use std::sync::Arc;

/// Runs jobs on one CUDA device.
#[derive(Clone)]
pub struct CudaExecutor {
    thread: Arc<thread::DeviceThread>,
}

impl std::fmt::Debug for CudaExecutor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CudaExecutor")
            .field("device", &self.thread.info)
            .finish()
    }
}

impl CudaExecutor {
    /// The device this executor runs on.
    pub fn device_info(&self) -> DeviceInfo {
        self.thread.info.clone()
    }

    /// Free and total device memory in bytes.
    pub async fn memory_info(&self) -> Result<(u64, u64), JobError> {
        self.on_device(|s| s.memory_info()).await
    }

    /// Runs `f` on the device thread.
    pub(crate) async fn on_device<R: Send + 'static>(
        &self,
        f: impl FnOnce(&mut DeviceState) -> Result<R, JobError> + Send + 'static,
    ) -> Result<R, JobError> {
        self.thread.run(f).await
    }
}

/// Opens every CUDA device of this machine, each with its own thread. Fails when the
/// driver is missing, sees no device, or refuses our PTX (with both versions named).
pub fn devices() -> Result<Vec<CudaExecutor>, CudaError> {
    let count = state::device_count()?;
    (0..count)
        .map(|ordinal| {
            Ok(CudaExecutor {
                thread: Arc::new(thread::DeviceThread::start(ordinal)?),
            })
        })
        .collect()
}

/// The CUDA version the installed driver supports (`"13.0"`), if a driver answers.
pub fn driver_version() -> Option<String> {
    cust::init(cust::CudaFlags::empty()).ok()?;
    let v = cust::CudaApiVersion::get().ok()?;
    Some(format!("{}.{}", v.major(), v.minor()))
}

/// Registers the executor for every built-in kind.
pub fn register(registry: &mut Registry, executor: &CudaExecutor) {
    registry.register::<VectorAdd, _>(executor.clone());
    registry.register::<Matmul, _>(executor.clone());
    registry.register::<ImageFilter, _>(executor.clone());
    registry.register::<MlpTrain, _>(executor.clone());
}
