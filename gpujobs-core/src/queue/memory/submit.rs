//! The embedded queue's client role: submit, status, cancel, wait.

use super::{MemoryQueue, lane_index, refuse_results_to};
use crate::model::envelope::JobEnvelope;
use crate::model::error::QueueError;
use crate::model::id::JobId;
use crate::model::state::{JobRecord, JobState};
use crate::queue::SubmitQueue;
use crate::queue::types::CancelOutcome;
use async_trait::async_trait;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

#[async_trait]
impl SubmitQueue for MemoryQueue {
    async fn submit(&self, mut job: JobEnvelope) -> Result<JobId, QueueError> {
        refuse_results_to(&job)?;
        job.stamp_for_submit();
        let id = job.id.clone();
        {
            let mut inner = self.lock();
            // Submitting the same id twice is a no-op, so clients may retry a submit.
            if inner.records.contains_key(&id) {
                return Ok(id);
            }
            inner.records.insert(id.clone(), JobRecord::submitted(&job));
            inner.jobs.insert(id.clone(), Arc::new(job));
            inner.submitted.push_back(id.clone());
        }
        self.submit_ready.notify_waiters();
        Ok(id)
    }

    async fn status(&self, id: &JobId) -> Result<Option<JobRecord>, QueueError> {
        Ok(self.lock().records.get(id).cloned())
    }

    async fn cancel(&self, id: &JobId) -> Result<CancelOutcome, QueueError> {
        let mut inner = self.lock();
        let Some(rec) = inner.records.get_mut(id) else {
            return Ok(CancelOutcome::NotFound);
        };
        match rec.state {
            s if s.is_terminal() => Ok(CancelOutcome::AlreadyFinished(s)),
            JobState::Running => {
                rec.cancel_requested = true;
                Ok(CancelOutcome::Requested)
            }
            _ => {
                let lane = rec.lane;
                inner.submitted.retain(|j| j != id);
                inner.taken.retain(|_, j| j != id);
                if let Some(lane) = lane {
                    inner.lanes[lane_index(lane)].remove(id);
                }
                self.finish(&mut inner, id, JobState::Cancelled);
                Ok(CancelOutcome::Cancelled)
            }
        }
    }

    async fn wait(&self, id: &JobId, timeout: Duration) -> Result<Option<JobRecord>, QueueError> {
        let deadline = Instant::now() + timeout;
        let done = self
            .wait_until(&self.changed, deadline, |inner| {
                match inner.records.get(id) {
                    Some(r) if !r.state.is_terminal() => (None, None),
                    other => (Some(other.cloned()), None),
                }
            })
            .await;
        match done {
            Some(rec) => Ok(rec),
            None => self.status(id).await,
        }
    }
}
