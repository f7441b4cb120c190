//! The embedded queue's client role: submit, status, cancel, wait.

use super::table::{Job, lock};
use super::{MemoryQueue, refuse_results_to};
use crate::model::envelope::{JobEnvelope, now_ms};
use crate::model::error::QueueError;
use crate::model::id::JobId;
use crate::model::state::{JobRecord, JobState};
use crate::queue::SubmitQueue;
use crate::queue::types::CancelOutcome;
use async_trait::async_trait;
use std::time::Duration;
use tokio::time::Instant;

#[async_trait]
impl SubmitQueue for MemoryQueue {
    async fn submit(&self, mut job: JobEnvelope) -> Result<JobId, QueueError> {
        refuse_results_to(&job)?;
        job.stamp_for_submit();
        let id = job.id.clone();
        {
            let mut shard = self.jobs.of(&id);
            // Submitting the same id twice is a no-op, so clients may retry a submit.
            if shard.jobs.contains_key(&id) {
                return Ok(id);
            }
            let record = JobRecord::submitted(&job);
            shard.jobs.insert(id.clone(), Job::new(record, job));
            // Under the shard: a cancel that finds the job finds it in the submit queue.
            lock(&self.submitted).push_back(id.clone());
        }
        self.submit_ready.notify_waiters();
        Ok(id)
    }

    async fn status(&self, id: &JobId) -> Result<Option<JobRecord>, QueueError> {
        Ok(self.jobs.of(id).jobs.get(id).map(|j| j.record.clone()))
    }

    async fn cancel(&self, id: &JobId) -> Result<CancelOutcome, QueueError> {
        let now = now_ms();
        let outcome = self.with_job(id, |t| {
            let Some(job) = t.get_mut(id) else {
                return CancelOutcome::NotFound;
            };
            match job.record.state {
                s if s.is_terminal() => CancelOutcome::AlreadyFinished(s),
                JobState::Running => {
                    job.record.cancel_requested = true;
                    CancelOutcome::Requested
                }
                _ => {
                    job.taken = None;
                    if let Some(lane) = job.record.lane {
                        self.lane(lane).remove(id);
                    }
                    lock(&self.submitted).retain(|j| j != id);
                    self.finish(t, id, JobState::Cancelled);
                    CancelOutcome::Cancelled
                }
            }
        });
        self.sweep(now);
        Ok(outcome)
    }

    async fn wait(&self, id: &JobId, timeout: Duration) -> Result<Option<JobRecord>, QueueError> {
        let deadline = Instant::now() + timeout;
        let done = self
            .wait_until(&self.changed, deadline, || {
                match self.jobs.of(id).jobs.get(id).map(|j| &j.record) {
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
