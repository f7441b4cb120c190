//! The [`SubmitQueue`] role of a queue.

use super::types::CancelOutcome;
use crate::model::envelope::JobEnvelope;
use crate::model::error::QueueError;
use crate::model::id::JobId;
use crate::model::state::JobRecord;
use async_trait::async_trait;
use std::time::Duration;

/// What a client does: submit a job, read its record, cancel it, wait for it.
#[async_trait]
pub trait SubmitQueue: Send + Sync {
    /// Enqueues a job for the scheduler. The envelope should have been validated.
    async fn submit(&self, job: JobEnvelope) -> Result<JobId, QueueError>;

    /// The job's record, or `None` if unknown (or its record expired).
    async fn status(&self, id: &JobId) -> Result<Option<JobRecord>, QueueError>;

    /// Cancels a job: a queued or placed job never runs; a running job is asked to stop.
    async fn cancel(&self, id: &JobId) -> Result<CancelOutcome, QueueError>;

    /// Waits until the job reaches a terminal state or `timeout` passes, then returns its
    /// record. The default polls [`SubmitQueue::status`] with a growing interval.
    async fn wait(&self, id: &JobId, timeout: Duration) -> Result<Option<JobRecord>, QueueError> {
        let deadline = tokio::time::Instant::now() + timeout;
        let mut interval =
            crate::model::retry::Backoff::new(Duration::from_millis(2), Duration::from_millis(100));
        loop {
            let rec = self.status(id).await?;
            let done = rec.as_ref().is_none_or(|r| r.state.is_terminal());
            if done || tokio::time::Instant::now() >= deadline {
                return Ok(rec);
            }
            tokio::time::sleep(
                interval
                    .next_delay()
                    .min(deadline.saturating_duration_since(tokio::time::Instant::now())),
            )
            .await;
        }
    }
}
