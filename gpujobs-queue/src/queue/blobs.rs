//! Where blob bytes live: in Redis, or, for blobs above the offload size, in object
//! storage with a reference at the blob key (see `crate::objects`). The writers
//! (submit, results) and readers (deliveries, records, graph inputs) all pass here, so
//! nothing else knows about references. Every blob write and read of the Redis queue is
//! in this file.

use super::RedisQueue;
use crate::codec::blob_bytes;
use crate::connection::backend;
use crate::keys::Keys;
use crate::objects::{ObjectError, decode, encode, segment};
use crate::scripts::ms;
use gpujobs_core::buffer::le_bytes;
use gpujobs_core::model::tensor_json::{
    Source, blob_names, for_each_tensor_mut, numel_of, shape_of, source_of, tensors,
};
use gpujobs_core::queue::RemoteInput;
use gpujobs_core::{Blobs, QueueError, ValidationError};
use gpujobs_core::{JobEnvelope, JobId, npy};
use serde_json::Value;
use std::borrow::Cow;
use std::time::Duration;

/// One blob to store: its name in the job (`t0`, `out:image`) and its bytes.
pub(super) struct NewBlob<'a> {
    pub(super) name: String,
    pub(super) bytes: Cow<'a, [u8]>,
    /// Where the job asked for it (`results_to`), written as `.npy` of this shape
    /// whatever its size; `None`: the offload rule decides.
    pub(super) to: Option<(String, Vec<usize>)>,
}

