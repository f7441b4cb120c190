//! The embedded queue against the shared queue conformance suite.

#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

use gpujobs_core::queue::{GraphQueue, SubmitQueue};
use gpujobs_core::queue::{MemoryQueue, MemoryQueueConfig};
use gpujobs_core::{RetryPolicy, conformance};
use std::time::Duration;

fn fast_queue() -> MemoryQueue {
    MemoryQueue::new(MemoryQueueConfig {
        retry: RetryPolicy {
            base: Duration::from_millis(20),
            factor: 2.0,
            max: Duration::from_millis(50),
            jitter: 0.0,
        },
        ..MemoryQueueConfig::default()
    })
}

#[tokio::test]
async fn conformance_suite() {
    conformance::run_all(&fast_queue()).await;
}

/// The embedded queue has no object storage: a job asking for its outputs at a URL is
/// refused at submit (alone or in a graph), not run with its request ignored.
#[tokio::test]
async fn results_at_a_url_are_refused_at_submit() {
    use gpujobs_core::kinds::VectorAdd;
    use gpujobs_core::{JobEnvelope, QueueError};
    let q = fast_queue();
    let env = JobEnvelope::new(VectorAdd::synthetic(4, 1))
        .unwrap()
        .with_results_to("s3://bucket/out");
    let id = env.id.clone();
    let err = q.submit(env.clone()).await.unwrap_err();
    assert!(matches!(err, QueueError::Invalid(_)), "{err}");
    assert!(err.to_string().contains("object storage"), "{err}");
    assert!(q.submit_graph(vec![env]).await.is_err());
    assert!(q.status(&id).await.unwrap().is_none(), "nothing was queued");
}
