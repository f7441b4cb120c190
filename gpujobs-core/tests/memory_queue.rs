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

/// With a zero TTL (`gpujobs bench --stream` frees results at once) a finished job's
/// record stays until a later ending: not swept by its own ending, nor by a worker's
/// periodic reclaim that ends nothing, even milliseconds later (both once lost results
/// `gpujobs bench --stream` was about to read).
#[tokio::test]
async fn a_zero_ttl_keeps_a_result_until_the_next_ending() {
    use gpujobs_core::conformance::{fetch_one, job, result, submit_and_place};
    use gpujobs_core::queue::LeaseQueue;
    use gpujobs_core::{DeviceClass, JobState};
    let q = MemoryQueue::new(MemoryQueueConfig {
        finished_ttl: Duration::ZERO,
        ..MemoryQueueConfig::default()
    });
    let lease = Duration::from_secs(30);
    let mut ids = Vec::new();
    for seed in 0..20 {
        let id = submit_and_place(&q, job(seed)).await;
        let d = fetch_one(&q, "w", lease).await;
        q.complete(&d.lease, result()).await.unwrap();
        tokio::time::sleep(Duration::from_millis(2)).await;
        let reclaimed = q
            .reclaim_expired(DeviceClass::Cpu, "w", 8, lease)
            .await
            .unwrap();
        assert!(reclaimed.is_empty());
        let rec = q.wait(&id, Duration::from_secs(1)).await.unwrap();
        assert_eq!(
            rec.map(|r| r.state),
            Some(JobState::Succeeded),
            "job {seed} read after its ending and a reclaim"
        );
        ids.push(id);
    }
    assert!(
        q.status(&ids[0]).await.unwrap().is_none(),
        "swept by a later ending"
    );
    assert!(q.status(&ids[19]).await.unwrap().is_some());
}
