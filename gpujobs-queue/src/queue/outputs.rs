//! Attempt-safe outputs: what one attempt writes can become the job's result only
//! through the fenced `complete`, and never replaces what another attempt recorded.
//!
//! Two attempts of one job can both finish: the first stalls past its lease, the job is
//! reclaimed and re-run, and the first then resumes. Each attempt therefore writes under
//! names of its own, tagged with an attempt token (`a<attempt>-<random>`):
//!
//! - output blobs kept in Redis are written by `lua/complete.lua` only when the lease
//!   still holds: small ones travel in the call, larger ones are written first to
//!   `<blob key>@<token>` and renamed by the script (deleted if the lease was lost);
//! - offloaded outputs go to `<offload>/<ns>/<job>/<token>/<blob>`, and the job's blob
//!   key refers to them only once renamed into place; a losing attempt deletes them;
//! - outputs the job asked for at a URL (`results_to`) are written to
//!   `<url>/.attempts/<job>-<token>/<file>.npy` first; once the result is recorded the
//!   winner alone copies them to `<url>/<file>.npy` (replacing any file there at once,
//!   never half-written), points the blob key at that file and deletes its copy. A
//!   loser never touches `<url>/<file>.npy`.

use super::RedisQueue;
use super::blobs::{NewBlob, object_urls, output_paths};
use crate::codec::blob_bytes;
use crate::connection::backend;
use crate::objects::{ObjectError, encode, segment};
use crate::scripts::{Completion, Fence, OutputBlob};
use gpujobs_core::queue::{Lease, LeaseQueue};
use gpujobs_core::{JobError, JobResult, QueueError};

/// Output values up to this size go to Redis inside the completion script (no round
/// trip of their own); larger ones are written before it under the attempt's keys.
const INLINE_OUTPUT_BYTES: usize = 64 << 10;

/// A result whose outputs are written, ready for its fenced write.
pub(super) struct Prepared {
    completion: Completion,
    after: AfterWrite,
}

impl Prepared {
    /// The completion to write, and what to do once its answer is known.
    pub(super) fn split(self) -> (Completion, AfterWrite) {
        (self.completion, self.after)
    }
}

/// What an attempt does once its completion was written or refused.
pub(super) struct AfterWrite {
    /// Objects this attempt wrote: deleted if its result was not recorded.
    objects: Vec<String>,
    /// Outputs to copy where the job asked, once recorded.
    publish: Vec<Publish>,
}

/// An output written under the attempt's own name, and where the job asked for it.
struct Publish {
    /// The attempt's copy.
    staged: String,
    /// The file the user reads (`<results_to>/<file>.npy`).
    url: String,
    /// The output's blob key, pointed at `url` once it is written.
    key: String,
}

/// A name no other attempt of the job picks: its number, and 32 random bits for the
/// rare case of one number delivered twice (a released attempt whose write was still
/// under way when the job was delivered again).
fn attempt_token(lease: &Lease) -> String {
    format!(
        "a{}-{:08x}",
        lease.attempt,
        gpujobs_core::model::id::random_u64() as u32
    )
}

