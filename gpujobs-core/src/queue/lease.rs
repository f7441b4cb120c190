//! The [`LeaseQueue`] role of a queue.

use super::types::{Delivery, FailOutcome, Lease, RemoteInput, RenewOutcome};
use crate::model::device::DeviceClass;
use crate::model::error::{JobError, QueueError};
use crate::model::state::JobResult;
use crate::model::tensor::Blobs;
use async_trait::async_trait;
use std::time::Duration;

/// What a worker does with a job: lease it, keep the lease, and end the attempt.
#[async_trait]
pub trait LeaseQueue: Send + Sync {
    /// Leases up to `max` ready jobs of `lane` to `consumer` for `lease`, waiting up to
    /// `wait` for one. Each returned job has had its attempt count incremented.
    async fn fetch(
        &self,
        lane: DeviceClass,
        consumer: &str,
        max: usize,
        lease: Duration,
        wait: Duration,
    ) -> Result<Vec<Delivery>, QueueError>;

    /// Reads a delivery's [`Delivery::remote`] inputs (object storage), each into a blob
    /// under its [`RemoteInput::blob`] name. A worker calls it in the job's own task while
    /// it keeps the lease, after [`LeaseQueue::fetch`] returned without touching the
    /// store. An input that can never be read (missing, refused, the wrong size) is a
    /// permanent error; a store that does not answer, a temporary one. The default: a
    /// queue that defers nothing has nothing to read.
    async fn load_remote(&self, lease: &Lease, remote: &[RemoteInput]) -> Result<Blobs, JobError> {
        match remote.first() {
            None => Ok(Blobs::new()),
            Some(r) => Err(JobError::permanent(format!(
                "job {}: input `{}` lives at {}, and this queue cannot read object storage",
                lease.job_id, r.blob, r.url
            ))),
        }
    }

    /// Extends a lease; tells the worker whether the job has been cancelled.
    async fn renew(&self, lease: &Lease, extend: Duration) -> Result<RenewOutcome, QueueError>;

    /// Records a success and releases the job. Fails with `LeaseLost` if the lease is no
    /// longer the job's current one.
    async fn complete(&self, lease: &Lease, result: JobResult) -> Result<(), QueueError>;

    /// Records many successes at once, each as [`LeaseQueue::complete`] would, answering
    /// for each in order: for callers that hold a batch of results (the embedded queue
    /// takes its lock once, the Redis queue makes one script call per partition). The
    /// default records them one by one.
    async fn complete_batch(&self, batch: Vec<(Lease, JobResult)>) -> Vec<Result<(), QueueError>> {
        let mut out = Vec::with_capacity(batch.len());
        for (lease, result) in batch {
            out.push(self.complete(&lease, result).await);
        }
        out
    }

    /// Records a failed attempt: retried with backoff, failed, dead-lettered, or (for
    /// [`crate::ErrorClass::Cancelled`]) cancelled.
    async fn fail(&self, lease: &Lease, error: &JobError) -> Result<FailOutcome, QueueError>;

    /// Gives a job back without counting the attempt (graceful shutdown).
    async fn release(&self, lease: &Lease) -> Result<(), QueueError>;

    /// Claims up to `max` jobs of `lane` whose lease expired (their worker died or hung)
    /// for `consumer`, counting a new attempt; jobs out of attempts go to dead-letter.
    async fn reclaim_expired(
        &self,
        lane: DeviceClass,
        consumer: &str,
        max: usize,
        lease: Duration,
    ) -> Result<Vec<Delivery>, QueueError>;
}
