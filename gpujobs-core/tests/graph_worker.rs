//! The graph-worker scenarios (`gpujobs_core::conformance::graph_workers`) on the
//! embedded queue; gpujobs-queue runs them on Redis.

use gpujobs_core::conformance::graph_workers;
use gpujobs_core::queue::MemoryQueue;
use std::sync::Arc;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graph_workers_on_the_embedded_queue() {
    graph_workers::run_all(Arc::new(MemoryQueue::default())).await;
}
