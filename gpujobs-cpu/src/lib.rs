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

/// Element operations up to which a job's compute runs on the calling task rather than
/// the blocking pool. Handing a job to a pool thread and back costs two thread switches,
/// tens of microseconds on a busy machine and most of a tiny job's time (a profile of a
/// worker running 1-element adds spent 45% of its CPU in the kernel, switching); 64 Ki
/// element operations take a few microseconds to a few tens, well under the ~100 µs an
/// async task may hold its thread.
pub(crate) const INLINE_WORK: usize = 1 << 16;

/// What a caught panic says, as text.
fn panic_message(p: &(dyn std::any::Any + Send)) -> String {
    p.downcast_ref::<&str>()
        .map(|s| (*s).to_string())
        .or_else(|| p.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic".into())
}

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

    /// Runs `f`, a job's compute of about `work` element operations: on tokio's
    /// blocking pool, so compute never stalls the async runtime, unless it is tiny
    /// (see [`INLINE_WORK`]), when it runs on the calling task. A panic in `f` is the
    /// job's temporary error either way.
    pub(crate) async fn compute<T: Send + 'static>(
        work: usize,
        f: impl FnOnce() -> Result<T, JobError> + Send + 'static,
    ) -> Result<T, JobError> {
        let panicked = |e: &dyn std::fmt::Display| {
            JobError::temporary(format!("CPU task panicked or was cancelled: {e}"))
        };
        if work <= INLINE_WORK {
            return std::panic::catch_unwind(std::panic::AssertUnwindSafe(f))
                .map_err(|p| panicked(&panic_message(&*p)))?;
        }
        tokio::task::spawn_blocking(f)
            .await
            .map_err(|e| panicked(&e))?
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

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 1)]
    async fn tiny_compute_runs_on_the_calling_task_and_large_on_the_pool() {
        let here = std::thread::current().id();
        let tiny = CpuExecutor::compute(INLINE_WORK, move || Ok(std::thread::current().id()));
        assert_eq!(tiny.await.unwrap(), here);
        let large = CpuExecutor::compute(INLINE_WORK + 1, move || Ok(std::thread::current().id()));
        assert_ne!(large.await.unwrap(), here);
    }

    #[tokio::test]
    async fn a_panic_is_the_jobs_temporary_error_on_either_path() {
        for work in [0, usize::MAX] {
            let e = CpuExecutor::compute(work, move || -> Result<(), JobError> {
                panic!("boom {work}")
            })
            .await
            .unwrap_err();
            assert_eq!(e.class, gpujobs_core::ErrorClass::Temporary, "{e:?}");
            if work == 0 {
                assert!(e.message.contains("boom 0"), "{e:?}");
            }
        }
    }
}
