//! A job kind of your own: define it, give it an executor, register both, and run it
//! through the same queue, scheduler and workers as the built-in kinds.
//!
//! The kind here is a histogram: an input tensor of values (it travels as a binary
//! blob, because the kind lists it in `Job::tensors_mut`) counted into equal-width bins.
//! Its output is a tensor too, so its fingerprint (the default one) digests the counts.
//!
//! A crate of your own needs `gpujobs`, `tokio` and `serde` (with `derive`); everything
//! else comes from `gpujobs::prelude`.
//!
//! ```text
//! cargo run --release --example custom_job
//! ```

use gpujobs::EmbeddedCluster;
use gpujobs::prelude::*;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Most bins a histogram may ask for: a bound on what a job can make a worker allocate.
const MAX_BINS: usize = 1 << 20;

/// The job: its input tensor and parameters, serializable so it travels through any queue.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Histogram {
    /// The values to count (rank 1).
    values: Tensor,
    /// Number of equal-width bins over `[lo, hi)`.
    bins: usize,
    lo: f32,
    hi: f32,
}

/// The output: counts per bin, and how many values fell outside `[lo, hi)`.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct HistogramCounts {
    counts: Tensor,
    outside: u64,
}

impl JobOutput for HistogramCounts {
    fn tensors_mut(&mut self) -> Vec<&mut Tensor> {
        vec![&mut self.counts]
    }
    fn summary(&self) -> String {
        format!(
            "{} bins, {} values outside",
            self.counts.shape()[0],
            self.outside
        )
    }
}

impl Job for Histogram {
    const KIND: &'static str = "histogram";
    type Output = HistogramCounts;

    fn validate(&self, limits: &Limits) -> Result<(), ValidationError> {
        // Rank 1, no zero dimension, and as many values as the shape says.
        let n = self.values.check_shape("values", 1)?;
        self.values.check_length("values")?;
        if self.bins == 0 || self.bins > MAX_BINS {
            return Err(ValidationError::InvalidParameter {
                name: "bins".into(),
                reason: format!("must be in 1..={MAX_BINS}, got {}", self.bins),
            });
        }
        if !(self.lo.is_finite() && self.hi.is_finite() && self.lo < self.hi) {
            return Err(ValidationError::InvalidParameter {
                name: "lo/hi".into(),
                reason: format!("need finite lo < hi, got [{}, {})", self.lo, self.hi),
            });
        }
        limits.check((n as u128 + self.bins as u128) * 4, "histogram")
    }

    /// Input tensors listed here travel as binary blobs, not JSON numbers.
    fn tensors_mut(&mut self) -> Vec<&mut Tensor> {
        vec![&mut self.values]
    }

    fn cost(&self) -> Cost {
        let n = self.values.numel().unwrap_or(0) as f64;
        Cost {
            flops: n * 3.0,
            bytes: n * 4.0 + self.bins as f64 * 4.0,
            transfer_bytes: n * 4.0,
            memory_bytes: (self.bins as u64) * 4,
            launches: 1,
        }
    }

    fn size_label(&self) -> String {
        format!("{:?} into {}", self.values.shape(), self.bins)
    }
}

/// A CPU executor for it.
struct HistogramCpu;

#[async_trait]
impl Executor<Histogram> for HistogramCpu {
    async fn run(
        &self,
        job: Histogram,
        ctx: &ExecContext,
    ) -> Result<Execution<HistogramCounts>, JobError> {
        let cancel = ctx.cancel.clone();
        tokio::task::spawn_blocking(move || {
            let start = Instant::now();
            let values = job.values.values()?;
            let mut counts = vec![0u64; job.bins];
            let mut outside = 0u64;
            let width = (f64::from(job.hi) - f64::from(job.lo)) / job.bins as f64;
            for chunk in values.chunks(1 << 16) {
                cancel.check()?; // stop between chunks when cancelled
                for &v in chunk {
                    let bin = (f64::from(v) - f64::from(job.lo)) / width;
                    // NaN fails both comparisons and counts as outside.
                    if bin >= 0.0 && bin < job.bins as f64 {
                        counts[bin as usize] += 1;
                    } else {
                        outside += 1;
                    }
                }
            }
            let counts: Vec<f32> = counts.into_iter().map(|c| c as f32).collect();
            let counts = Tensor::from_values(vec![job.bins], counts)?;
            Ok(Execution {
                output: HistogramCounts { counts, outside },
                times: StageTimes::cpu(Duration::ZERO, start.elapsed()),
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
    registry.register::<Histogram, _>(&DeviceInfo::host_cpu(), HistogramCpu);
    let mut worker = WorkerConfig::new(DeviceInfo::host_cpu());
    worker.concurrency = 2;
    let cluster = EmbeddedCluster::builder()
        .worker(worker, Arc::new(registry))
        .start();

    // A sum of two uniform values in [0, 1): a triangle peaking at 1.
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    let mut uniform = || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        (seed >> 40) as f32 / (1u64 << 24) as f32
    };
    let values: Vec<f32> = (0..1_000_000).map(|_| uniform() + uniform()).collect();
    let job = Histogram {
        values: Tensor::from_values(vec![values.len()], values)?,
        bins: 20,
        lo: 0.0,
        hi: 2.0,
    };
    let done = cluster.client().run(job, Duration::from_secs(60)).await?;
    let result = done.record.result.as_ref().ok_or("no result")?;
    println!(
        "{} on {} in {:.1} ms (fingerprint sum {})",
        result.summary,
        result.device,
        result.timings.compute_s * 1e3,
        result.fingerprint.sum
    );
    let counts = done.output.counts.values()?;
    let peak = counts.iter().copied().fold(1.0f32, f32::max);
    for (i, &c) in counts.iter().enumerate() {
        let bar = "#".repeat((60.0 * c / peak) as usize);
        println!("{:4.1} {bar}", 0.1 * i as f32);
    }

    // Bad input is refused at submit, before anything runs.
    let bad = Histogram {
        values: Tensor::from_values(vec![3], vec![1.0, 2.0, 3.0])?,
        bins: 0,
        lo: 0.0,
        hi: 1.0,
    };
    match cluster.client().submit(bad).await {
        Err(err) => println!("refused: {err}"),
        Ok(id) => println!("unexpectedly accepted as {id}"),
    }
    cluster.shutdown().await;
    Ok(())
}
