//! `vector-add`: `c = a + b` over `f32` vectors. Memory-bound: on a GPU the PCIe copies
//! cost far more than the kernel, which is why placement usually keeps it on the CPU.

use super::check_tensor;
use crate::kinds::reference;
use crate::model::cost::Cost;
use crate::model::error::ValidationError;
use crate::model::job::{Check, Job, JobOutput};
use crate::model::limits::{Limits, f32_bytes};
use crate::model::synth::derive_seed;
use crate::model::tensor::Tensor;
use serde::{Deserialize, Serialize};

/// Adds two vectors of equal length.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VectorAdd {
    /// First operand, shape `[len]`.
    pub a: Tensor,
    /// Second operand, shape `[len]`.
    pub b: Tensor,
}

impl VectorAdd {
    /// The kind's name.
    pub const KIND_NAME: &'static str = "vector-add";

    /// Two synthetic vectors of `len` values in `[-1, 1)`.
    pub fn synthetic(len: usize, seed: u64) -> Self {
        VectorAdd {
            a: Tensor::synthetic(vec![len], derive_seed(seed, "a"), -1.0, 1.0),
            b: Tensor::synthetic(vec![len], derive_seed(seed, "b"), -1.0, 1.0),
        }
    }

    /// The vectors' length (valid after [`Job::validate`]).
    pub fn len(&self) -> usize {
        self.a.shape().first().copied().unwrap_or(0)
    }

    /// Whether the vectors are empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The sum vector.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VectorAddOutput {
    /// `a + b`, shape `[len]`.
    pub c: Tensor,
}

impl JobOutput for VectorAddOutput {
    fn tensors_mut(&mut self) -> Vec<&mut Tensor> {
        vec![&mut self.c]
    }
    fn summary(&self) -> String {
        format!("c: {:?}", self.c.shape())
    }
}

impl Job for VectorAdd {
    const KIND: &'static str = Self::KIND_NAME;
    type Output = VectorAddOutput;

    fn validate(&self, limits: &Limits) -> Result<(), ValidationError> {
        let na = check_tensor(&self.a, "a", 1)?;
        let nb = check_tensor(&self.b, "b", 1)?;
        if na != nb {
            return Err(ValidationError::ShapeMismatch(format!(
                "vector-add needs equal lengths, got a[{na}] and b[{nb}]"
            )));
        }
        limits.check(f32_bytes(3 * na as u128), "vector-add a, b and c")
    }

    fn cost(&self) -> Cost {
        let n = self.len() as f64;
        Cost {
            flops: n,
            bytes: 12.0 * n,
            transfer_bytes: self.a.upload_bytes() + self.b.upload_bytes() + 4.0 * n,
            memory_bytes: 12 * self.len() as u64,
            launches: 1,
        }
    }

    fn size_label(&self) -> String {
        format!("{}", self.len())
    }

    fn tensors_mut(&mut self) -> Vec<&mut Tensor> {
        vec![&mut self.a, &mut self.b]
    }

    fn calibration_samples(quick: bool) -> Vec<Self> {
        let sizes: &[usize] = if quick {
            &[10_000, 300_000, 3_000_000]
        } else {
            &[10_000, 100_000, 1_000_000, 10_000_000, 30_000_000]
        };
        sizes
            .iter()
            .map(|&n| VectorAdd {
                a: super::real(vec![n], 1, -1.0, 1.0),
                b: super::real(vec![n], 2, -1.0, 1.0),
            })
            .collect()
    }

    fn check(&self, output: &VectorAddOutput) -> Option<Check> {
        let (a, b, c) = (
            self.a.values().ok()?,
            self.b.values().ok()?,
            output.c.values().ok()?,
        );
        // f32 addition is correctly rounded, so every backend must match exactly.
        Some(Check::measured(
            reference::max_abs_diff(&c, &reference::vector_add(&a, &b)),
            0.0,
            "max abs",
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validation() {
        let l = Limits::with_max_bytes(1 << 30);
        assert!(VectorAdd::synthetic(10, 1).validate(&l).is_ok());
        let mut j = VectorAdd::synthetic(10, 1);
        j.b = Tensor::synthetic(vec![11], 2, 0.0, 1.0);
        assert!(matches!(
            j.validate(&l),
            Err(ValidationError::ShapeMismatch(_))
        ));
        assert!(matches!(
            VectorAdd::synthetic(0, 1).validate(&l),
            Err(ValidationError::Empty(_))
        ));
        assert!(matches!(
            VectorAdd::synthetic(1 << 30, 1).validate(&l),
            Err(ValidationError::TooLarge { .. })
        ));
    }
}
