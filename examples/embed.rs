//! Embedding gpujobs in a tokio service without Redis: an in-process queue, scheduler
//! and CPU worker serve jobs that the service's request handlers submit concurrently.
//!
//! ```text
//! cargo run --release --example embed
//! ```

use gpujobs::kinds::{FilterOp, ImageFilter, Matmul, VectorAdd};
use gpujobs::{DeviceInfo, EmbeddedCluster, JobState, Priority, WorkerConfig};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut worker = WorkerConfig::new(DeviceInfo::host_cpu());
    worker.concurrency = 2;
    let cluster = EmbeddedCluster::builder()
        .worker(worker, Arc::new(gpujobs::cpu::registry()))
        .start();
    let client = cluster.client().clone();
    let started = Instant::now();

    // Twelve "requests" arriving at once, each submitting a job and awaiting its result.
    let mut handlers = Vec::new();
    for i in 0..12u64 {
        let client = client.clone();
        handlers.push(tokio::spawn(async move {
            let id = match i % 3 {
                0 => client.submit(Matmul::synthetic(256, 256, 256, i)).await?,
                1 => client.submit(VectorAdd::synthetic(1_000_000, i)).await?,
                _ => {
                    client
                        .submit(ImageFilter::synthetic(
                            512,
                            512,
                            FilterOp::GaussianBlur { sigma: 1.5 },
                            i,
                        ))
                        .await?
                }
            };
            client.wait(&id, Duration::from_secs(60)).await
        }));
    }
    // An urgent job submitted last overtakes the backlog.
    let urgent =
        gpujobs::JobEnvelope::new(VectorAdd::synthetic(1000, 99))?.with_priority(Priority::High);
    let urgent = client.submit_envelope(urgent).await?;

    let mut ok = 0;
    for h in handlers {
        let rec = h.await??;
        let r = rec.result.as_ref().ok_or("no result")?;
        println!(
            "{:<12} {:<8} queue {:>7.2} ms  compute {:>7.2} ms",
            rec.kind,
            rec.state,
            r.timings.queue_wait_s * 1e3,
            r.timings.compute_s * 1e3
        );
        ok += usize::from(rec.state == JobState::Succeeded);
    }
    let rec = client.wait(&urgent, Duration::from_secs(60)).await?;
    println!(
        "urgent job waited {:.2} ms in the queue",
        rec.result.map_or(0.0, |r| r.timings.queue_wait_s * 1e3)
    );
    println!(
        "{ok}/12 jobs succeeded in {:.2} s",
        started.elapsed().as_secs_f64()
    );
    let (_, workers) = cluster.shutdown().await;
    println!("worker report: {:?}", workers);
    Ok(())
}
