//! A GPU job kind of your own: its kernel (PTX, shipped beside this file), an executor
//! on [`gpujobs::cuda::CudaExecutor::run_custom`] that loads the PTX once per device and
//! launches with arguments checked against the PTX signature, a CPU executor for the
//! CPU lane, and the kernel's CPU twin so the kind also runs on the simulated driver
//! (`scripts/cuda-sim.sh`), where CI runs this example.
//!
//! The kind is SAXPY, `y = a * x + y`. It runs through an embedded cluster with one
//! GPU worker, pinned to the GPU lane, and its output is compared with the CPU's.
//!
//! ```text
//! cargo run --release --features cuda --example custom_gpu_kind
//! # without a GPU, on the simulated driver:
//! sim=$(scripts/cuda-sim.sh)
//! CUDA_LIBRARY_PATH=$sim LD_LIBRARY_PATH=$sim/lib64 cargo run --features cuda --example custom_gpu_kind
//! ```

use gpujobs::EmbeddedCluster;
use gpujobs::cuda::custom::{Arg, KernelModule};
use gpujobs::cuda::sim::TwinLaunch;
use gpujobs::cuda::{CudaExecutor, sim};
use gpujobs::prelude::*;
use gpujobs::{DevicePref, JobEnvelope};
use serde::{Deserialize, Serialize};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

/// The PTX, made by `nvcc -ptx -arch=compute_75 -O3 saxpy.cu` (CUDA 13.0).
const PTX: &str = include_str!("custom_gpu_kind/saxpy.ptx");

/// The job: `y = a * x + y` over two equal-length vectors.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Saxpy {
    a: f32,
    x: Tensor,
    y: Tensor,
}

/// The output: the new `y`.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct SaxpyOutput {
    y: Tensor,
}

impl JobOutput for SaxpyOutput {
    fn tensors_mut(&mut self) -> Vec<&mut Tensor> {
        vec![&mut self.y]
    }
    fn summary(&self) -> String {
        format!("{} values", self.y.numel().unwrap_or(0))
    }
}

impl Job for Saxpy {
    const KIND: &'static str = "saxpy";
    type Output = SaxpyOutput;

    fn validate(&self, limits: &Limits) -> Result<(), ValidationError> {
        let n = self.x.check_shape("x", 1)?;
        self.x.check_length("x")?;
        self.y.check_length("y")?;
        if self.y.shape() != self.x.shape() {
            return Err(ValidationError::InvalidParameter {
                name: "y".into(),
                reason: format!(
                    "shape {:?} differs from x's {:?}",
                    self.y.shape(),
                    self.x.shape()
                ),
            });
        }
        limits.check(n as u128 * 12, "saxpy")
    }

    fn tensors_mut(&mut self) -> Vec<&mut Tensor> {
        vec![&mut self.x, &mut self.y]
    }

    fn cost(&self) -> Cost {
        let n = self.x.numel().unwrap_or(0) as f64;
        Cost {
            flops: 2.0 * n,
            bytes: 12.0 * n,
            transfer_bytes: 12.0 * n,
            memory_bytes: (8.0 * n) as u64,
            launches: 1,
        }
    }

    fn size_label(&self) -> String {
        format!("{:?}", self.x.shape())
    }
}

fn module() -> &'static KernelModule {
    static M: OnceLock<KernelModule> = OnceLock::new();
    M.get_or_init(|| {
        KernelModule::new("custom_gpu_kind::saxpy", PTX).expect("the shipped PTX has an .entry")
    })
}

/// The GPU executor: the kind's device work on the device's thread and stream.
struct SaxpyGpu(CudaExecutor);

#[async_trait]
impl Executor<Saxpy> for SaxpyGpu {
    async fn run(&self, job: Saxpy, ctx: &ExecContext) -> Result<Execution<SaxpyOutput>, JobError> {
        ctx.cancel.check()?;
        let (x, y) = (job.x.values()?, job.y.values()?);
        let n = x.len();
        let (out, times) = self
            .0
            .run_custom(move |dev| {
                dev.admit(8 * n as u64)?;
                let dx = dev.upload(&x)?;
                let dy = dev.upload(&y)?;
                let blocks = (n as u32).div_ceil(256).clamp(1, 4096);
                let args = [
                    Arg::F32(job.a),
                    Arg::Array(&dx),
                    Arg::Array(&dy),
                    Arg::U64(n as u64),
                ];
                dev.launch(module(), "saxpy", (blocks, 1, 1), (256, 1, 1), 0, &args)?;
                dev.download(&dy, n)
            })
            .await?;
        Ok(Execution {
            output: SaxpyOutput {
                y: Tensor::from_values(vec![n], out)?,
            },
            times,
        })
    }
}

