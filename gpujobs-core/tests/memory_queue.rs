//! The embedded queue against the shared queue conformance suite.

#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

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