impl RedisQueue {
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
            .stored_forms(&job.id, None, blobs)
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
        if let Err(e) = self.set_blobs(&stored.keys, &forms, cfg.blob_ttl).await {
            self.take_back(&stored).await;
            return Err(backend("storing blobs")(e));
        }
        Ok(stored)
    }

    /// Writes blob values (or references) at their keys, expiring after `ttl`, in one
    /// pipelined round trip: how inputs at submit and outputs at completion are stored.
    pub(super) async fn set_blobs(
        &self,
        keys: &[String],
        forms: &[Cow<'_, [u8]>],
        ttl: Duration,
    ) -> Result<(), redis::RedisError> {
        if keys.is_empty() {
            return Ok(());
        }
        let mut pipe = redis::pipe();
        for (key, form) in keys.iter().zip(forms) {
            pipe.cmd("SET")
                .arg(key)
                .arg(&**form)
                .arg("PX")
                .arg(ms(ttl))
                .ignore();
        }
        pipe.query_async::<()>(&mut self.conn()).await
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

    /// Loads the blobs a payload or output refers to (`prefix` is `out:` for outputs),
    /// following references into object storage. A missing blob (expired) stays
    /// missing: the executor then fails the job permanently with "blob `t0` is missing".
    pub(super) async fn load_blobs(
        &self,
        keys: &Keys,
        id: &JobId,
        payload: &serde_json::Value,
        prefix: &str,
    ) -> Result<Blobs, BlobError> {
        let (names, mut values) = self.read_blob_values(keys, id, payload, prefix).await?;
        self.dereference(&mut values).await?;
        self.decode_blobs(id, names, values)
    }

    /// A delivered job's blobs: those in Redis read now, those in object storage left
    /// for the worker to read in the job's own task ([`Delivery::remote`]), with the
    /// payload's `url` tensors rewritten to blobs that are read the same way.
    ///
    /// [`Delivery::remote`]: gpujobs_core::queue::Delivery::remote
    pub(super) async fn load_delivered_blobs(
        &self,
        keys: &Keys,
        env: &mut JobEnvelope,
    ) -> Result<Vec<RemoteInput>, BlobError> {
        let (names, mut values) = self
            .read_blob_values(keys, &env.id, &env.payload, "")
            .await?;
        let mut remote = Vec::new();
        for (name, value) in names.iter().zip(values.iter_mut()) {
            if let Some(url) = value.as_deref().and_then(decode) {
                remote.push(RemoteInput {
                    blob: name.clone(),
                    url: url.to_string(),
                    numel: None,
                });
                *value = None;
            }
        }
        let (names, values): (Vec<String>, Vec<Option<Vec<u8>>>) = names
            .into_iter()
            .zip(values)
            .filter(|(_, v)| v.is_some())
            .unzip();
        env.blobs = self.decode_blobs(&env.id, names, values)?;
        let mut found = Vec::new();
        rewrite_urls(&mut env.payload, &mut found);
        remote.extend(found);
        Ok(remote)
    }

    /// The blob values (or references) of a payload's blobs, as stored in Redis.
    async fn read_blob_values(
        &self,
        keys: &Keys,
        id: &JobId,
        payload: &serde_json::Value,
        prefix: &str,
    ) -> Result<(Vec<String>, Vec<Option<Vec<u8>>>), BlobError> {
        let refs = blob_names(payload);
        if refs.is_empty() {
            return Ok((Vec::new(), Vec::new()));
        }
        let names: Vec<String> = refs
            .iter()
            .map(|r| keys.blob(id, &format!("{prefix}{r}")))
            .collect();
        let values: Vec<Option<Vec<u8>>> = redis::cmd("MGET")
            .arg(&names)
            .query_async(&mut self.conn())
            .await
            .map_err(|e| BlobError::Unreachable(format!("reading blobs: {e}")))?;
        Ok((refs, values))
    }

    /// Blob bytes as values, in buffers from this queue's pool; absent ones left out.
    pub(super) fn decode_blobs(
        &self,
        id: &JobId,
        names: Vec<String>,
        values: Vec<Option<Vec<u8>>>,
    ) -> Result<Blobs, BlobError> {
        let mut blobs = Blobs::new();
        for (name, bytes) in names.into_iter().zip(values) {
            if let Some(bytes) = bytes {
                let v = crate::codec::blob_values(&bytes, &self.buffers)
                    .map_err(|e| BlobError::Malformed(format!("blob `{name}` of job {id}: {e}")))?;
                blobs.insert(name, v.into());
            }
        }
        Ok(blobs)
    }

    /// What to store at each blob key of job `id`, in order: the bytes themselves, or,
    /// for a blob above the offload size, a reference to the object it was just written
    /// to (`<offload url>/<namespace>/<job>/<blob>`, or `.../<job>/<attempt>/<blob>` for
    /// an attempt's outputs, so attempts never write over each other; all such writes
    /// run concurrently). When a write fails, the objects already written are deleted.
    pub(super) async fn stored_forms<'a>(
        &self,
        id: &JobId,
        attempt: Option<&str>,
        blobs: Vec<NewBlob<'a>>,
    ) -> Result<Vec<Cow<'a, [u8]>>, ObjectError> {
        let mut puts = Vec::new();
        let mut out = Vec::with_capacity(blobs.len());
        for b in blobs {
            if let Some((url, shape)) = b.to {
                out.push(Cow::Owned(encode(&url)));
                puts.push((url, npy::encode(&shape, &b.bytes)));
                continue;
            }
            match self.objects.offload_url(b.bytes.len()) {
                Some(base) => {
                    let mut url = format!(
                        "{base}/{}/{}/",
                        segment(&self.shared.cfg.namespace),
                        segment(id.as_str())
                    );
                    if let Some(a) = attempt {
                        url.push_str(&segment(a));
                        url.push('/');
                    }
                    url.push_str(&segment(&b.name));
                    out.push(Cow::Owned(encode(&url)));
                    puts.push((url, b.bytes.into_owned()));
                }
                None => out.push(b.bytes),
            }
        }
        if !puts.is_empty() {
            let urls: Vec<String> = puts.iter().map(|(u, _)| u.clone()).collect();
            if let Err(e) = self.objects.put_all(puts).await {
                self.objects.delete_all(urls).await;
                return Err(e);
            }
        }
        Ok(out)
    }

    /// Replaces every reference among blob values read from Redis by its object's bytes
    /// (read concurrently). A missing object reads as a missing blob.
    pub(super) async fn dereference(
        &self,
        values: &mut [Option<Vec<u8>>],
    ) -> Result<(), BlobError> {
        let (slots, urls): (Vec<usize>, Vec<String>) = values
            .iter()
            .enumerate()
            .filter_map(|(i, v)| Some((i, decode(v.as_deref()?)?.to_string())))
            .unzip();
        if urls.is_empty() {
            return Ok(());
        }
        let got = self.objects.get_all(urls.clone()).await;
        for ((slot, url), got) in slots.into_iter().zip(&urls).zip(got) {
            values[slot] = match got {
                // A result written where its job asked (`results_to`) is an `.npy`.
                Ok(bytes) if is_npy(url) => {
                    Some(le_bytes(&self.parse_npy(url, &bytes)?.data).into_owned())
                }
                Ok(bytes) => Some(bytes),
                Err(ObjectError::Missing(_)) => None,
                Err(ObjectError::Refused(m) | ObjectError::Rejected(m)) => {
                    return Err(BlobError::Malformed(m));
                }
                Err(ObjectError::Unreachable(m)) => return Err(BlobError::Unreachable(m)),
            };
        }
        Ok(())
    }

    /// Reads a delivered job's inputs in object storage (concurrently) into blobs: a
    /// blob stored by reference as it was written, a `url` tensor as `.npy` or raw
    /// little-endian `f32` that must hold exactly its shape's values. An object that is
    /// missing, outside the readable prefixes, refused by the store or of the wrong size
    /// fails the job permanently; a store that does not answer, temporarily.
    pub(super) async fn read_remote(
        &self,
        id: &JobId,
        remote: &[RemoteInput],
    ) -> Result<Blobs, BlobError> {
        let urls: Vec<String> = remote.iter().map(|r| r.url.clone()).collect();
        let mut blobs = Blobs::new();
        for (r, got) in remote.iter().zip(self.objects.get_all(urls).await) {
            let bytes = got.map_err(|e| match e {
                ObjectError::Unreachable(m) => BlobError::Unreachable(m),
                ObjectError::Missing(_) => BlobError::Malformed(format!(
                    "blob `{}` of job {id}: no object at {} (deleted, or expired by a lifecycle rule)",
                    r.blob, r.url
                )),
                ObjectError::Refused(m) | ObjectError::Rejected(m) => BlobError::Malformed(m),
            })?;
            let values = if is_npy(&r.url) {
                let a = self.parse_npy(&r.url, &bytes)?;
                if let Some(numel) = r.numel
                    && a.shape.iter().product::<usize>() != numel
                {
                    return Err(BlobError::Malformed(format!(
                        "{} has shape {:?}; its tensor's shape needs {numel} values",
                        r.url, a.shape
                    )));
                }
                a.data
            } else {
                if let Some(numel) = r.numel
                    && Some(bytes.len()) != numel.checked_mul(4)
                {
                    return Err(BlobError::Malformed(format!(
                        "object {} holds {} bytes; its tensor's shape needs {numel} f32 values \
                         ({} bytes, little-endian)",
                        r.url,
                        bytes.len(),
                        numel.saturating_mul(4)
                    )));
                }
                crate::codec::blob_values(&bytes, &self.buffers)
                    .map_err(|e| BlobError::Malformed(format!("object {}: {e}", r.url)))?
            };
            blobs.insert(r.blob.clone(), values.into());
        }
        Ok(blobs)
    }

    /// An `.npy` object's array, in a buffer from this queue's pool.
    fn parse_npy(&self, url: &str, bytes: &[u8]) -> Result<npy::NpyArray, BlobError> {
        npy::parse(bytes, url, &self.buffers).map_err(|e| BlobError::Malformed(e.to_string()))
    }
}

