//! What clients call: submit, read a record, cancel, wait.

use super::RedisQueue;
use crate::codec::record_from_hash;
use crate::connection::backend;
use crate::scripts::{Cancel, NewJob, ms};
use async_trait::async_trait;
use gpujobs_core::model::envelope::now_ms;
use gpujobs_core::model::tensor_json::blob_names;
use gpujobs_core::queue::CancelOutcome;
use gpujobs_core::queue::SubmitQueue;
use gpujobs_core::{Backoff, JobEnvelope, JobId, JobRecord, JobState, QueueError, ValidationError};
use std::collections::HashMap;
use std::time::Duration;

#[async_trait]
impl SubmitQueue for RedisQueue {
    async fn submit(&self, mut job: JobEnvelope) -> Result<JobId, QueueError> {
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

    async fn status(&self, id: &JobId) -> Result<Option<JobRecord>, QueueError> {
        // One record is a batch of one: the same two round trips (record, then outputs).
        Ok(self
            .records(std::slice::from_ref(id))
            .await?
            .pop()
            .flatten())
    }

    async fn cancel(&self, id: &JobId) -> Result<CancelOutcome, QueueError> {
        self.shared
            .call(&Cancel {
                keys: self.shared.keys_of(id),
                id,
                now_ms: now_ms(),
                ttl_ms: ms(self.shared.cfg.finished_ttl),
            })
            .await
    }

    async fn wait(&self, id: &JobId, timeout: Duration) -> Result<Option<JobRecord>, QueueError> {
        let deadline = tokio::time::Instant::now() + timeout;
        let mut interval = Backoff::new(Duration::from_millis(1), Duration::from_millis(50));
        loop {
            let state = self.states(std::slice::from_ref(id)).await?;
            let done = state[0].is_none_or(JobState::is_terminal);
            if done || tokio::time::Instant::now() >= deadline {
                return self.status(id).await;
            }
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            tokio::time::sleep(interval.next_delay().min(left)).await;
        }
    }
}

impl RedisQueue {
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

    /// The envelope JSON a job's record keeps (`env`), if any.
    pub(super) async fn stored_envelope(&self, id: &JobId) -> Result<Option<String>, QueueError> {
        redis::cmd("HGET")
            .arg(self.shared.keys_of(id).job(id))
            .arg("env")
            .query_async(&mut self.conn())
            .await
            .map_err(backend("reading a job's envelope"))
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

    /// The records of many jobs with their output blobs, as [`SubmitQueue::status`]
    /// gives each, in two pipelined round trips per partition (the records, then their
    /// outputs) instead of two per job: for a client collecting a batch of results.
    /// `None` for unknown or expired records.
    pub async fn records(&self, ids: &[JobId]) -> Result<Vec<Option<JobRecord>>, QueueError> {
        let by_part = self.shared.by_partition(
            ids.iter()
                .enumerate()
                .map(|(i, id)| (self.shared.keys_of(id).partition(), i)),
        );
        let mut out: Vec<Option<JobRecord>> = vec![None; ids.len()];
        for (p, idx) in by_part.iter().enumerate() {
            if idx.is_empty() {
                continue;
            }
            let keys = &self.shared.parts[p];
            let mut pipe = redis::pipe();
            for &i in idx {
                pipe.cmd("HGETALL").arg(keys.job(&ids[i]));
            }
            let hashes: Vec<HashMap<String, String>> = pipe
                .query_async(&mut self.conn())
                .await
                .map_err(backend("reading job records"))?;
            // Each record's output blob names, then all their values at once.
            let mut blob_pipe = redis::pipe();
            let mut wanted: Vec<(usize, Vec<String>)> = Vec::new();
            for (&i, h) in idx.iter().zip(&hashes) {
                let Some(rec) = record_from_hash(&ids[i], h) else {
                    continue;
                };
                if let Some(result) = &rec.result {
                    let names = blob_names(&result.output);
                    if !names.is_empty() {
                        let keys_of: Vec<String> = names
                            .iter()
                            .map(|n| keys.blob(&ids[i], &format!("out:{n}")))
                            .collect();
                        blob_pipe.cmd("MGET").arg(keys_of);
                        wanted.push((i, names));
                    }
                }
                out[i] = Some(rec);
            }
            if wanted.is_empty() {
                continue;
            }
            let values: Vec<Vec<Option<Vec<u8>>>> = blob_pipe
                .query_async(&mut self.conn())
                .await
                .map_err(backend("reading output blobs"))?;
            for ((i, names), mut vals) in wanted.into_iter().zip(values) {
                self.dereference(&mut vals)
                    .await
                    .map_err(|e| QueueError::Backend(e.to_string()))?;
                let blobs = self
                    .decode_blobs(&ids[i], names, vals)
                    .map_err(|e| QueueError::Backend(e.to_string()))?;
                if let Some(result) = out[i].as_mut().and_then(|r| r.result.as_mut()) {
                    result.blobs = blobs;
                }
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
