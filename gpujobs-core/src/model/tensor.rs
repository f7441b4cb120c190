//! Dense `f32` tensors as job inputs and outputs, and how they travel.
//!
//! A tensor's data is one of:
//! - **synthetic**: a seed and a range; the values are generated where the job runs
//!   (see [`crate::model::synth`]), so a 4096² matmul travels as a few bytes;
//! - **values**: real data held in memory (shared, never copied when a job moves
//!   between threads of one process);
//! - **blob**: a reference to a binary blob that travels beside the job's JSON, so large
//!   tensors never become JSON numbers. Before a job is queued its values are moved into
//!   blobs ([`Tensor::detach`]); before it runs they are put back ([`Tensor::resolve`]);
//! - **url**: an object in object storage (`s3://bucket/key`, `file:///path`) holding
//!   the values as little-endian `f32`; the Redis queue's worker reads it before the
//!   job runs (feature `objects` of gpujobs-queue), so Redis carries only the URL;
//! - **from**: another job's output ([`OutputRef`]), for jobs of a graph (see
//!   [`crate::model::graph`]). The worker that runs the job replaces it by the parent's values
//!   (from its own cache when it made them, else from the queue) before the job runs.
//!
//! In JSON a tensor is `{"shape": [..], <one source>}` where the source is
//! `"synthetic": {"seed": 1, "lo": 0, "hi": 1}`, `"data": [1.0, 2.0]` (small inputs from
//! other languages), `"data_b64": "<little-endian f32 bytes, base64>"` or
//! `"blob": "t0"`, `"url": "s3://bucket/key"` or
//! `"from": {"job": "<id>", "output": "image"}`.

use crate::buffer::HostBuf;
use crate::model::error::ValidationError;
use crate::model::fingerprint::Fingerprint;
use base64::Engine;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::Arc;

/// Tensor values in memory, shared without copying: a [`HostBuf`] behind an `Arc`.
///
/// Made from a backend's pooled output, from a file read into a page-aligned buffer, or
/// from a caller's `Vec<f32>` (adopted as it is, no copy). When the last clone drops, a
/// pooled buffer goes back to its pool.
///
/// It may carry the fingerprint of exactly these values, made by the kernel that wrote
/// them while they were in cache ([`Values::with_fingerprint`]), so that encoding the
/// result does not read them all again.
#[derive(Clone)]
pub struct Values(Arc<HostBuf>, Option<Fingerprint>);

impl PartialEq for Values {
    /// The values, not whether a fingerprint came along.
    fn eq(&self, other: &Self) -> bool {
        self.0 == other.0
    }
}

impl Values {
    /// These values with their fingerprint, computed while they were written (see
    /// [`crate::model::fingerprint::BlockDigests`]). The caller vouches that it is
    /// [`Fingerprint::of`] these very values; one of another length is ignored.
    pub fn with_fingerprint(mut self, fingerprint: Fingerprint) -> Self {
        if fingerprint.len == self.0.as_slice().len() as u64 {
            self.1 = Some(fingerprint);
        }
        self
    }

    /// The fingerprint made while the values were written, if any.
    pub fn fingerprint(&self) -> Option<Fingerprint> {
        self.1
    }

    /// The values as a slice.
    pub fn as_slice(&self) -> &[f32] {
        self.0.as_slice()
    }

    /// The buffer holding them.
    pub fn buf(&self) -> &HostBuf {
        &self.0
    }

    /// Whether two handles share one buffer.
    pub fn ptr_eq(a: &Values, b: &Values) -> bool {
        Arc::ptr_eq(&a.0, &b.0)
    }

    /// A handle that names these values without keeping them alive: a device cache
    /// keys its copy by it, and it stops matching once the values are dropped.
    pub fn downgrade(&self) -> WeakValues {
        WeakValues(Arc::downgrade(&self.0))
    }

    /// The buffer itself when this is its only handle, else `self` back.
    pub fn try_unwrap(self) -> Result<HostBuf, Values> {
        let fingerprint = self.1;
        Arc::try_unwrap(self.0).map_err(|shared| Values(shared, fingerprint))
    }
}

/// A non-owning handle to [`Values`] ([`Values::downgrade`]). While it exists the
/// values' handle cannot be reused for other values, so matching it is an identity test.
#[derive(Debug, Clone)]
pub struct WeakValues(std::sync::Weak<HostBuf>);

