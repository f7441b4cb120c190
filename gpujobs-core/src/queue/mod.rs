//! The `Queue` trait: the durable hand-offs between clients, the scheduler and workers.
//!
//! Semantics every implementation keeps (the embedded [`MemoryQueue`] and the Redis
//! queue alike, checked by one conformance suite):
//! - **At-least-once.** A job leaves a lane only when a worker completes it, fails it
//!   for good, or its attempts run out. A worker that dies loses its leases, which
//!   expire and are reclaimed by another worker.
//! - **Attempts are deliveries.** Every fetch or reclaim of a job counts one attempt;
//!   after `max_attempts` deliveries the job is dead-lettered with its last error.
//! - **Leases are fenced.** A worker whose lease was reclaimed cannot complete the job
//!   any more ([`crate::QueueError::LeaseLost`]), so a result is recorded once.
//! - **Retries back off.** A temporary failure puts the job back on its lane after the
//!   [`crate::RetryPolicy`] delay; a permanent one ends it as failed.
//! - **Priorities overtake without starving.** See the implementation's fetch order.
//! - **Cancel.** A queued job that is cancelled never runs; a running one is told
//!   through [`RenewOutcome::cancel_requested`].

mod lane;
mod memory;
mod types;

pub use memory::{MemoryQueue, MemoryQueueConfig};
pub use types::{
    CancelOutcome, DeadLetter, Delivery, FailOutcome, Incoming, LaneStats, Lease, ParentOutput,
    RenewOutcome, WorkerInfo,
};

use crate::device::DeviceClass;
use crate::envelope::JobEnvelope;
use crate::error::{JobError, QueueError};
use crate::id::JobId;
use crate::placement::PlacementDecision;
use crate::state::{JobRecord, JobResult, JobState};
use crate::tensor::OutputRef;
use async_trait::async_trait;
use std::time::Duration;

/// Fetch weights of high, normal and low priority: of every 10 jobs a busy worker
/// fetches, 6 are high, 3 normal and 1 low while all three have work, so urgent jobs
/// overtake a backlog and low ones still move. Every queue implementation uses these.
pub const FETCH_WEIGHTS: [i64; 3] = [6, 3, 1];

/// The job queue, as clients, schedulers and workers use it.
#[async_trait]
pub trait Queue: Send + Sync {
    // ----- clients -----

    /// Enqueues a job for the scheduler. The envelope should have been validated.
    async fn submit(&self, job: JobEnvelope) -> Result<JobId, QueueError>;

    /// Submits the jobs of a graph (see [`crate::graph`]) at once: each is recorded
    /// `waiting` until the jobs whose outputs it reads have succeeded, then queued. The
    /// graph must be complete (every parent among `jobs`) and acyclic; ids that already
    /// exist are skipped, so a submit may be retried. Returns the ids in `jobs`' order.
    ///
    /// The default accepts only jobs without parents (submitting them one by one), for
    /// queues written before graphs; both built-in queues implement graphs.
    async fn submit_graph(&self, jobs: Vec<JobEnvelope>) -> Result<Vec<JobId>, QueueError> {
        if jobs.iter().any(|j| !crate::graph::parents_of(j).is_empty()) {
            return Err(QueueError::Refused(
                "this queue does not implement job graphs".into(),
            ));
        }
        let mut ids = Vec::with_capacity(jobs.len());
        for job in jobs {
            ids.push(self.submit(job).await?);
        }
        Ok(ids)
    }

