//! Job graphs on Redis: submitting one in a single script call, and reading a parent's
//! output for a child (see `gpujobs_core::model::graph`).

use super::RedisQueue;
use super::blobs::{BlobError, StoredBlobs};
use crate::codec::blob_values;
use crate::connection::backend;
use crate::scripts::{NewJob, SubmitGraph};
use async_trait::async_trait;
use gpujobs_core::model::envelope::now_ms;
use gpujobs_core::model::graph::{order, output_at, parents_of};
use gpujobs_core::queue::GraphQueue;
use gpujobs_core::queue::ParentOutput;
use gpujobs_core::{Blobs, JobEnvelope, JobId, JobResult, OutputRef, QueueError, ValidationError};

#[async_trait]
impl GraphQueue for RedisQueue {
    async fn submit_graph(&self, mut jobs: Vec<JobEnvelope>) -> Result<Vec<JobId>, QueueError> {
        for job in &mut jobs {
            job.stamp_for_submit();
        }
        let order = order(&jobs).map_err(ValidationError::from)?;
        let ids: Vec<JobId> = jobs.iter().map(|j| j.id.clone()).collect();
        // One partition for the whole graph, so each release is one atomic script.
        let keys = self.shared.keys_of(&ids[0]);
        if let Some(stray) = ids
            .iter()
            .find(|id| self.shared.keys_of(id).partition() != keys.partition())
        {
            return Err(QueueError::Invalid(ValidationError::InvalidParameter {
                name: "id".into(),
                reason: format!(
                    "job {stray} is in another partition than job {}: the jobs of a graph \
                     must share a `{{tag}}` in their ids (gpujobs_core::Graph assigns one)",
                    ids[0]
                ),
            }));
        }
        let mut entries = Vec::with_capacity(jobs.len());
        for job in &jobs {
            let env_json = self.entry_json(job)?;
            entries.push(env_json);
        }
        let mut blob_keys = StoredBlobs::default();
        for job in &jobs {
            match self.store_input_blobs(keys, job).await {
                Ok(k) => blob_keys.extend(k),
                Err(e) => {
                    self.take_back(&blob_keys).await;
                    return Err(e);
                }
            }
        }
        let mut slots: Vec<Option<(JobEnvelope, String)>> =
            jobs.into_iter().zip(entries).map(Some).collect();
        let ordered: Vec<(NewJob, String)> = order
            .into_iter()
            .filter_map(|i| slots[i].take())
            .map(|(env, env_json)| {
                let parents: Vec<String> = parents_of(&env).iter().map(|p| p.to_string()).collect();
                (NewJob { env, env_json }, parents.join(" "))
            })
            .collect();
        let written = self
            .shared
            .call(&SubmitGraph {
                keys,
                now_ms: now_ms(),
                high_water: self.shared.cfg.high_water,
                by_ref: self.shared.entry_form.by_ref(&self.shared).await,
                jobs: &ordered,
            })
            .await;
        if let Err(QueueError::Full(_)) = &written {
            self.take_back(&blob_keys).await;
        }
        written?;
        Ok(ids)
    }

    /// One output tensor of a succeeded job: its result's JSON says where the tensor is
    /// and which blob holds it; only that blob is read.
    async fn read_output(&self, from: &OutputRef) -> Result<ParentOutput, QueueError> {
        let keys = self.shared.keys_of(&from.job);
        let (state, result): (Option<String>, Option<String>) = redis::cmd("HMGET")
            .arg(keys.job(&from.job))
            .arg("state")
            .arg("result")
            .query_async(&mut self.conn())
            .await
            .map_err(backend("reading a parent's result"))?;
        let (Some("succeeded"), Some(result)) = (state.as_deref(), result) else {
            return Ok(ParentOutput::Missing);
        };
        let result: JobResult = serde_json::from_str(&result)?;
        // An ephemeral output was never stored: say who holds it, without a GET.
        if let Some(worker) = result.held_by {
            return Ok(ParentOutput::HeldBy(worker));
        }
        // The tensor's JSON, with its blob reference, found without any blob loaded.
        let Some(blob) = output_at(&result.output, &from.output)
            .and_then(|t| t.get("blob"))
            .and_then(serde_json::Value::as_str)
            .map(str::to_string)
        else {
            return Ok(ParentOutput::Missing);
        };
        let bytes: Option<Vec<u8>> = redis::cmd("GET")
            .arg(keys.blob(&from.job, &format!("out:{blob}")))
            .query_async(&mut self.conn())
            .await
            .map_err(backend("reading a parent's output"))?;
        let mut bytes = [bytes];
        self.dereference(&mut bytes).await.map_err(|e| match e {
            BlobError::Unreachable(m) => QueueError::Backend(m),
            BlobError::Malformed(m) => QueueError::Backend(format!("output of {from}: {m}")),
        })?;
        let [bytes] = bytes;
        let Some(bytes) = bytes else {
            return Ok(ParentOutput::Missing);
        };
        let values = blob_values(&bytes, &self.buffers)
            .map_err(|e| QueueError::Backend(format!("output blob of {from}: {e}")))?;
        let blobs = Blobs::from([(blob, values.into())]);
        Ok(
            gpujobs_core::model::graph::find_output(&result.output, &blobs, &from.output)
                .map_or(ParentOutput::Missing, ParentOutput::Ready),
        )
    }

    /// A job's envelope and input blobs, while they are kept.
    async fn job_inputs(&self, id: &JobId) -> Result<Option<JobEnvelope>, QueueError> {
        let keys = self.shared.keys_of(id);
        let Some(env) = self.stored_envelope(id).await? else {
            return Ok(None);
        };
        let mut env: JobEnvelope = serde_json::from_str(&env)?;
        env.id = id.clone();
        let names = env.blob_names();
        env.blobs = self
            .load_blobs(keys, id, &env.payload, "")
            .await
            .map_err(|e| QueueError::Backend(e.to_string()))?;
        // An input blob that expired: the job cannot be re-run.
        if names.iter().any(|n| !env.blobs.contains_key(n)) {
            return Ok(None);
        }
        Ok(Some(env))
    }
}

impl RedisQueue {}