impl WeakValues {
    /// Whether `v` is the very values this handle was made from, still alive.
    pub fn refers_to(&self, v: &Values) -> bool {
        std::ptr::eq(self.0.as_ptr(), Arc::as_ptr(&v.0)) && self.is_alive()
    }

    /// Whether the values still exist.
    pub fn is_alive(&self) -> bool {
        self.0.strong_count() > 0
    }
}

impl std::ops::Deref for Values {
    type Target = [f32];
    fn deref(&self) -> &[f32] {
        self.0.as_slice()
    }
}

impl From<HostBuf> for Values {
    fn from(b: HostBuf) -> Self {
        Values(Arc::new(b), None)
    }
}

impl From<Arc<HostBuf>> for Values {
    fn from(b: Arc<HostBuf>) -> Self {
        Values(b, None)
    }
}

impl From<Vec<f32>> for Values {
    /// Adopts the vector without copying.
    fn from(v: Vec<f32>) -> Self {
        Values(Arc::new(HostBuf::from(v)), None)
    }
}

impl std::fmt::Debug for Values {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

/// Binary tensor data travelling beside a job's JSON, by name.
pub type Blobs = BTreeMap<String, Values>;

/// Parameters of a synthetic tensor: uniform values in `[lo, hi)` from the stream `seed`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Synthetic {
    /// The stream seed.
    pub seed: u64,
    /// Lower bound of the values (inclusive).
    #[serde(default)]
    pub lo: f32,
    /// Upper bound of the values (exclusive).
    #[serde(default = "one")]
    pub hi: f32,
}

fn one() -> f32 {
    1.0
}

/// Where a tensor's values come from.
#[derive(Debug, Clone, PartialEq)]
pub enum TensorData {
    /// Generated deterministically where the job runs.
    Synthetic(Synthetic),
    /// Real values in memory.
    Values(Values),
    /// Values stored in the named blob of the job.
    Blob(String),
    /// An output of another job, resolved by the worker before the job runs.
    Output(OutputRef),
    /// An object in object storage (little-endian `f32`), read by the worker's queue
    /// before the job runs.
    Url(String),
}

/// Names one output tensor of another job: a graph edge.
///
/// `output` is the tensor's place in the parent's output JSON: a field name (`"image"`
/// of an image filter, `"c"` of a matmul), with `.` between levels and array indices as
/// numbers (`"weights.0"` of an MLP training).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutputRef {
    /// The job that produces the tensor.
    pub job: crate::model::id::JobId,
    /// Where the tensor is in that job's output.
    pub output: String,
}

/// A dense, row-major `f32` tensor.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "TensorRepr", into = "TensorRepr")]
pub struct Tensor {
    shape: Vec<usize>,
    data: TensorData,
}

impl Tensor {
    /// A tensor of real values. Fails when `values.len()` is not the shape's product.
    pub fn from_values(
        shape: Vec<usize>,
        values: impl Into<Values>,
    ) -> Result<Self, ValidationError> {
        let values = values.into();
        let t = Tensor {
            shape,
            data: TensorData::Values(values),
        };
        t.check_length("tensor")?;
        Ok(t)
    }

    /// A synthetic tensor of uniform values in `[lo, hi)`.
    pub fn synthetic(shape: Vec<usize>, seed: u64, lo: f32, hi: f32) -> Self {
        Tensor {
            shape,
            data: TensorData::Synthetic(Synthetic { seed, lo, hi }),
        }
    }

    /// The output `output` of job `job`, which will have shape `shape` (checked when the
    /// job runs: a parent whose output has another shape fails the child, naming both).
    pub fn output_of(job: &crate::model::id::JobId, output: &str, shape: Vec<usize>) -> Self {
        Tensor {
            shape,
            data: TensorData::Output(OutputRef {
                job: job.clone(),
                output: output.to_string(),
            }),
        }
    }

    /// Values stored at `url` (little-endian `f32`, as many as the shape holds), read
    /// where the job runs; only the URL travels through the queue.
    pub fn from_url(shape: Vec<usize>, url: impl Into<String>) -> Self {
        Tensor {
            shape,
            data: TensorData::Url(url.into()),
        }
    }

    /// The shape, outermost dimension first.
    pub fn shape(&self) -> &[usize] {
        &self.shape
    }

