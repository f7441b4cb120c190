//! The [`ScheduleQueue`] role of a queue.

use super::types::Incoming;
use crate::model::decision::PlacementDecision;
use crate::model::error::QueueError;
use async_trait::async_trait;
use std::time::Duration;

/// What a scheduler does: take submitted jobs and place each on a lane (or reject it).
#[async_trait]
pub trait ScheduleQueue: Send + Sync {
    /// Takes up to `max` submitted jobs for placement, waiting up to `wait` for one.
    /// Entries that cannot be read come back with `job: Err(reason)`.
    async fn take_submitted(
        &self,
        consumer: &str,
        max: usize,
        wait: Duration,
    ) -> Result<Vec<Incoming>, QueueError>;

    /// Forwards a taken job to a lane, atomically with acknowledging its submit entry.
    async fn place(
        &self,
        incoming: &Incoming,
        decision: PlacementDecision,
    ) -> Result<(), QueueError>;

    /// Places many taken jobs at once (the Redis queue: one script call per partition).
    /// On error, some may have been placed: retry the whole batch (placing is
    /// idempotent). The default places them one by one.
    async fn place_batch(&self, batch: &[(Incoming, PlacementDecision)]) -> Result<(), QueueError> {
        for (incoming, decision) in batch {
            self.place(incoming, decision.clone()).await?;
        }
        Ok(())
    }

    /// Moves a taken entry that cannot run to the dead-letter list with `reason`.
    async fn reject(&self, incoming: &Incoming, reason: &str) -> Result<(), QueueError>;

    /// Moves jobs placed on a worker by locality that it has not taken by the end of
    /// their wait to their lanes, where any worker may take them. Reclaim does it too;
    /// the scheduler calls this every second so that recovery after a holder dies, and
    /// autoscalers watching the lane streams, do not wait for a worker's reclaim.
    async fn release_overdue_near(&self) -> Result<(), QueueError>;
}
