//! A job kind of your own: define it, give it an executor, register both, and run it
//! through the same queue, scheduler and workers as the built-in kinds.
//!
//! The kind here renders a Mandelbrot set: a `width × height` grid of escape counts.
//!
//! ```text
//! cargo run --release --example custom_job
//! ```

use async_trait::async_trait;
use gpujobs::{
    Cost, DeviceInfo, EmbeddedCluster, ExecContext, Execution, Executor, Job, JobError, JobOutput,
    Limits, StageTimes, Tensor, ValidationError, WorkerConfig,
};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The job: its parameters, serializable so it can travel through any queue.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Mandelbrot {
    width: usize,
    height: usize,
    max_iter: u32,
}

/// The output: escape counts as a tensor (so it travels as a binary blob, not JSON).
#[derive(Debug, Clone, Serialize, Deserialize)]
struct MandelbrotImage {
    counts: Tensor,
}

impl JobOutput for MandelbrotImage {
    fn tensors_mut(&mut self) -> Vec<&mut Tensor> {
        vec![&mut self.counts]
    }
    fn summary(&self) -> String {
        format!("escape counts {:?}", self.counts.shape())
    }
}

impl Job for Mandelbrot {
    const KIND: &'static str = "mandelbrot";
    type Output = MandelbrotImage;

    fn validate(&self, limits: &Limits) -> Result<(), ValidationError> {
        if self.width == 0 || self.height == 0 || self.max_iter == 0 {
            return Err(ValidationError::Empty(format!(
                "{}x{} with {} iterations",
                self.width, self.height, self.max_iter
            )));
        }
        limits.check(
            (self.width as u128) * (self.height as u128) * 4,
            "mandelbrot image",
        )
    }

    fn cost(&self) -> Cost {
        let px = (self.width * self.height) as f64;
        // Up to max_iter iterations of ~8 flops per pixel.
        Cost {
            flops: px * f64::from(self.max_iter) * 8.0,
            bytes: px * 4.0,
            transfer_bytes: px * 4.0,
            memory_bytes: (px * 4.0) as u64,
            launches: 1,
        }
    }

    fn size_label(&self) -> String {
        format!("{}x{} i{}", self.width, self.height, self.max_iter)
    }
}

/// A CPU executor for it.
struct MandelbrotCpu;

#[async_trait]
impl Executor<Mandelbrot> for MandelbrotCpu {
    async fn run(
        &self,
        job: Mandelbrot,
        ctx: &ExecContext,
    ) -> Result<Execution<MandelbrotImage>, JobError> {
        let cancel = ctx.cancel.clone();
        tokio::task::spawn_blocking(move || {
            let start = Instant::now();
            let mut counts = vec![0f32; job.width * job.height];
            for (y, row) in counts.chunks_mut(job.width).enumerate() {
                cancel.check()?; // stop between rows when cancelled
                let ci = -1.2 + 2.4 * y as f64 / job.height as f64;
                for (x, out) in row.iter_mut().enumerate() {
                    let cr = -2.0 + 3.0 * x as f64 / job.width as f64;
                    let (mut zr, mut zi, mut i) = (0.0f64, 0.0f64, 0);
                    while i < job.max_iter && zr * zr + zi * zi <= 4.0 {
                        (zr, zi) = (zr * zr - zi * zi + cr, 2.0 * zr * zi + ci);
                        i += 1;
                    }
                    *out = i as f32;
                }
            }
            let compute = start.elapsed();
            let counts = Tensor::from_values(vec![job.height, job.width], counts)?;
            Ok(Execution {
                output: MandelbrotImage { counts },
                times: StageTimes::cpu(Duration::ZERO, compute),
            })
        })
        .await
        .map_err(|e| JobError::temporary(e.to_string()))?
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // One registry with the built-in CPU executors and ours.
    let mut registry = gpujobs::cpu::registry();
    registry.register::<Mandelbrot, _>(&DeviceInfo::host_cpu(), MandelbrotCpu);
    let mut worker = WorkerConfig::new(DeviceInfo::host_cpu());
    worker.concurrency = 2;
    let cluster = EmbeddedCluster::builder()
        .worker(worker, Arc::new(registry))
        .start();

    let done = cluster
        .client()
        .run(
            Mandelbrot {
                width: 120,
                height: 40,
                max_iter: 200,
            },
            Duration::from_secs(60),
        )
        .await?;
    let result = done.record.result.as_ref().ok_or("no result")?;
    println!(
        "{} on {} in {:.1} ms",
        result.summary,
        result.device,
        result.timings.compute_s * 1e3
    );
    let counts = done.output.counts.values()?;
    for row in counts.chunks(120).step_by(2) {
        let line: String = row
            .iter()
            .map(|&c| {
                if c >= 200.0 {
                    '#'
                } else if c > 8.0 {
                    '+'
                } else {
                    ' '
                }
            })
            .collect();
        println!("{line}");
    }

    // Bad input is refused at submit, before anything runs.
    match cluster
        .client()
        .submit(Mandelbrot {
            width: 0,
            height: 10,
            max_iter: 10,
        })
        .await
    {
        Err(err) => println!("refused: {err}"),
        Ok(id) => println!("unexpectedly accepted as {id}"),
    }
    cluster.shutdown().await;
    Ok(())
}