    /// Where the values come from.
    pub fn data(&self) -> &TensorData {
        &self.data
    }

    /// Number of elements, or `None` if the shape's product overflows `usize`.
    pub fn numel(&self) -> Option<usize> {
        self.shape
            .iter()
            .try_fold(1usize, |acc, &d| acc.checked_mul(d))
    }

    /// Checks the rank, that no dimension is zero, and that the element count is
    /// representable; returns the element count.
    pub fn check_shape(&self, name: &str, rank: usize) -> Result<usize, ValidationError> {
        if self.shape.len() != rank {
            return Err(ValidationError::Rank {
                name: name.into(),
                expected: rank,
                shape: self.shape.clone(),
            });
        }
        if self.shape.contains(&0) {
            return Err(ValidationError::Empty(format!(
                "`{name}` has shape {:?}",
                self.shape
            )));
        }
        self.numel().ok_or_else(|| ValidationError::TooLarge {
            needed: u128::MAX,
            limit: u64::MAX,
            what: format!(
                "`{name}` of shape {:?} overflows the address space",
                self.shape
            ),
        })
    }

    /// Checks that in-memory values match the declared shape, and that synthetic ranges
    /// are finite with `lo < hi`.
    pub fn check_length(&self, name: &str) -> Result<(), ValidationError> {
        match &self.data {
            TensorData::Values(v) => {
                let expected = self.numel().unwrap_or(usize::MAX);
                if v.len() != expected {
                    return Err(ValidationError::DataLength {
                        name: name.into(),
                        shape: self.shape.clone(),
                        expected,
                        actual: v.len(),
                    });
                }
            }
            TensorData::Synthetic(s) => {
                if !(s.lo.is_finite() && s.hi.is_finite() && s.lo < s.hi) {
                    return Err(ValidationError::InvalidParameter {
                        name: format!("{name}.synthetic"),
                        reason: format!("range [{}, {}) is empty or not finite", s.lo, s.hi),
                    });
                }
            }
            TensorData::Blob(_) | TensorData::Output(_) | TensorData::Url(_) => {}
        }
        Ok(())
    }

    /// The values when they are held in memory (neither synthetic nor an unresolved
    /// blob): what validation scans, so it never generates or allocates anything.
    pub fn stored(&self) -> Option<&Values> {
        match &self.data {
            TensorData::Values(v) => Some(v),
            _ => None,
        }
    }

    /// The values, generating synthetic data if needed. Blobs must have been resolved.
    pub fn values(&self) -> Result<Values, ValidationError> {
        match &self.data {
            TensorData::Values(v) => Ok(v.clone()),
            TensorData::Synthetic(s) => {
                let n = self
                    .numel()
                    .ok_or_else(|| ValidationError::Empty("overflowing shape".into()))?;
                let mut out = vec![0f32; n];
                crate::model::synth::fill_uniform(&mut out, s.seed, 0, s.lo, s.hi);
                Ok(out.into())
            }
            TensorData::Blob(key) => Err(ValidationError::MissingBlob(key.clone())),
            TensorData::Output(r) => Err(ValidationError::MissingBlob(r.to_string())),
            TensorData::Url(u) => Err(ValidationError::NotFetched(u.clone())),
        }
    }

    /// Writes elements `start..start + out.len()` into `out`, so a backend can generate
    /// or copy a large tensor in parallel chunks.
    pub fn fill_range(&self, out: &mut [f32], start: usize) -> Result<(), ValidationError> {
        match &self.data {
            TensorData::Values(v) => {
                let src = v.get(start..start + out.len()).ok_or_else(|| {
                    ValidationError::Empty(format!(
                        "range {start}..{} outside tensor",
                        start + out.len()
                    ))
                })?;
                out.copy_from_slice(src);
                Ok(())
            }
            TensorData::Synthetic(s) => {
                crate::model::synth::fill_uniform(out, s.seed, start as u64, s.lo, s.hi);
                Ok(())
            }
            TensorData::Blob(key) => Err(ValidationError::MissingBlob(key.clone())),
            TensorData::Output(r) => Err(ValidationError::MissingBlob(r.to_string())),
            TensorData::Url(u) => Err(ValidationError::NotFetched(u.clone())),
        }
    }

