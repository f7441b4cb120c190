//! The client side: submit typed jobs, wait for them, decode their outputs.

use crate::envelope::JobEnvelope;
use crate::error::{QueueError, ValidationError};
use crate::graph::Graph;
use crate::id::JobId;
use crate::job::Job;
use crate::limits::Limits;
use crate::queue::Queue;
use crate::registry::Registry;
use crate::state::{JobRecord, JobState};
use std::sync::Arc;
use std::time::Duration;

/// Why a client call did not produce an output.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// The job was refused before it was queued.
    #[error("invalid job: {0}")]
    Invalid(#[from] ValidationError),
    /// The queue failed.
    #[error(transparent)]
    Queue(#[from] QueueError),
    /// The job ended without a result.
    #[error("job {id} ended {state}: {message}")]
    Failed {
        /// The job.
        id: JobId,
        /// Its final state.
        state: JobState,
        /// Its last error.
        message: String,
    },
    /// The job did not finish in time (it may still run).
    #[error("job {0} did not finish in time")]
    TimedOut(JobId),
}

/// Refuses a lone job that reads other jobs' outputs: only a graph submit holds a job
/// back until its parents have succeeded.
fn alone(env: &JobEnvelope) -> Result<(), ValidationError> {
    match crate::graph::parents_of(env).first() {
        None => Ok(()),
        Some(parent) => Err(ValidationError::InvalidParameter {
            name: "from".into(),
            reason: format!(
                "job {} reads an output of job {parent}: submit the jobs together as a graph (Client::submit_graph, gpujobs submit --graph)",
                env.id
            ),
        }),
    }
}

/// A finished job with its decoded output.
#[derive(Debug, Clone)]
pub struct Finished<O> {
    /// The job's record (state, timings, device, placement).
    pub record: JobRecord,
    /// The decoded output.
    pub output: O,
}

/// Submits jobs to a queue after validating them.
#[derive(Clone)]
pub struct Client {
    queue: Arc<dyn Queue>,
    registry: Arc<Registry>,
    limits: Limits,
}

impl Client {
    /// A client validating with `registry`'s kinds.
    pub fn new(queue: Arc<dyn Queue>, registry: Arc<Registry>) -> Self {
        Client {
            queue,
            registry,
            limits: Limits::detect(),
        }
    }

    /// Uses other memory limits for validation.
    pub fn with_limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// The queue behind the client.
    pub fn queue(&self) -> &Arc<dyn Queue> {
        &self.queue
    }

    /// Validates and submits a typed job with default options.
    pub async fn submit<J: Job>(&self, job: J) -> Result<JobId, ClientError> {
        job.validate(&self.limits)?;
        let env = JobEnvelope::new(job).map_err(QueueError::from)?;
        alone(&env)?;
        Ok(self.queue.submit(env).await?)
    }

    /// Validates and submits an envelope (priority, device, attempts already set).
    pub async fn submit_envelope(&self, env: JobEnvelope) -> Result<JobId, ClientError> {
        alone(&env)?;
        self.registry
            .inspect(&env.kind, &env.payload, &env.blobs, &self.limits)?;
        Ok(self.queue.submit(env).await?)
    }

    /// Validates every job of a graph (each as [`Client::submit_envelope`] would, the
    /// graph's shape as [`crate::graph::order`] does) and submits them at once; returns
    /// their ids in the graph's order. Nothing is submitted when one is refused.
    pub async fn submit_graph(&self, graph: Graph) -> Result<Vec<JobId>, ClientError> {
        let jobs = graph.into_jobs();
        crate::graph::order(&jobs).map_err(ValidationError::from)?;
        for env in &jobs {
            self.registry
                .inspect(&env.kind, &env.payload, &env.blobs, &self.limits)
                .map_err(|e| ValidationError::Payload {
                    kind: env.kind.clone(),
                    reason: format!("job {}: {e}", env.id),
                })?;
        }
        Ok(self.queue.submit_graph(jobs).await?)
    }

    /// Waits for a job to end; `TimedOut` if it does not within `timeout`.
    pub async fn wait(&self, id: &JobId, timeout: Duration) -> Result<JobRecord, ClientError> {
        match self.queue.wait(id, timeout).await? {
            Some(rec) if rec.state.is_terminal() => Ok(rec),
            Some(_) => Err(ClientError::TimedOut(id.clone())),
            None => Err(QueueError::NotFound(id.to_string()).into()),
        }
    }

    /// Waits for a job of kind `J` and decodes its output.
    pub async fn output<J: Job>(
        &self,
        id: &JobId,
        timeout: Duration,
    ) -> Result<Finished<J::Output>, ClientError> {
        let record = self.wait(id, timeout).await?;
        match (&record.state, &record.result) {
            (JobState::Succeeded, Some(result)) => {
                let output = result.decode::<J::Output>()?;
                Ok(Finished { record, output })
            }
            _ => Err(ClientError::Failed {
                id: id.clone(),
                state: record.state,
                message: record
                    .error
                    .as_ref()
                    .map_or_else(|| "no result".into(), |e| e.message.clone()),
            }),
        }
    }

    /// Submits `job`, waits for it and returns its output.
    pub async fn run<J: Job>(
        &self,
        job: J,
        timeout: Duration,
    ) -> Result<Finished<J::Output>, ClientError> {
        let id = self.submit(job).await?;
        self.output::<J>(&id, timeout).await
    }
}
