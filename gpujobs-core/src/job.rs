//! The `Job` trait: what a job kind is.

use crate::cost::Cost;
use crate::error::ValidationError;
use crate::fingerprint::Fingerprint;
use crate::limits::Limits;
use crate::tensor::Tensor;
use serde::Serialize;
use serde::de::DeserializeOwned;

/// A job kind: a serializable description of its inputs and parameters.
///
/// Implement it for your own struct to add a kind (see `examples/custom_job.rs`); the
/// built-in kinds live in [`crate::jobs`].
pub trait Job: Serialize + DeserializeOwned + Clone + Send + Sync + 'static {
    /// The kind's stable name, used on the wire and in the registry (`"matmul"`).
    const KIND: &'static str;

    /// What a successful run produces.
    type Output: JobOutput;

    /// Refuses input that can never run: wrong shapes, empty arrays, absurd sizes (before
    /// anything is allocated), parameters out of range. Called at submit, by the
    /// scheduler, and by the worker before it runs the job.
    fn validate(&self, limits: &Limits) -> Result<(), ValidationError>;

    /// The work the job represents, for placement.
    fn cost(&self) -> Cost;

    /// A short description of the job's size for tables (`"1024x1024x1024"`).
    fn size_label(&self) -> String;

    /// The job's tensors, so large values can travel as blobs. Kinds without tensors
    /// keep the default.
    fn tensors_mut(&mut self) -> Vec<&mut Tensor> {
        Vec::new()
    }

    /// Jobs of increasing size, with real (not synthetic) inputs, that `gpujobs
    /// calibrate` times on every backend to fit this kind's cost model. `quick` asks for
    /// a smaller ladder. Kinds without samples keep the nominal model.
    fn calibration_samples(_quick: bool) -> Vec<Self> {
        Vec::new()
    }

    /// Checks an output against a reference computation, where the kind has one.
    fn check(&self, _output: &Self::Output) -> Option<Check> {
        None
    }
}

/// The output of a job kind.
pub trait JobOutput: Serialize + DeserializeOwned + Send + Sync + 'static {
    /// The output's tensors, so large values can travel as blobs.
    fn tensors_mut(&mut self) -> Vec<&mut Tensor> {
        Vec::new()
    }

    /// One line describing the output.
    fn summary(&self) -> String;

    /// A fingerprint of the output's numbers. The default hashes the JSON form, which
    /// suits small outputs without tensors.
    fn fingerprint(&self) -> Fingerprint {
        let bytes = serde_json::to_vec(self).unwrap_or_default();
        let as_f32: Vec<f32> = bytes.iter().map(|&b| f32::from(b)).collect();
        Fingerprint::of(&as_f32)
    }
}

/// The outcome of checking an output against the reference implementation.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct Check {
    /// The error measured (its meaning is given by `metric`).
    pub error: f64,
    /// The largest error accepted.
    pub tolerance: f64,
    /// What `error` measures, e.g. "max abs" or "rel Frobenius".
    pub metric: String,
}

impl Check {
    /// Whether the error is within tolerance (a NaN error never is).
    pub fn passed(&self) -> bool {
        self.error <= self.tolerance
    }
}

impl std::fmt::Display for Check {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let verdict = if self.passed() { "ok" } else { "MISMATCH" };
        write!(
            f,
            "{verdict} ({} {:.2e} <= {:.0e})",
            self.metric, self.error, self.tolerance
        )
    }
}
