//! A service submitting jobs to a Redis-backed cluster and awaiting the results: what a
//! Rust service embedding gpujobs as a client does. Workers and a scheduler run
//! elsewhere (`gpujobs scheduler`, `gpujobs worker`, or examples/worker.rs and
//! examples/scheduler.rs).
//!
//! ```text
//! GPUJOBS_REDIS_URL=redis://127.0.0.1:6379 cargo run --release --features redis --example client
//! ```

use gpujobs::kinds::{Matmul, VectorAdd};
use gpujobs::redis::{RedisConfig, RedisQueue};
use gpujobs::{Client, Priority, Registry};
use std::sync::Arc;
use std::time::Duration;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let url =
        std::env::var("GPUJOBS_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    let queue = RedisQueue::connect(RedisConfig::new(url)).await?;
    // The registry validates jobs before they are sent and decodes typed outputs.
    let client = Client::new(Arc::new(queue), Arc::new(Registry::with_builtin_kinds()));

    // Submit and await a typed result in one call.
    let done = client
        .run(
            Matmul::synthetic(512, 512, 512, 7),
            Duration::from_secs(120),
        )
        .await?;
    let result = done.record.result.as_ref().ok_or("no result")?;
    println!(
        "matmul 512³ -> {:?} on {} (queue {:.1} ms, compute {:.1} ms)",
        done.output.c.shape(),
        result.device,
        result.timings.queue_wait_s * 1e3,
        result.timings.compute_s * 1e3
    );

    // Or submit now and collect later, with a priority.
    let envelope = gpujobs::JobEnvelope::new(VectorAdd::synthetic(1_000_000, 1))?
        .with_priority(Priority::High);
    let id = client.submit_envelope(envelope).await?;
    let record = client.wait(&id, Duration::from_secs(60)).await?;
    println!("vector-add {id}: {}", record.state);
    Ok(())
}
