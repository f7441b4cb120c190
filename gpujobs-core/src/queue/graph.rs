//! The [`GraphQueue`] role of a queue.

use super::SubmitQueue;
use super::types::ParentOutput;
use crate::model::envelope::JobEnvelope;
use crate::model::error::QueueError;
use crate::model::id::JobId;
use crate::model::state::JobState;
use crate::model::tensor::OutputRef;
use async_trait::async_trait;

/// Job graphs: jobs whose inputs are other jobs' outputs (see [`crate::model::graph`]).
#[async_trait]
pub trait GraphQueue: SubmitQueue {
    /// Submits the jobs of a graph (see [`crate::model::graph`]) at once: each is recorded
    /// `waiting` until the jobs whose outputs it reads have succeeded, then queued. The
    /// graph must be complete (every parent among `jobs`) and acyclic; ids that already
    /// exist are skipped, so a submit may be retried. Returns the ids in `jobs`' order.
    async fn submit_graph(&self, jobs: Vec<JobEnvelope>) -> Result<Vec<JobId>, QueueError>;

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
                None => crate::model::graph::find_output(&r.output, &r.blobs, &from.output)
                    .map_or(ParentOutput::Missing, ParentOutput::Ready),
            },
            _ => ParentOutput::Missing,
        })
    }

    /// A job's envelope with its input blobs, while the queue keeps them (until the job
    /// ends; for a job whose output is ephemeral, until they expire): how a worker
    /// re-runs the producer of an ephemeral output it cannot read. `None`: the queue
    /// no longer holds them (the job ended, or they expired).
    async fn job_inputs(&self, id: &JobId) -> Result<Option<JobEnvelope>, QueueError>;
}