    /// Bytes that must be copied to a device to use this tensor there: zero for
    /// synthetic data (generated on the device), its size otherwise.
    pub fn upload_bytes(&self) -> f64 {
        match self.data {
            TensorData::Synthetic(_) => 0.0,
            _ => 4.0 * self.numel().unwrap_or(0) as f64,
        }
    }

    /// Moves in-memory values into `blobs` under `key`, leaving a reference behind.
    /// Synthetic tensors stay as they are: they are cheaper to send than any blob.
    pub fn detach(&mut self, key: &str, blobs: &mut Blobs) {
        if let TensorData::Values(v) = &self.data {
            blobs.insert(key.to_string(), v.clone());
            self.data = TensorData::Blob(key.to_string());
        }
    }

    /// Replaces a blob reference by the blob's values.
    pub fn resolve(&mut self, blobs: &Blobs) -> Result<(), ValidationError> {
        if let TensorData::Blob(key) = &self.data {
            let v = blobs
                .get(key)
                .ok_or_else(|| ValidationError::MissingBlob(key.clone()))?;
            self.data = TensorData::Values(v.clone());
        }
        Ok(())
    }
}

/// Moves the values of every tensor into blobs named `t0`, `t1`, ... in order.
pub fn detach_all(tensors: Vec<&mut Tensor>, blobs: &mut Blobs) {
    for (i, t) in tensors.into_iter().enumerate() {
        t.detach(&format!("t{i}"), blobs);
    }
}

/// Resolves every blob reference of `tensors` from `blobs`.
pub fn resolve_all(tensors: Vec<&mut Tensor>, blobs: &Blobs) -> Result<(), ValidationError> {
    tensors.into_iter().try_for_each(|t| t.resolve(blobs))
}

/// The JSON form of a tensor: a shape and exactly one source.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct TensorRepr {
    shape: Vec<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    synthetic: Option<Synthetic>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    data: Option<Vec<f32>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    data_b64: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    blob: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    from: Option<OutputRef>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    url: Option<String>,
}

impl TryFrom<TensorRepr> for Tensor {
    type Error = String;

    fn try_from(r: TensorRepr) -> Result<Self, String> {
        let sources = usize::from(r.synthetic.is_some())
            + usize::from(r.data.is_some())
            + usize::from(r.data_b64.is_some())
            + usize::from(r.blob.is_some())
            + usize::from(r.from.is_some())
            + usize::from(r.url.is_some());
        if sources != 1 {
            return Err(format!(
                "a tensor needs exactly one of `synthetic`, `data`, `data_b64`, `blob`, `from`, `url`; got {sources}"
            ));
        }
        let data = if let Some(s) = r.synthetic {
            TensorData::Synthetic(s)
        } else if let Some(d) = r.data {
            TensorData::Values(d.into())
        } else if let Some(b64) = r.data_b64 {
            TensorData::Values(decode_f32_base64(&b64)?.into())
        } else if let Some(key) = r.blob {
            TensorData::Blob(key)
        } else if let Some(from) = r.from {
            TensorData::Output(from)
        } else if let Some(url) = r.url {
            TensorData::Url(url)
        } else {
            unreachable!("exactly one source was counted above")
        };
        Ok(Tensor {
            shape: r.shape,
            data,
        })
    }
}

impl From<Tensor> for TensorRepr {
    fn from(t: Tensor) -> Self {
        let mut r = TensorRepr {
            shape: t.shape,
            synthetic: None,
            data: None,
            data_b64: None,
            blob: None,
            from: None,
            url: None,
        };
        match t.data {
            TensorData::Synthetic(s) => r.synthetic = Some(s),
            TensorData::Values(v) => r.data_b64 = Some(encode_f32_base64(&v)),
            TensorData::Blob(k) => r.blob = Some(k),
            TensorData::Output(o) => r.from = Some(o),
            TensorData::Url(u) => r.url = Some(u),
        }
        r
    }
}

impl std::fmt::Display for OutputRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "output `{}` of job {}", self.output, self.job)
    }
}

/// Little-endian `f32` bytes of `values`.
pub fn f32_to_le_bytes(values: &[f32]) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(values.len() * 4);
    for v in values {
        bytes.extend_from_slice(&v.to_le_bytes());
    }
    bytes
}

