//! Where blob bytes live: in Redis, or, for blobs above the offload size, in object
//! storage with a reference at the blob key (see `crate::objects`). The writers
//! (submit, results) and readers (deliveries, records, graph inputs) all pass here, so
//! nothing else knows about references.

use super::RedisQueue;
use super::submit::BlobError;
use crate::objects::{ObjectError, decode, encode, segment};
use gpujobs_core::buffer::le_bytes;
use gpujobs_core::{JobEnvelope, JobId, npy};
use serde_json::Value;
use std::borrow::Cow;

/// One blob to store: its name in the job (`t0`, `out:image`) and its bytes.
pub(super) struct NewBlob<'a> {
    pub(super) name: String,
    pub(super) bytes: Cow<'a, [u8]>,
    /// Where the job asked for it (`results_to`), written as `.npy` of this shape
    /// whatever its size; `None`: the offload rule decides.
    pub(super) to: Option<(String, Vec<usize>)>,
}

impl RedisQueue {
    /// What to store at each blob key of job `id`, in order: the bytes themselves, or,
    /// for a blob above the offload size, a reference to the object it was just written
    /// to (`<offload url>/<namespace>/<job>/<blob>`; all such writes run concurrently).
    pub(super) async fn stored_forms<'a>(
        &self,
        id: &JobId,
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
                    let url = format!(
                        "{base}/{}/{}/{}",
                        segment(&self.shared.cfg.namespace),
                        segment(id.as_str()),
                        segment(&b.name)
                    );
                    out.push(Cow::Owned(encode(&url)));
                    puts.push((url, b.bytes.into_owned()));
                }
                None => out.push(b.bytes),
            }
        }
        if !puts.is_empty() {
            self.objects.put_all(puts).await?;
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
                Err(ObjectError::Refused(m)) => return Err(BlobError::Malformed(m)),
                Err(ObjectError::Unreachable(m)) => return Err(BlobError::Unreachable(m)),
            };
        }
        Ok(())
    }

    /// Reads the `url` tensors of a delivered job's payload (concurrently) into blobs:
    /// each `{"shape": [..], "url": U}` becomes `{"shape": [..], "blob": "url:<i>"}`,
    /// so executors see an ordinary blob. An object that is missing, outside the
    /// readable prefixes or not exactly the shape's `f32`s fails the job permanently.
    pub(super) async fn fetch_url_tensors(&self, env: &mut JobEnvelope) -> Result<(), BlobError> {
        let mut found = Vec::new();
        rewrite_urls(&mut env.payload, &mut found);
        if found.is_empty() {
            return Ok(());
        }
        let urls: Vec<String> = found.iter().map(|f| f.url.clone()).collect();
        for (i, (f, got)) in found
            .into_iter()
            .zip(self.objects.get_all(urls).await)
            .enumerate()
        {
            let bytes = got.map_err(|e| match e {
                ObjectError::Unreachable(m) => BlobError::Unreachable(m),
                ObjectError::Missing(m) | ObjectError::Refused(m) => BlobError::Malformed(m),
            })?;
            if is_npy(&f.url) {
                let a = self.parse_npy(&f.url, &bytes)?;
                if a.shape.iter().product::<usize>() != f.numel {
                    return Err(BlobError::Malformed(format!(
                        "{} has shape {:?}; its tensor's shape needs {} values",
                        f.url, a.shape, f.numel
                    )));
                }
                env.blobs.insert(format!("url:{i}"), a.data.into());
                continue;
            }
            if Some(bytes.len()) != f.numel.checked_mul(4) {
                return Err(BlobError::Malformed(format!(
                    "object {} holds {} bytes; its tensor's shape needs {} f32 values \
                     ({} bytes, little-endian)",
                    f.url,
                    bytes.len(),
                    f.numel,
                    f.numel.saturating_mul(4)
                )));
            }
            let values = crate::codec::blob_values(&bytes, &self.buffers)
                .map_err(|e| BlobError::Malformed(format!("object {}: {e}", f.url)))?;
            env.blobs.insert(format!("url:{i}"), values.into());
        }
        Ok(())
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
    fn walk(v: &Value, path: &mut Vec<String>, out: &mut Vec<(String, String, Vec<usize>)>) {
        match v {
            Value::Object(map) => {
                if let (Some(Value::String(blob)), Some(Value::Array(dims))) =
                    (map.get("blob"), map.get("shape"))
                {
                    let shape = dims.iter().filter_map(Value::as_u64).map(|d| d as usize);
                    out.push((blob.clone(), path.join("."), shape.collect()));
                    return;
                }
                for (k, x) in map {
                    path.push(k.clone());
                    walk(x, path, out);
                    path.pop();
                }
            }
            Value::Array(items) => {
                for (i, x) in items.iter().enumerate() {
                    path.push(i.to_string());
                    walk(x, path, out);
                    path.pop();
                }
            }
            _ => {}
        }
    }
    let mut out = Vec::new();
    walk(output, &mut Vec::new(), &mut out);
    out
}

/// A `url` tensor found in a payload.
struct UrlTensor {
    url: String,
    /// Elements its shape holds (`usize::MAX` when the product overflows).
    numel: usize,
}

/// Replaces every `url` tensor in `v` by a reference to blob `url:<i>`, in document
/// order, and lists them.
fn rewrite_urls(v: &mut Value, found: &mut Vec<UrlTensor>) {
    match v {
        Value::Object(map) => {
            let numel = map.get("shape").and_then(Value::as_array).map(|dims| {
                dims.iter().try_fold(1usize, |n, d| {
                    d.as_u64()
                        .and_then(|d| n.checked_mul(usize::try_from(d).ok()?))
                })
            });
            if let (Some(numel), Some(Value::String(_))) = (numel, map.get("url")) {
                if let Some(Value::String(url)) = map.remove("url") {
                    let name = format!("url:{}", found.len());
                    map.insert("blob".into(), Value::String(name));
                    found.push(UrlTensor {
                        url,
                        numel: numel.unwrap_or(usize::MAX),
                    });
                }
                return;
            }
            map.values_mut().for_each(|x| rewrite_urls(x, found));
        }
        Value::Array(items) => items.iter_mut().for_each(|x| rewrite_urls(x, found)),
        _ => {}
    }
}

/// The URLs that stored blob values refer to.
pub(super) fn object_urls(stored: &[Cow<'_, [u8]>]) -> Vec<String> {
    stored
        .iter()
        .filter_map(|v| decode(v).map(str::to_string))
        .collect()
}
