//! The client side: submit typed jobs, wait for them, decode their outputs.

use crate::exec::registry::Registry;
use crate::model::envelope::JobEnvelope;
use crate::model::error::{QueueError, ValidationError};
use crate::model::graph::Graph;
use crate::model::id::JobId;
use crate::model::job::Job;
use crate::model::limits::Limits;
use crate::model::state::{JobRecord, JobState};
use crate::queue::Queue;
use crate::queue::validated::Validated;
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
    match crate::model::graph::parents_of(env).first() {
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
        self.submit_validated(Validated::job(job, &self.limits)?)
            .await
    }

    /// Validates and submits an envelope (priority, device, attempts already set).
    pub async fn submit_envelope(&self, env: JobEnvelope) -> Result<JobId, ClientError> {
        let job = self.validate(env)?;
        Ok(self.queue.submit(job.into_envelope()).await?)
    }

    /// Submits a job validated earlier in this process, without validating it again.
    pub async fn submit_validated(&self, job: Validated) -> Result<JobId, ClientError> {
        let env = job.into_envelope();
        alone(&env)?;
        Ok(self.queue.submit(env).await?)
    }

    /// Submits jobs validated in this process, up to `in_flight` at once (a queue
    /// writes those that arrive together in one round trip). At the first refusal no
    /// more are sent; those in flight finish. Returns the ids accepted, in order, and
    /// the first refusal with the index of its job: a front end must show the accepted
    /// ids, so that no job runs under an id its user never saw.
    pub async fn submit_many(
        &self,
        jobs: Vec<Validated>,
        in_flight: usize,
    ) -> (Vec<JobId>, Option<(usize, ClientError)>) {
        let total = jobs.len();
        let mut ids: Vec<Option<JobId>> = vec![None; total];
        let mut first_error: Option<(usize, ClientError)> = None;
        let mut set = tokio::task::JoinSet::new();
        let mut record =
            |done: Result<(usize, Result<JobId, ClientError>), tokio::task::JoinError>,
             first: &mut Option<(usize, ClientError)>| {
                match done {
                    Ok((j, Ok(id))) => ids[j] = Some(id),
                    Ok((j, Err(e))) => {
                        if first.as_ref().is_none_or(|(k, _)| j < *k) {
                            *first = Some((j, e));
                        }
                    }
                    Err(e) => {
                        first
                            .get_or_insert((usize::MAX, QueueError::Backend(e.to_string()).into()));
                    }
                }
            };
        for (i, job) in jobs.into_iter().enumerate() {
            if first_error.is_some() {
                break;
            }
            if set.len() >= in_flight.max(1)
                && let Some(done) = set.join_next().await
            {
                record(done, &mut first_error);
            }
            let client = self.clone();
            set.spawn(async move { (i, client.submit_validated(job).await) });
        }
        while let Some(done) = set.join_next().await {
            record(done, &mut first_error);
        }
        (ids.into_iter().flatten().collect(), first_error)
    }

    /// Validates an envelope as [`Client::submit_envelope`] would, without submitting
    /// it: for a front end that refuses a whole batch before submitting any of it.
    pub fn validate(&self, env: JobEnvelope) -> Result<Validated, ClientError> {
        alone(&env)?;
        Ok(Validated::envelope(env, &self.registry, &self.limits)?)
    }

    /// Validates every job of a graph (each as [`Client::submit_envelope`] would, the
    /// graph's shape as [`crate::model::graph::order`] does) and submits them at once; returns
    /// their ids in the graph's order. Nothing is submitted when one is refused.
    pub async fn submit_graph(&self, graph: Graph) -> Result<Vec<JobId>, ClientError> {
        let jobs = graph.into_jobs();
        crate::model::graph::order(&jobs).map_err(ValidationError::from)?;
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
