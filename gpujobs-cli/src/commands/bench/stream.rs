//! `gpujobs bench --stream N`: a worker's steady state. N vector adds back to back
//! through the embedded queue, a scheduler and one CPU worker, as `gpujobs run` or a
//! service embedding the library runs them; reports jobs per second and the page faults
//! each job cost, against the pages of its output.

use crate::error::CliError;
use gpujobs_core::kinds::VectorAdd;
use gpujobs_core::{
    DeviceClass, DevicePref, EmbeddedCluster, JobEnvelope, JobState, MemoryQueueConfig, Tensor,
    WorkerConfig, synth,
};
use serde::Serialize;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// What the stream measured.
#[derive(Debug, Clone, Serialize)]
pub struct StreamReport {
    /// Timed jobs.
    pub jobs: usize,
    /// Elements per vector.
    pub len: usize,
    /// Seconds for the timed jobs, submit of the first to result of the last.
    pub seconds: f64,
    /// Jobs per second.
    pub jobs_per_s: f64,
    /// Bytes moved by the adds (two inputs read, one output written) per second, in GB/s.
    pub gb_per_s: f64,
    /// Minor page faults of the process per job.
    pub faults_per_job: Option<f64>,
    /// 4 KiB pages of one job's output.
    pub output_pages: f64,
    /// Buffer-pool requests served from recycled memory during the timed jobs.
    pub pool_hits: u64,
    /// Buffer-pool requests that needed new memory during the timed jobs.
    pub pool_misses: u64,
}

/// Runs `jobs` vector adds of `len` values (after three warm-up jobs).
pub async fn run(jobs: usize, len: usize) -> Result<StreamReport, CliError> {
    let cpu = crate::backends::cpu();
    let mut config = WorkerConfig::new(cpu.device.clone());
    config.concurrency = 1;
    config.poll = Duration::from_millis(100);
    config.heartbeat = Duration::from_millis(200);
    // Results are read once and then let go, so their buffers return to the pool, as
    // they do in a worker that has written its result to Redis.
    let queue = MemoryQueueConfig {
        finished_ttl: Duration::ZERO,
        ..MemoryQueueConfig::default()
    };
    let cluster = EmbeddedCluster::builder()
        .queue_config(queue)
        .worker(config, cpu.registry.clone())
        .start();
    let input = |seed: u64| -> Result<Tensor, CliError> {
        let mut v = cpu
            .handle
            .buffers()
            .take(len)
            .map_err(|e| CliError::runtime(e.to_string()))?;
        synth::fill_uniform(&mut v, seed, 0, -1.0, 1.0);
        Ok(Tensor::from_values(vec![len], v)?)
    };
    // The same input tensors for every job: shared, never copied.
    let job = VectorAdd {
        a: input(1)?,
        b: input(2)?,
    };
    let mut env = JobEnvelope::new(job).map_err(|e| CliError::runtime(e.to_string()))?;
    env.device = DevicePref::Cpu;
    let one = |cluster: &EmbeddedCluster| {
        let env = env.clone();
        let client = cluster.client().clone();
        async move {
            let mut env = env;
            env.id = gpujobs_core::JobId::new();
            let id = client
                .submit_envelope(env)
                .await
                .map_err(|e| CliError::runtime(e.to_string()))?;
            let rec = client
                .wait(&id, Duration::from_secs(600))
                .await
                .map_err(|e| CliError::runtime(e.to_string()))?;
            if rec.state != JobState::Succeeded || rec.lane != Some(DeviceClass::Cpu) {
                return Err(CliError::runtime(format!(
                    "stream job ended {:?}: {}",
                    rec.state,
                    rec.error.map(|e| e.to_string()).unwrap_or_default()
                )));
            }
            Ok::<_, CliError>(())
        }
    };
    for _ in 0..3 {
        one(&cluster).await?;
    }
    let pool = Arc::new(cpu.handle.buffers().clone());
    let before = pool.stats();
    let faults = gpujobs_core::buffer::minor_faults();
    let start = Instant::now();
    for _ in 0..jobs.max(1) {
        one(&cluster).await?;
    }
    let seconds = start.elapsed().as_secs_f64();
    let faults_per_job = faults
        .zip(gpujobs_core::buffer::minor_faults())
        .map(|(a, b)| b.saturating_sub(a) as f64 / jobs.max(1) as f64);
    let after = pool.stats();
    cluster.shutdown().await;
    let n = jobs.max(1) as f64;
    Ok(StreamReport {
        jobs: jobs.max(1),
        len,
        seconds,
        jobs_per_s: n / seconds,
        gb_per_s: n * 12.0 * len as f64 / seconds / 1e9,
        faults_per_job,
        output_pages: (len * 4) as f64 / 4096.0,
        pool_hits: after.hits - before.hits,
        pool_misses: after.misses - before.misses,
    })
}
