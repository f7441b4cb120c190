//! The real CUDA backend (feature `cuda`).
//!
//! One [`CudaExecutor`] per device. Each owns a dedicated OS thread ([`thread`]) that
//! makes the device's primary context current once and owns every CUDA object
//! ([`state::DeviceState`]): `cust` contexts are current per thread and its `Drop`s
//! ignore errors, so nothing CUDA ever crosses threads. Async callers hand the thread
//! closures through a channel and await the answer.

mod custom;
mod image_filter;
mod launch;
mod matmul;
mod mlp_forward;
mod mlp_predict;
mod mlp_train;
mod pinning;
mod pipeline;
mod probe;
mod resident;
mod state;
mod thread;
mod vector_add;

use crate::CudaError;
use async_trait::async_trait;
pub use custom::{Arg, DeviceArray, DeviceContext, KernelModule};
use gpujobs_core::kinds::{ImageFilter, Matmul, MlpPredict, MlpTrain, VectorAdd};
use gpujobs_core::{Backend, BufferPool, DeviceInfo, DeviceMemory, JobError, Registry};
use state::DeviceState;
use std::sync::Arc;

/// Runs jobs on one CUDA device; also that device's [`Backend`]. Open each device once
/// per process ([`devices`]) and share the executor: clones share its thread.
#[derive(Clone)]
pub struct CudaExecutor {
    thread: Arc<thread::DeviceThread>,
    pool: BufferPool,
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

/// Opens every CUDA device of this machine, each with its own thread, with outputs
/// from the process's default pool. Fails when the driver is missing, sees no device,
/// or refuses our PTX (with both versions named).
pub fn devices() -> Result<Vec<CudaExecutor>, CudaError> {
    devices_with_pool(BufferPool::global())
}

/// [`devices`], with outputs downloaded into buffers from `pool`.
pub fn devices_with_pool(pool: &BufferPool) -> Result<Vec<CudaExecutor>, CudaError> {
    pinning::install();
    let count = state::device_count()?;
    (0..count)
        .map(|ordinal| {
            Ok(CudaExecutor {
                thread: Arc::new(thread::DeviceThread::start(ordinal, pool.clone())?),
                pool: pool.clone(),
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

#[async_trait]
impl Backend for CudaExecutor {
    fn device(&self) -> DeviceInfo {
        self.device_info()
    }

    async fn memory(&self) -> Result<DeviceMemory, JobError> {
        let (free, total) = self.memory_info().await?;
        Ok(DeviceMemory { free, total })
    }

    fn register(&self, registry: &mut Registry) {
        let device = self.device_info();
        registry.register::<VectorAdd, _>(&device, self.clone());
        registry.register::<Matmul, _>(&device, self.clone());
        registry.register::<ImageFilter, _>(&device, self.clone());
        registry.register::<MlpTrain, _>(&device, self.clone());
        if crate::unverified_enabled() {
            registry.register::<MlpPredict, _>(&device, self.clone());
        }
    }

    fn buffers(&self) -> &BufferPool {
        &self.pool
    }
}

/// Registers the executor for every built-in kind.
pub fn register(registry: &mut Registry, executor: &CudaExecutor) {
    Backend::register(executor, registry);
}
