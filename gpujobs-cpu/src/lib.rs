#![doc = include_str!("../README.md")]

pub mod buffer;
mod image_filter;
mod matmul;
mod mlp_forward;
mod mlp_predict;
mod mlp_train;
pub mod ops;
mod parallel;
pub mod simd;
mod vector_add;

pub use parallel::materialize;

use async_trait::async_trait;
use gpujobs_core::kinds::{ImageFilter, Matmul, MlpPredict, MlpTrain, VectorAdd};
use gpujobs_core::{Backend, BufferPool, DeviceInfo, DeviceMemory, JobError, Registry};

/// Runs every built-in kind on this machine's CPUs (rayon's global pool), with outputs
/// from a [`BufferPool`]. It is also the CPU's [`Backend`].
#[derive(Debug, Clone)]
pub struct CpuExecutor {
    device: DeviceInfo,
    pool: BufferPool,
}

impl CpuExecutor {
    /// An executor describing this machine's CPU, with outputs from the process's
    /// default pool ([`BufferPool::global`]).
    pub fn new() -> Self {
        Self::with_pool(BufferPool::global().clone())
    }

    /// An executor whose outputs come from `pool`.
    pub fn with_pool(pool: BufferPool) -> Self {
        let mut device = DeviceInfo::host_cpu();
        device.name = format!("{} [{:?}]", device.name, simd::level());
        CpuExecutor { device, pool }
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

#[async_trait]
impl Backend for CpuExecutor {
    fn device(&self) -> DeviceInfo {
        self.device.clone()
    }

    /// Host memory: `MemAvailable` and `MemTotal` of `/proc/meminfo`.
    async fn memory(&self) -> Result<DeviceMemory, JobError> {
        host_memory().ok_or_else(|| JobError::temporary("cannot read /proc/meminfo"))
    }

    fn register(&self, registry: &mut Registry) {
        registry.register::<VectorAdd, _>(&self.device, self.clone());
        registry.register::<Matmul, _>(&self.device, self.clone());
        registry.register::<ImageFilter, _>(&self.device, self.clone());
        registry.register::<MlpTrain, _>(&self.device, self.clone());
        registry.register::<MlpPredict, _>(&self.device, self.clone());
    }

    fn buffers(&self) -> &BufferPool {
        &self.pool
    }
}

fn host_memory() -> Option<DeviceMemory> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let field = |name: &str| -> Option<u64> {
        let line = text.lines().find(|l| l.starts_with(name))?;
        line.split_whitespace()
            .nth(1)?
            .parse::<u64>()
            .ok()?
            .checked_mul(1024)
    };
    Some(DeviceMemory {
        free: field("MemAvailable:")?,
        total: field("MemTotal:")?,
    })
}

/// Registers the CPU executor for every built-in kind.
pub fn register(registry: &mut Registry, executor: &CpuExecutor) {
    Backend::register(executor, registry);
}

/// A registry with the built-in kinds and their CPU executors.
pub fn registry() -> Registry {
    Registry::for_backend(&CpuExecutor::new())
}
