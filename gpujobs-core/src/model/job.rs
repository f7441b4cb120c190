//! The `Job` trait: what a job kind is.

use crate::model::cost::Cost;
use crate::model::error::ValidationError;
use crate::model::fingerprint::Fingerprint;
use crate::model::limits::Limits;
use crate::model::tensor::Tensor;
use serde::Serialize;
use serde::de::DeserializeOwned;

/// A job kind: a serializable description of its inputs and parameters.
///
/// Implement it for your own struct to add a kind (see `examples/custom_job.rs`); the
/// built-in kinds live in [`crate::kinds`].
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

    /// A fingerprint of the output's numbers, so results from different devices can be
    /// compared without shipping the data. The default digests the tensors of
    /// [`JobOutput::tensors_mut`] (it takes `&mut self` only to reach them; nothing is
    /// changed); an output without tensors gets the digest of its JSON form's bytes.
    /// Override it where the numbers that matter are not tensors (a loss curve).
    fn fingerprint(&mut self) -> Fingerprint {
        let tensors = self.tensors_mut();
        if !tensors.is_empty() {
            let tensors: Vec<&Tensor> = tensors.into_iter().map(|t| &*t).collect();
            return Fingerprint::of_tensors(&tensors);
        }
        let bytes = serde_json::to_vec(self).unwrap_or_default();
        let as_f32: Vec<f32> = bytes.iter().map(|&b| f32::from(b)).collect();
        Fingerprint::of(&as_f32)
    }
}

/// The outcome of checking an output against the reference implementation.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct Check {
    /// The error measured (its meaning is given by `metric`; 0 when skipped).
    pub error: f64,
    /// The largest error accepted.
    pub tolerance: f64,
    /// What `error` measures, e.g. "max abs" or "rel Frobenius".
    pub metric: String,
    /// Why the check was not made, when it wasn't (the reference would cost too much,
    /// or no cheap check can judge the data). A user must see that nothing was checked
    /// rather than find the check missing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub skipped: Option<String>,
}

impl Check {
    /// A measured check.
    pub fn measured(error: f64, tolerance: f64, metric: impl Into<String>) -> Self {
        Check {
            error,
            tolerance,
            metric: metric.into(),
            skipped: None,
        }
    }

    /// A check that was not made, and why.
    pub fn skipped(why: impl Into<String>) -> Self {
        Check {
            error: 0.0,
            tolerance: 0.0,
            metric: "none".into(),
            skipped: Some(why.into()),
        }
    }

    /// Whether the error is within tolerance (a NaN error never is). A skipped check
    /// has not failed.
    pub fn passed(&self) -> bool {
        self.skipped.is_some() || self.error <= self.tolerance
    }
}

impl std::fmt::Display for Check {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if let Some(why) = &self.skipped {
            return write!(f, "skipped ({why})");
        }
        let verdict = if self.passed() { "ok" } else { "MISMATCH" };
        write!(
            f,
            "{verdict} ({} {:.2e} <= {:.0e})",
            self.metric, self.error, self.tolerance
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Serialize, Deserialize)]
    struct WithTensor {
        t: Tensor,
        note: String,
    }
    impl JobOutput for WithTensor {
        fn tensors_mut(&mut self) -> Vec<&mut Tensor> {
            vec![&mut self.t]
        }
        fn summary(&self) -> String {
            self.note.clone()
        }
    }

    #[derive(Serialize, Deserialize)]
    struct NoTensor {
        n: u32,
    }
    impl JobOutput for NoTensor {
        fn summary(&self) -> String {
            self.n.to_string()
        }
    }

    #[test]
    fn the_default_fingerprint_digests_the_tensors() {
        let values = vec![1.0f32, 2.0, 3.0, 4.0, 5.0];
        let mut out = WithTensor {
            t: Tensor::from_values(vec![5], values.clone()).unwrap(),
            note: "five".into(),
        };
        let f = out.fingerprint();
        assert_eq!(f, Fingerprint::of(&values));
        assert_eq!((f.len, f.sum), (5, 15.0));
        // Without tensors, the JSON form's bytes.
        assert_eq!(
            NoTensor { n: 7 }.fingerprint().len,
            br#"{"n":7}"#.len() as u64
        );
    }

    #[test]
    fn a_skipped_check_passes_and_says_why() {
        let c = Check::skipped("too large");
        assert!(c.passed());
        assert_eq!(c.to_string(), "skipped (too large)");
        let m = Check::measured(2e-4, 1e-4, "max abs");
        assert!(!m.passed());
        assert!(m.to_string().starts_with("MISMATCH"));
    }
}
