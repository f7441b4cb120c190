//! What clients call: submit, read a record, cancel, wait.

use super::RedisQueue;
use super::blobs::{NewBlob, object_urls};
use crate::codec::{blob_bytes, record_from_hash};
use crate::connection::backend;
use crate::keys::Keys;
use crate::scripts::{Cancel, NewJob, ms};
use gpujobs_core::envelope::blob_names_in;
use gpujobs_core::envelope::now_ms;
use gpujobs_core::queue::CancelOutcome;
use gpujobs_core::{
    Backoff, Blobs, JobEnvelope, JobId, JobRecord, JobState, QueueError, ValidationError,
};
use std::collections::HashMap;
use std::time::Duration;

impl RedisQueue {
    pub(super) async fn submit_job(&self, mut job: JobEnvelope) -> Result<JobId, QueueError> {
        job.stamp_for_submit();
        let id = job.id.clone();
        let keys = self.shared.keys_of(&id);
        // Checked before anything is stored, so a refusal leaves nothing behind.
        let env_json = self.entry_json(&job)?;
        let blob_keys = self.store_input_blobs(keys, &job).await?;
        let written = self
            .submits
            .write(keys.partition(), NewJob { env: job, env_json })
            .await;
        if let Err(QueueError::Full(_)) = &written {
            self.take_back(&blob_keys).await;
        }
        written?;
        Ok(id)
    }

    /// The envelope's JSON, refused when over the entry limit.
    pub(super) fn entry_json(&self, job: &JobEnvelope) -> Result<String, QueueError> {
        let limit = self.shared.cfg.max_entry_bytes;
        let env_json = serde_json::to_string(job)?;
        if env_json.len() as u64 > limit {
            return Err(QueueError::Invalid(ValidationError::TooLarge {
                needed: env_json.len() as u128,
                limit,
                what: "submit entry (the envelope's JSON; large tensors belong in blobs)".into(),
            }));
        }
        Ok(env_json)
    }

    /// Deletes blobs (and their objects) stored for a submit that was then refused
    /// above the high-water mark (best effort; they would expire anyway).
    pub(super) async fn take_back(&self, stored: &StoredBlobs) {
        if !stored.keys.is_empty() {
            let _: Result<(), _> = redis::cmd("DEL")
                .arg(&stored.keys)
                .query_async(&mut self.conn())
                .await;
        }
        if !stored.objects.is_empty() {
            self.objects.delete_all(stored.objects.clone()).await;
        }
    }

    /// Stores a job's input blobs (refusing one over the blob limit before storing
    /// anything; large ones in object storage when offload is on); returns where, so a
    /// refused submit can take them back.
    pub(super) async fn store_input_blobs(
        &self,
        keys: &Keys,
        job: &JobEnvelope,
    ) -> Result<StoredBlobs, QueueError> {
        let cfg = &self.shared.cfg;
        let mut blobs = Vec::with_capacity(job.blobs.len());
        for (name, values) in &job.blobs {
            let bytes = blob_bytes(values);
            if bytes.len() as u64 > cfg.max_blob_bytes {
                return Err(QueueError::Invalid(ValidationError::TooLarge {
                    needed: bytes.len() as u128,
                    limit: cfg.max_blob_bytes,
                    what: format!("tensor blob `{name}`"),
                }));
            }
            blobs.push(NewBlob {
                name: name.clone(),
                bytes,
                to: None,
            });
        }
        let forms = self
            .stored_forms(&job.id, blobs)
            .await
            .map_err(|e| QueueError::Backend(format!("storing input blobs: {e}")))?;
        let stored = StoredBlobs {
            keys: job
                .blobs
                .keys()
                .map(|name| keys.blob(&job.id, name))
                .collect(),
            objects: object_urls(&forms),
        };
        let mut pipe = redis::pipe();
        for (key, form) in stored.keys.iter().zip(&forms) {
            pipe.cmd("SET")
                .arg(key)
                .arg(&**form)
                .arg("PX")
                .arg(ms(cfg.blob_ttl))
                .ignore();
        }
        if !job.blobs.is_empty()
            && let Err(e) = pipe.query_async::<()>(&mut self.conn()).await
        {
            self.take_back(&stored).await;
            return Err(backend("storing blobs")(e));
        }
        Ok(stored)
    }

    /// Loads the blobs a payload or output refers to (`prefix` is `out:` for outputs).
    /// A missing blob (expired) stays missing: the executor then fails the job
    /// permanently with "blob `t0` is missing".
    pub(super) async fn load_blobs(
        &self,
        keys: &Keys,
        id: &JobId,
        payload: &serde_json::Value,
        prefix: &str,
    ) -> Result<Blobs, BlobError> {
        let refs = blob_names_in(payload);
        let mut blobs = Blobs::new();
        if refs.is_empty() {
            return Ok(blobs);
        }
        let names: Vec<String> = refs
            .iter()
            .map(|r| keys.blob(id, &format!("{prefix}{r}")))
            .collect();
        let mut values: Vec<Option<Vec<u8>>> = redis::cmd("MGET")
            .arg(&names)
            .query_async(&mut self.conn())
            .await
            .map_err(|e| BlobError::Unreachable(format!("reading blobs: {e}")))?;
        self.dereference(&mut values).await?;
        for (name, bytes) in refs.into_iter().zip(values) {
            if let Some(bytes) = bytes {
                let v = crate::codec::blob_values(&bytes, &self.buffers)
                    .map_err(|e| BlobError::Malformed(format!("blob `{name}` of job {id}: {e}")))?;
                blobs.insert(name, v.into());
            }
        }
        Ok(blobs)
    }

