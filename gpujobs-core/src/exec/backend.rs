//! The [`Backend`] seam: one place where jobs run (the host's CPUs, or one GPU), as the
//! worker, the benchmark and a service embedding the library see it.
//!
//! A backend is opened once per process: a CUDA backend owns its device's thread and
//! context, so opening every GPU again for metrics or a second registry would double
//! them. Whoever needs the device, its memory, its executors or its host buffers asks
//! the one backend.

use crate::buffer::BufferPool;
use crate::exec::registry::Registry;
use crate::model::device::DeviceInfo;
use crate::model::error::JobError;
use async_trait::async_trait;

/// Memory of a device, in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeviceMemory {
    /// Free now.
    pub free: u64,
    /// In all.
    pub total: u64,
}

/// A device jobs run on, with its executors and the host memory it wants.
#[async_trait]
pub trait Backend: Send + Sync {
    /// The device.
    fn device(&self) -> DeviceInfo;

    /// The device's memory now (host memory for a CPU backend).
    async fn memory(&self) -> Result<DeviceMemory, JobError>;

    /// Registers an executor for every kind this backend runs.
    fn register(&self, registry: &mut Registry);

    /// The pool this backend's outputs come from, and that readers of inputs bound
    /// for it should read into: page-aligned, recycled memory.
    fn buffers(&self) -> &BufferPool;
}

#[cfg(test)]
mod tests {
    // Backends are used as trait objects; keep the trait object-safe.
    fn _object_safe(_: &dyn super::Backend) {}
}
