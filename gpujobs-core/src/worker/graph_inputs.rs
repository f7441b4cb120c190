//! How a worker gets the inputs of a graph job that name other jobs' outputs, and keeps
//! its own outputs for the jobs that will read them.
//!
//! An input is taken from the worker's [`OutputCache`] when it holds it (no queue round
//! trip, no copy), else read from the queue. An ephemeral output (held only by the
//! worker that made it, see [`crate::JobEnvelope::ephemeral`]) that this worker does not
//! hold is made again: the producer's envelope and inputs are still in the queue, so the
//! worker re-runs it here (resolving its inputs the same way) and caches the outputs.

use crate::exec::executor::{CancelFlag, ExecContext};
use crate::exec::registry::Registry;
use crate::model::device::DeviceClass;
use crate::model::envelope::JobEnvelope;
use crate::model::error::JobError;
use crate::model::graph::{find_output, refs_in, substitute};
use crate::model::id::JobId;
use crate::model::limits::Limits;
use crate::model::state::JobResult;
use crate::model::tensor::{OutputRef, Tensor};
use crate::queue::{ParentOutput, Queue};
use crate::worker::output_cache::OutputCache;
use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

/// How many ephemeral producers deep a re-run may reach (a chain longer than this of
/// ephemeral jobs on workers that all stopped fails instead of recursing on).
const MAX_RERUN_DEPTH: usize = 32;

/// Resolves graph inputs for one worker.
pub(crate) struct GraphInputs<'a> {
    pub(crate) queue: &'a dyn Queue,
    pub(crate) registry: &'a Registry,
    pub(crate) cache: &'a OutputCache,
    pub(crate) lane: DeviceClass,
    pub(crate) limits: Limits,
    pub(crate) worker: &'a str,
    pub(crate) cancel: &'a CancelFlag,
}

type Boxed<'f, T> = Pin<Box<dyn Future<Output = T> + Send + 'f>>;

impl GraphInputs<'_> {
    /// The envelope with every `from` input replaced by the values it names.
    pub(crate) async fn resolve(
        &self,
        env: &Arc<JobEnvelope>,
    ) -> Result<Arc<JobEnvelope>, JobError> {
        if refs_in(&env.payload).is_empty() {
            return Ok(env.clone());
        }
        let mut out = (**env).clone();
        self.resolve_into(&mut out, 0).await?;
        Ok(Arc::new(out))
    }

    fn resolve_into<'f>(
        &'f self,
        env: &'f mut JobEnvelope,
        depth: usize,
    ) -> Boxed<'f, Result<(), JobError>> {
        Box::pin(async move {
            let mut wanted: Vec<OutputRef> =
                refs_in(&env.payload).into_iter().map(|r| r.from).collect();
            wanted.sort();
            wanted.dedup();
            let mut resolved = HashMap::with_capacity(wanted.len());
            for from in wanted {
                let t = self.input(&from, depth).await?;
                resolved.insert(from, t);
            }
            substitute(env, &resolved)
        })
    }

    /// One input: cached, read from the queue, or made again.
    async fn input(&self, from: &OutputRef, depth: usize) -> Result<Tensor, JobError> {
        if let Some(t) = self.cache.get(from) {
            return Ok(t);
        }
        let read = |e| JobError::temporary(format!("reading input {from}: {e}"));
        match self.queue.read_output(from).await.map_err(read)? {
            ParentOutput::Ready(t) => Ok(t),
            ParentOutput::HeldBy(holder) => self.rerun(from, &holder, depth).await,
            ParentOutput::Missing => Err(JobError::permanent(format!(
                "input {from} is not available: that job has no such output tensor, or its record expired"
            ))),
        }
    }

    /// Makes an ephemeral output again by running its producer here.
    async fn rerun(
        &self,
        from: &OutputRef,
        holder: &str,
        depth: usize,
    ) -> Result<Tensor, JobError> {
        if depth >= MAX_RERUN_DEPTH {
            return Err(JobError::permanent(format!(
                "input {from} is ephemeral and more than {MAX_RERUN_DEPTH} producers would have to be re-run"
            )));
        }
        let read = |e| JobError::temporary(format!("reading the inputs of job {}: {e}", from.job));
        let Some(mut producer) = self.queue.job_inputs(&from.job).await.map_err(read)? else {
            return Err(JobError::permanent(format!(
                "input {from} was ephemeral (held by worker {holder}, which no longer has it) and the job's own inputs have expired, so it cannot be made again"
            )));
        };
        tracing::info!(job = %from.job, holder, "re-running the producer of an ephemeral input this worker does not hold");
        self.cache.count_rerun();
        self.resolve_into(&mut producer, depth + 1).await?;
        let exec = self.registry.executor(&producer.kind, self.lane).ok_or_else(|| {
            JobError::temporary(format!(
                "input {from} must be made again, and this worker has no executor for kind `{}`",
                producer.kind
            ))
        })?;
        let ctx = ExecContext {
            job_id: from.job.clone(),
            attempt: 0,
            cancel: self.cancel.clone(),
            limits: self.limits,
        };
        let result = tokio::time::timeout(
            producer.timeout(),
            exec.execute(&producer.payload, &producer.blobs, &ctx),
        )
        .await
        .map_err(|_| JobError::timed_out(producer.timeout()))??;
        self.cache.insert(&from.job, &result.output, &result.blobs);
        find_output(&result.output, &result.blobs, &from.output).ok_or_else(|| {
            JobError::permanent(format!("input {from} is not among the outputs of its job"))
        })
    }

    /// What to record for a finished job: its outputs go into the cache; an ephemeral
    /// job's result goes to the queue without its tensors (held here alone) when the
    /// cache could keep all of them.
    pub(crate) fn keep(&self, id: &JobId, env: &JobEnvelope, mut result: JobResult) -> JobResult {
        let kept = self.cache.insert(id, &result.output, &result.blobs);
        if env.ephemeral && kept {
            result.held_by = Some(self.worker.to_string());
            result.blobs.clear();
        }
        result
    }
}