impl RedisQueue {
    /// Stores a result's output blobs under this attempt's own names and builds its
    /// completion; `None` when the attempt was failed instead (an output over the blob
    /// limit, or a store that refused or did not take the outputs).
    pub(super) async fn prepare_completion(
        &self,
        lease: &Lease,
        result: &JobResult,
    ) -> Result<Option<Prepared>, QueueError> {
        let id = &lease.job_id;
        let keys = self.keys_of_lease(lease);
        let cfg = &self.shared.cfg;
        let token = attempt_token(lease);
        // Outputs the job asked for at a URL go there as `<url>/<output path>.npy`.
        let dest = lease.results_to.clone();
        let paths = dest
            .as_ref()
            .map(|_| output_paths(&result.output))
            .unwrap_or_default();
        let mut blobs = Vec::with_capacity(result.blobs.len());
        let mut publish = Vec::new();
        let mut blob_keys = Vec::with_capacity(result.blobs.len());
        for (name, values) in &result.blobs {
            let bytes = blob_bytes(values);
            if bytes.len() as u64 > cfg.max_blob_bytes {
                let why = format!(
                    "output tensor `{name}` of {} bytes exceeds the blob limit of {} bytes",
                    bytes.len(),
                    cfg.max_blob_bytes
                );
                self.fail(lease, &JobError::permanent(why)).await?;
                return Ok(None);
            }
            let key = keys.blob(id, &format!("out:{name}"));
            blob_keys.push(key.clone());
            let to = dest.as_ref().and_then(|d| {
                let (_, path, shape) = paths.iter().find(|(blob, ..)| blob == name)?;
                let file = segment(if path.is_empty() { name } else { path });
                let staged = format!("{d}/.attempts/{}-{token}/{file}.npy", segment(id.as_str()));
                publish.push(Publish {
                    staged: staged.clone(),
                    url: format!("{d}/{file}.npy"),
                    key: key.clone(),
                });
                Some((staged, shape.clone()))
            });
            blobs.push(NewBlob {
                name: format!("out:{name}"),
                bytes,
                to,
            });
        }
        // An object store that refuses or fails: the attempt fails (retried with
        // backoff unless the store's answer can never change), so a result is never
        // recorded without its data.
        let forms = match self.stored_forms(id, Some(&token), blobs).await {
            Ok(forms) => forms,
            Err(e) => {
                let why = format!("storing output blobs: {e}");
                let error = match e {
                    ObjectError::Refused(_) | ObjectError::Rejected(_) => JobError::permanent(why),
                    ObjectError::Missing(_) | ObjectError::Unreachable(_) => {
                        JobError::temporary(why)
                    }
                };
                self.fail(lease, &error).await?;
                return Ok(None);
            }
        };
        let objects = object_urls(&forms);
        // Small values (and references) travel in the completion itself, written only
        // if the lease holds; larger ones are written first under the attempt's own
        // keys, so the script only renames them.
        let mut outputs = Vec::with_capacity(forms.len());
        let (mut staged_keys, mut staged_forms) = (Vec::new(), Vec::new());
        for (key, form) in blob_keys.into_iter().zip(forms) {
            if form.len() <= INLINE_OUTPUT_BYTES {
                outputs.push(OutputBlob::Inline {
                    key,
                    value: form.into_owned(),
                });
            } else {
                let staged = format!("{key}@{token}");
                staged_keys.push(staged.clone());
                staged_forms.push(form);
                outputs.push(OutputBlob::Staged { staged, key });
            }
        }
        if let Err(e) = self
            .set_blobs(&staged_keys, &staged_forms, cfg.finished_ttl)
            .await
        {
            self.objects.delete_all(objects).await;
            return Err(backend("storing result blobs")(e));
        }
        let json = serde_json::to_string(result)?;
        Ok(Some(Prepared {
            completion: Completion::new(
                &Fence::of(lease)?,
                json,
                result.held_by.is_some(),
                outputs,
            ),
            after: AfterWrite { objects, publish },
        }))
    }

    /// Finishes an attempt once its completion's answer is known: a recorded result's
    /// outputs are copied where the job asked; a refused one's objects are deleted.
    pub(super) async fn after_completion(
        &self,
        lease: &Lease,
        after: AfterWrite,
        recorded: bool,
    ) -> Result<(), QueueError> {
        if !recorded {
            // Another attempt's result stands (or will): this one's objects go.
            self.objects.delete_all(after.objects).await;
            return Err(QueueError::LeaseLost(lease.job_id.to_string()));
        }
        for p in after.publish {
            self.publish(lease, p).await;
        }
        Ok(())
    }

    /// Copies a recorded output to the file the job asked for and points its blob key
    /// there. Best effort: if it fails, the result stays readable at the attempt's copy
    /// (the blob key still refers to it), and the failure is logged.
    async fn publish(&self, lease: &Lease, p: Publish) {
        if let Err(e) = self.objects.copy(&p.staged, &p.url).await {
            tracing::warn!(job = %lease.job_id, error = %e, staged = %p.staged, "could not write the result where the job asked; it stays at the attempt's copy");
            return;
        }
        let pointed: Result<(), redis::RedisError> = redis::cmd("SET")
            .arg(&p.key)
            .arg(encode(&p.url))
            .arg("XX")
            .arg("KEEPTTL")
            .query_async(&mut self.conn())
            .await;
        match pointed {
            Ok(()) => self.objects.delete_all(vec![p.staged]).await,
            Err(e) => {
                tracing::warn!(job = %lease.job_id, error = %e, "could not point the output at its file; it stays readable at the attempt's copy")
            }
        }
    }
}
