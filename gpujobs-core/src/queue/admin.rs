//! The [`AdminQueue`] role of a queue.

use super::types::{DeadLetter, LaneStats, WorkerInfo};
use crate::model::error::QueueError;
use crate::model::id::JobId;
use async_trait::async_trait;

/// What operators and the scheduler read about the cluster: dead letters and their retry, live workers, lane statistics.
#[async_trait]
pub trait AdminQueue: Send + Sync {
    /// The newest `max` dead-lettered jobs.
    async fn dead_letters(&self, max: usize) -> Result<Vec<DeadLetter>, QueueError>;

    /// Re-submits a dead-lettered job with fresh attempts. `false` if it is not there.
    async fn retry_dead(&self, id: &JobId) -> Result<bool, QueueError>;

    /// Records that a worker is alive, with its counters.
    async fn heartbeat(&self, info: &WorkerInfo) -> Result<(), QueueError>;

    /// Removes a worker that is shutting down.
    async fn deregister(&self, worker_id: &str) -> Result<(), QueueError>;

    /// Workers whose last heartbeat is recent.
    async fn workers(&self) -> Result<Vec<WorkerInfo>, QueueError>;

    /// Depth, in-flight count and estimated backlog of each lane.
    async fn lane_stats(&self) -> Result<Vec<LaneStats>, QueueError>;
}