    /// The tensor `from.output` of job `from.job`'s result once it has succeeded, or
    /// the worker holding it when the output was ephemeral, or
    /// [`ParentOutput::Missing`]. Workers read graph inputs with it (when their cache
    /// does not hold them). The default reads the whole record; the Redis queue reads
    /// just the state, the result and the one blob.
    async fn read_output(&self, from: &OutputRef) -> Result<ParentOutput, QueueError> {
        let Some(rec) = self.status(&from.job).await? else {
            return Ok(ParentOutput::Missing);
        };
        Ok(match (&rec.state, &rec.result) {
            (JobState::Succeeded, Some(r)) => match &r.held_by {
                Some(worker) => ParentOutput::HeldBy(worker.clone()),
                None => crate::graph::find_output(&r.output, &r.blobs, &from.output)
                    .map_or(ParentOutput::Missing, ParentOutput::Ready),
            },
            _ => ParentOutput::Missing,
        })
    }

    /// A job's envelope with its input blobs, while the queue keeps them (until the job
    /// ends; for a job whose output is ephemeral, until they expire): how a worker
    /// re-runs the producer of an ephemeral output it cannot read. The default keeps
    /// none.
    async fn job_inputs(&self, _id: &JobId) -> Result<Option<JobEnvelope>, QueueError> {
        Ok(None)
    }

    /// The job's record, or `None` if unknown (or its record expired).
    async fn status(&self, id: &JobId) -> Result<Option<JobRecord>, QueueError>;

    /// Cancels a job: a queued or placed job never runs; a running job is asked to stop.
    async fn cancel(&self, id: &JobId) -> Result<CancelOutcome, QueueError>;

    /// Waits until the job reaches a terminal state or `timeout` passes, then returns its
    /// record. The default polls [`Queue::status`] with a growing interval.
    async fn wait(&self, id: &JobId, timeout: Duration) -> Result<Option<JobRecord>, QueueError> {
        let deadline = tokio::time::Instant::now() + timeout;
        let mut interval =
            crate::retry::Backoff::new(Duration::from_millis(2), Duration::from_millis(100));
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

    // ----- scheduler -----

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

    // ----- workers -----

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

    /// Extends a lease; tells the worker whether the job has been cancelled.
    async fn renew(&self, lease: &Lease, extend: Duration) -> Result<RenewOutcome, QueueError>;

    /// Records a success and releases the job. Fails with `LeaseLost` if the lease is no
    /// longer the job's current one.
    async fn complete(&self, lease: &Lease, result: JobResult) -> Result<(), QueueError>;

    /// Records many successes at once, each as [`Queue::complete`] would, answering
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

    /// Moves jobs placed on a worker by locality that it has not taken by the end of
    /// their wait to their lanes, where any worker may take them. Reclaim does it too;
    /// the scheduler calls this every second so that recovery after a holder dies, and
    /// autoscalers watching the lane streams, do not wait for a worker's reclaim. The
    /// default does nothing.
    async fn release_overdue_near(&self) -> Result<(), QueueError> {
        Ok(())
    }

    /// Claims up to `max` jobs of `lane` whose lease expired (their worker died or hung)
    /// for `consumer`, counting a new attempt; jobs out of attempts go to dead-letter.
    async fn reclaim_expired(
        &self,
        lane: DeviceClass,
        consumer: &str,
        max: usize,
        lease: Duration,
    ) -> Result<Vec<Delivery>, QueueError>;

    // ----- dead letters -----

    /// The newest `max` dead-lettered jobs.
    async fn dead_letters(&self, max: usize) -> Result<Vec<DeadLetter>, QueueError>;

    /// Re-submits a dead-lettered job with fresh attempts. `false` if it is not there.
    async fn retry_dead(&self, id: &JobId) -> Result<bool, QueueError>;

    // ----- cluster facts -----

    /// Records that a worker is alive, with its counters.
    async fn heartbeat(&self, info: &WorkerInfo) -> Result<(), QueueError>;

    /// Removes a worker that is shutting down.
    async fn deregister(&self, worker_id: &str) -> Result<(), QueueError>;

    /// Workers whose last heartbeat is recent.
    async fn workers(&self) -> Result<Vec<WorkerInfo>, QueueError>;

    /// Depth, in-flight count and estimated backlog of each lane.
    async fn lane_stats(&self) -> Result<Vec<LaneStats>, QueueError>;
}