/// Whether an object is read as NumPy `.npy` (any dtype numpy writes that converts to
/// `f32`) rather than raw little-endian `f32`: by its name.
fn is_npy(url: &str) -> bool {
    url.to_ascii_lowercase().ends_with(".npy")
}

/// Where each output blob sits in a result's output JSON: `(blob name, path, shape)`,
/// the path as graph references write it (`c`, `weights.0`).
pub(super) fn output_paths(output: &Value) -> Vec<(String, String, Vec<usize>)> {
    tensors(output)
        .into_iter()
        .filter_map(|t| match t.source {
            Source::Blob(blob) => Some((blob.to_string(), t.path, t.shape.unwrap_or_default())),
            _ => None,
        })
        .collect()
}

/// Replaces every `url` tensor in `v` by a reference to blob `url:<i>`, in document
/// order, and lists them (a shape whose product overflows needs `usize::MAX` values, so
/// no object matches it).
fn rewrite_urls(v: &mut Value, found: &mut Vec<RemoteInput>) {
    let _ = for_each_tensor_mut(v, |_, map| {
        let Some(Source::Url(_)) = source_of(map) else {
            return Ok::<_, std::convert::Infallible>(());
        };
        let numel = shape_of(map).as_deref().and_then(numel_of);
        if let Some(Value::String(url)) = map.remove("url") {
            let name = format!("url:{}", found.len());
            map.insert("blob".into(), Value::String(name.clone()));
            found.push(RemoteInput {
                blob: name,
                url,
                numel: Some(numel.unwrap_or(usize::MAX)),
            });
        }
        Ok(())
    });
}

/// The URLs that stored blob values refer to.
pub(super) fn object_urls(stored: &[Cow<'_, [u8]>]) -> Vec<String> {
    stored
        .iter()
        .filter_map(|v| decode(v).map(str::to_string))
        .collect()
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
    /// Redis or the object store did not answer: the job may run later.
    #[error("{0}")]
    Unreachable(String),
    /// A blob is not what its job says (wrong length, missing object, refused by the
    /// store): the job can never run.
    #[error("{0}")]
    Malformed(String),
}
