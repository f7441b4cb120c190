//! The backends this binary can run jobs on, and the in-process cluster over them.
//!
//! Each device is opened once per process: the CPU backend and one CUDA backend per GPU
//! are made here and shared by the worker, its metrics and the benchmark.

use crate::error::CliError;
use gpujobs_core::{DeviceInfo, DevicePref, EmbeddedCluster, Registry, WorkerConfig};
use std::sync::Arc;
use std::time::Duration;

/// A backend: the opened device and a registry of its executors.
#[derive(Clone)]
pub struct Backend {
    /// The device.
    pub device: DeviceInfo,
    /// Executors for it.
    pub registry: Arc<Registry>,
    /// The backend itself (memory, buffers).
    pub handle: Arc<dyn gpujobs_core::Backend>,
    /// The CUDA executor, for GPU backends (bandwidth probes in `gpu-check`).
    #[cfg_attr(not(feature = "cuda"), allow(dead_code))]
    pub cuda: Option<gpujobs_cuda::CudaExecutor>,
}

impl Backend {
    fn of(
        handle: Arc<dyn gpujobs_core::Backend>,
        cuda: Option<gpujobs_cuda::CudaExecutor>,
    ) -> Self {
        Backend {
            device: handle.device(),
            registry: Arc::new(Registry::for_backend(handle.as_ref())),
            handle,
            cuda,
        }
    }
}

/// Every backend available to this process.
pub struct Backends {
    /// The host CPU (always available).
    pub cpu: Backend,
    /// One backend per CUDA GPU, when built with CUDA and a GPU is present.
    pub gpus: Vec<Backend>,
    /// Why there is no GPU backend, for messages.
    pub gpu_missing: String,
}

/// The CPU backend, with outputs from the process's default pool.
pub fn cpu() -> Backend {
    Backend::of(Arc::new(gpujobs_cpu::CpuExecutor::new()), None)
}

/// Opens every CUDA device once, or says why there are none.
pub fn gpus() -> Result<Vec<Backend>, String> {
    let devices = gpujobs_cuda::devices().map_err(|e| e.to_string())?;
    Ok(devices
        .into_iter()
        .map(|exec| Backend::of(Arc::new(exec.clone()), Some(exec)))
        .collect())
}

/// Finds the backends.
pub fn detect() -> Backends {
    let (gpus, gpu_missing) = match gpus() {
        Ok(g) => (g, String::new()),
        Err(why) => (Vec::new(), why),
    };
    Backends {
        cpu: cpu(),
        gpus,
        gpu_missing,
    }
}

impl Backends {
    /// Checks that a pinned device is available.
    pub fn check_pref(&self, pref: DevicePref) -> Result<(), CliError> {
        if pref == DevicePref::Gpu && self.gpus.is_empty() {
            return Err(CliError::input(format!(
                "no GPU available: {}",
                self.gpu_missing
            )));
        }
        Ok(())
    }

    /// Starts an in-process cluster with one worker per backend.
    pub fn start(&self, concurrency: usize) -> EmbeddedCluster {
        let mut builder = EmbeddedCluster::builder();
        for backend in std::iter::once(&self.cpu).chain(&self.gpus) {
            let mut config = WorkerConfig::new(backend.device.clone());
            config.concurrency = concurrency.max(1);
            config.poll = Duration::from_millis(100);
            config.heartbeat = Duration::from_millis(200);
            builder = builder.worker(config, backend.registry.clone());
        }
        builder.start()
    }
}