    /// The envelope JSON a job's record keeps (`env`), if any.
    pub(super) async fn stored_envelope(&self, id: &JobId) -> Result<Option<String>, QueueError> {
        redis::cmd("HGET")
            .arg(self.shared.keys_of(id).job(id))
            .arg("env")
            .query_async(&mut self.conn())
            .await
            .map_err(backend("reading a job's envelope"))
    }

    pub(super) async fn record(&self, id: &JobId) -> Result<Option<JobRecord>, QueueError> {
        let keys = self.shared.keys_of(id);
        let h: HashMap<String, String> = redis::cmd("HGETALL")
            .arg(keys.job(id))
            .query_async(&mut self.conn())
            .await
            .map_err(backend("reading a job record"))?;
        let Some(mut rec) = record_from_hash(id, &h) else {
            return Ok(None);
        };
        if let Some(result) = rec.result.as_mut() {
            result.blobs = self
                .load_blobs(keys, id, &result.output, "out:")
                .await
                .map_err(|e| QueueError::Backend(e.to_string()))?;
        }
        Ok(Some(rec))
    }

    pub(super) async fn cancel_job(&self, id: &JobId) -> Result<CancelOutcome, QueueError> {
        self.shared
            .call(&Cancel {
                keys: self.shared.keys_of(id),
                id,
                now_ms: now_ms(),
                ttl_ms: ms(self.shared.cfg.finished_ttl),
            })
            .await
    }

    pub(super) async fn wait_for(
        &self,
        id: &JobId,
        timeout: Duration,
    ) -> Result<Option<JobRecord>, QueueError> {
        let deadline = tokio::time::Instant::now() + timeout;
        let mut interval = Backoff::new(Duration::from_millis(1), Duration::from_millis(50));
        loop {
            let state = self.states(std::slice::from_ref(id)).await?;
            let done = state[0].is_none_or(JobState::is_terminal);
            if done || tokio::time::Instant::now() >= deadline {
                return self.record(id).await;
            }
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            tokio::time::sleep(interval.next_delay().min(left)).await;
        }
    }

    /// The states of many jobs at once (one pipelined round trip per partition); `None`
    /// for unknown or expired records. Cheaper than `status` for watching a batch.
    pub async fn states(&self, ids: &[JobId]) -> Result<Vec<Option<JobState>>, QueueError> {
        let by_part = self.shared.by_partition(
            ids.iter()
                .enumerate()
                .map(|(i, id)| (self.shared.keys_of(id).partition(), i)),
        );
        let mut out = vec![None; ids.len()];
        for (p, idx) in by_part.iter().enumerate() {
            if idx.is_empty() {
                continue;
            }
            let mut pipe = redis::pipe();
            for &i in idx {
                pipe.cmd("HGET")
                    .arg(self.shared.parts[p].job(&ids[i]))
                    .arg("state");
            }
            let v: Vec<Option<String>> = pipe
                .query_async(&mut self.conn())
                .await
                .map_err(backend("reading job states"))?;
            for (&i, s) in idx.iter().zip(v) {
                out[i] = s.and_then(|s| s.parse().ok());
            }
        }
        Ok(out)
    }

    /// Submits a raw entry to partition 0's submit stream, as a program in another
    /// language would (`XADD {<ns>}:submit * job <json>`). For tests and tools.
    pub async fn submit_raw(&self, job_field: &[u8]) -> Result<String, QueueError> {
        redis::cmd("XADD")
            .arg(self.keys().submit())
            .arg("*")
            .arg("job")
            .arg(job_field)
            .query_async(&mut self.conn())
            .await
            .map_err(backend("XADD submit"))
    }
}

/// Where a submit's blobs were stored: their Redis keys and any objects.
#[derive(Default)]
pub(super) struct StoredBlobs {
    keys: Vec<String>,
    objects: Vec<String>,
}

impl StoredBlobs {
    /// Adds another job's blobs (a graph's submit stores several jobs').
    pub(super) fn extend(&mut self, other: StoredBlobs) {
        self.keys.extend(other.keys);
        self.objects.extend(other.objects);
    }
}

/// Why a job's blobs could not be loaded.
#[derive(Debug, thiserror::Error)]
pub(crate) enum BlobError {
    /// Redis did not answer: the job may run later.
    #[error("{0}")]
    Unreachable(String),
    /// A blob is not what its job says (wrong length): the job can never run.
    #[error("{0}")]
    Malformed(String),
}