/// The CPU executor: the same arithmetic (one fused multiply-add per value).
struct SaxpyCpu;

#[async_trait]
impl Executor<Saxpy> for SaxpyCpu {
    async fn run(
        &self,
        job: Saxpy,
        _ctx: &ExecContext,
    ) -> Result<Execution<SaxpyOutput>, JobError> {
        let start = Instant::now();
        let (x, y) = (job.x.values()?, job.y.values()?);
        let out: Vec<f32> = x
            .iter()
            .zip(y.iter())
            .map(|(x, y)| job.a.mul_add(*x, *y))
            .collect();
        let n = out.len();
        Ok(Execution {
            output: SaxpyOutput {
                y: Tensor::from_values(vec![n], out)?,
            },
            times: StageTimes::cpu(Duration::ZERO, start.elapsed()),
        })
    }
}

/// The kernel's CPU twin for the simulated driver: what `saxpy` computes over the grid
/// it was launched with (a grid-stride loop covers all `n` when it has any thread).
fn saxpy_twin(l: &TwinLaunch) -> Result<(), sim::SimError> {
    let (a, x, y, n) = (l.f32(0)?, l.u64(1)?, l.u64(2)?, l.u64(3)?);
    let threads = u64::from(l.grid[0]) * u64::from(l.block[0]);
    let n = if threads == 0 { 0 } else { n as usize };
    let xs = l.read_f32(x, n)?;
    let mut ys = l.read_f32(y, n)?;
    for (y, x) in ys.iter_mut().zip(&xs) {
        *y = a.mul_add(*x, *y);
    }
    l.write_f32(y, &ys)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let gpu = match gpujobs::cuda::devices() {
        Ok(mut d) => d.remove(0),
        Err(e) => return Err(format!("no CUDA device: {e}").into()),
    };
    if let Some(sim) = sim::simulator() {
        sim.register_twin("saxpy", saxpy_twin)
            .map_err(|e| format!("registering the twin: CUDA error {e}"))?;
        println!("on the simulated driver: the kernel runs as its CPU twin");
    }
    let device = gpu.device_info();
    let mut registry = Registry::with_builtin_kinds();
    registry.register::<Saxpy, _>(&device, SaxpyGpu(gpu.clone()));
    registry.register::<Saxpy, _>(&DeviceInfo::host_cpu(), SaxpyCpu);
    let cluster = EmbeddedCluster::builder()
        .worker(WorkerConfig::new(device.clone()), Arc::new(registry))
        .start();

    let n = 1_000_003;
    let x: Vec<f32> = (0..n).map(|i| (i % 1000) as f32 / 1000.0).collect();
    let y: Vec<f32> = (0..n).map(|i| 1.0 - (i % 7) as f32 / 7.0).collect();
    let job = Saxpy {
        a: 2.5,
        x: Tensor::from_values(vec![n], x.clone())?,
        y: Tensor::from_values(vec![n], y.clone())?,
    };
    let env = JobEnvelope::new(job)?.with_device(DevicePref::Gpu);
    let id = cluster.client().submit_envelope(env).await?;
    let done = cluster
        .client()
        .output::<Saxpy>(&id, Duration::from_secs(120))
        .await?;
    let result = done.record.result.as_ref().ok_or("no result")?;
    let t = &result.timings;
    println!(
        "{} on {}: h2d {:.2} ms, compute {:.2} ms, d2h {:.2} ms",
        result.summary,
        result.device,
        t.h2d_s * 1e3,
        t.compute_s * 1e3,
        t.d2h_s * 1e3
    );
    let got = done.output.y.values()?;
    let wrong = got
        .iter()
        .zip(x.iter().zip(&y))
        .filter(|(g, (x, y))| **g != 2.5f32.mul_add(**x, **y))
        .count();
    cluster.shutdown().await;
    if wrong > 0 {
        return Err(format!("{wrong} of {n} values differ from the CPU's").into());
    }
    println!("all {n} values equal the CPU's");
    Ok(())
}
