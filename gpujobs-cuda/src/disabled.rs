//! The backend when built without the `cuda` feature: it exists, so callers need no
//! `cfg`, but it has no devices.

use crate::CudaError;
use async_trait::async_trait;
use gpujobs_core::{Backend, BufferPool, DeviceInfo, DeviceMemory, JobError, Registry};

/// A CUDA device's executor. Without the `cuda` feature none can be created.
#[derive(Debug, Clone)]
pub struct CudaExecutor {
    never: std::convert::Infallible,
}

impl CudaExecutor {
    /// The device this executor runs on.
    pub fn device_info(&self) -> DeviceInfo {
        match self.never {}
    }

    /// Free and total device memory in bytes.
    pub async fn memory_info(&self) -> Result<(u64, u64), gpujobs_core::JobError> {
        match self.never {}
    }
}

/// The CUDA devices of this machine: always `Err(CudaError::NotCompiled)` here.
pub fn devices() -> Result<Vec<CudaExecutor>, CudaError> {
    Err(CudaError::NotCompiled)
}

/// The CUDA devices, with outputs from `pool`: always `Err(CudaError::NotCompiled)` here.
pub fn devices_with_pool(_pool: &BufferPool) -> Result<Vec<CudaExecutor>, CudaError> {
    Err(CudaError::NotCompiled)
}

#[async_trait]
impl Backend for CudaExecutor {
    fn device(&self) -> DeviceInfo {
        match self.never {}
    }

    async fn memory(&self) -> Result<DeviceMemory, JobError> {
        match self.never {}
    }

    fn register(&self, _registry: &mut Registry) {
        match self.never {}
    }

    fn buffers(&self) -> &BufferPool {
        match self.never {}
    }
}

/// The driver's CUDA version: always `None` without CUDA support.
pub fn driver_version() -> Option<String> {
    None
}

/// Registers the executor for every built-in kind (unreachable without CUDA).
pub fn register(_registry: &mut Registry, executor: &CudaExecutor) {
    match executor.never {}
}