/// `f32` values from little-endian bytes; fails when the length is not a multiple of 4.
pub fn f32_from_le_bytes(bytes: &[u8]) -> Result<Vec<f32>, String> {
    if !bytes.len().is_multiple_of(4) {
        return Err(format!(
            "{} bytes is not a whole number of f32 values",
            bytes.len()
        ));
    }
    Ok(bytes
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect())
}

fn encode_f32_base64(values: &[f32]) -> String {
    base64::engine::general_purpose::STANDARD.encode(f32_to_le_bytes(values))
}

fn decode_f32_base64(s: &str) -> Result<Vec<f32>, String> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(s)
        .map_err(|e| format!("`data_b64` is not valid base64: {e}"))?;
    f32_from_le_bytes(&bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_round_trip_of_each_source() {
        let t = Tensor::from_values(vec![2, 2], vec![1.0, -2.5, 3.0, 0.0]).unwrap();
        let j = serde_json::to_string(&t).unwrap();
        assert!(j.contains("data_b64"), "{j}");
        assert_eq!(serde_json::from_str::<Tensor>(&j).unwrap(), t);

        let s = Tensor::synthetic(vec![3], 9, 0.0, 1.0);
        assert_eq!(
            serde_json::from_str::<Tensor>(&serde_json::to_string(&s).unwrap()).unwrap(),
            s
        );

        let u = Tensor::from_url(vec![3], "s3://b/k");
        let j = serde_json::to_string(&u).unwrap();
        assert_eq!(j, r#"{"shape":[3],"url":"s3://b/k"}"#);
        assert_eq!(serde_json::from_str::<Tensor>(&j).unwrap(), u);
        assert!(matches!(u.values(), Err(ValidationError::NotFetched(_))));

        let plain: Tensor = serde_json::from_str(r#"{"shape":[3],"data":[1,2,3]}"#).unwrap();
        assert_eq!(&*plain.values().unwrap(), &[1.0, 2.0, 3.0]);
    }

    #[test]
    fn json_refuses_ambiguous_or_broken_sources() {
        assert!(serde_json::from_str::<Tensor>(r#"{"shape":[1]}"#).is_err());
        assert!(serde_json::from_str::<Tensor>(r#"{"shape":[1],"data":[1],"blob":"x"}"#).is_err());
        assert!(serde_json::from_str::<Tensor>(r#"{"shape":[1],"data_b64":"!!"}"#).is_err());
        assert!(serde_json::from_str::<Tensor>(r#"{"shape":[1],"data_b64":"AAA="}"#).is_err());
        assert!(serde_json::from_str::<Tensor>(r#"{"shape":[1],"data":[1],"junk":1}"#).is_err());
    }

    #[test]
    fn detach_and_resolve_share_memory() {
        let mut t = Tensor::from_values(vec![4], vec![1.0; 4]).unwrap();
        let original = t.values().unwrap();
        let mut blobs = Blobs::new();
        t.detach("t0", &mut blobs);
        assert_eq!(t.data(), &TensorData::Blob("t0".into()));
        assert!(t.values().is_err());
        t.resolve(&blobs).unwrap();
        assert!(Values::ptr_eq(&original, &t.values().unwrap()));
    }

    #[test]
    fn shape_checks() {
        let t = Tensor::synthetic(vec![0, 3], 1, 0.0, 1.0);
        assert!(matches!(
            t.check_shape("a", 2),
            Err(ValidationError::Empty(_))
        ));
        let t = Tensor::synthetic(vec![usize::MAX, 3], 1, 0.0, 1.0);
        assert!(matches!(
            t.check_shape("a", 2),
            Err(ValidationError::TooLarge { .. })
        ));
        let t = Tensor::synthetic(vec![3], 1, 0.0, 1.0);
        assert!(matches!(
            t.check_shape("a", 2),
            Err(ValidationError::Rank { .. })
        ));
        assert!(Tensor::from_values(vec![3], vec![1.0]).is_err());
        let bad = Tensor::synthetic(vec![3], 1, 1.0, 1.0);
        assert!(bad.check_length("a").is_err());
    }

    #[test]
    fn fill_range_matches_values() {
        let t = Tensor::synthetic(vec![100], 5, -1.0, 1.0);
        let all = t.values().unwrap();
        let mut part = vec![0f32; 30];
        t.fill_range(&mut part, 40).unwrap();
        assert_eq!(&all[40..70], &part[..]);
    }
}
