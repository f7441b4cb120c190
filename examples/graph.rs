//! A job graph submitted from a Rust service: blur → Sobel → blur on one image, the two
//! intermediates ephemeral (they stay in the worker's memory and never travel through
//! the queue), and the final image read back typed.
//!
//! ```text
//! cargo run --release --example graph                  # embedded queue, no Redis
//! GPUJOBS_REDIS_URL=redis://127.0.0.1:6379 cargo run --release --features redis --example graph
//! ```
//! With Redis, run `gpujobs scheduler` and `gpujobs worker` beside it.

use gpujobs::kinds::{FilterOp, ImageFilter, ImageFilterOutput};
use gpujobs::{Client, DeviceInfo, EmbeddedCluster, Graph, JobEnvelope, Tensor, WorkerConfig};
use std::sync::Arc;
use std::time::Duration;

/// The chain, with ids assigned before anything is submitted.
fn chain(size: usize) -> Result<(Graph, gpujobs::JobId), Box<dyn std::error::Error>> {
    let mut g = Graph::new();
    let image = Tensor::synthetic(vec![size, size], 7, 0.0, 1.0);
    let filter = |image, filter| ImageFilter { image, filter };
    let ephemeral = |job| -> Result<JobEnvelope, serde_json::Error> {
        Ok(JobEnvelope::new(job)?.with_ephemeral(true))
    };
    let blur = g.add_envelope(
        "blur",
        ephemeral(filter(image, FilterOp::GaussianBlur { sigma: 2.0 }))?,
    )?;
    let edges = g.add_envelope(
        "edges",
        ephemeral(filter(
            Tensor::output_of(&blur, "image", vec![size, size]),
            FilterOp::Sobel,
        ))?,
    )?;
    let smooth = g.add(
        "smooth",
        filter(
            Tensor::output_of(&edges, "image", vec![size, size]),
            FilterOp::GaussianBlur { sigma: 1.0 },
        ),
    )?;
    Ok((g, smooth))
}

async fn run(client: &Client) -> Result<(), Box<dyn std::error::Error>> {
    let (graph, last) = chain(1024)?;
    let ids = client.submit_graph(graph).await?;
    println!("submitted {} jobs; the last is {last}", ids.len());
    let done = client
        .output::<ImageFilter>(&last, Duration::from_secs(120))
        .await?;
    let out: &ImageFilterOutput = &done.output;
    let values = out.image.values()?;
    let mean = values.iter().map(|&v| f64::from(v)).sum::<f64>() / values.len() as f64;
    println!(
        "{:?} image, mean {mean:.5}, on {}",
        out.image.shape(),
        done.record
            .result
            .as_ref()
            .map_or("?".into(), |r| r.device.to_string())
    );
    Ok(())
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    #[cfg(feature = "redis")]
    if let Ok(url) = std::env::var("GPUJOBS_REDIS_URL") {
        use gpujobs::redis::{RedisConfig, RedisQueue};
        let queue = RedisQueue::connect(RedisConfig::new(url)).await?;
        let client = Client::new(
            Arc::new(queue),
            Arc::new(gpujobs::Registry::with_builtin_kinds()),
        );
        return run(&client).await;
    }
    let cluster = EmbeddedCluster::builder()
        .worker(
            WorkerConfig::new(DeviceInfo::host_cpu()),
            Arc::new(gpujobs::cpu::registry()),
        )
        .start();
    run(cluster.client()).await?;
    cluster.shutdown().await;
    Ok(())
}
