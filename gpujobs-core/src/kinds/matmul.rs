//! `matmul`: `C = A · B` in `f32` for any `m × k × n`. Compute-bound at large sizes,
//! where a GPU wins by an order of magnitude even with the transfers.

use super::check_tensor;
use crate::kinds::reference;
use crate::model::cost::Cost;
use crate::model::error::ValidationError;
use crate::model::job::{Check, Job, JobOutput};
use crate::model::limits::{Limits, f32_bytes};
use crate::model::synth::derive_seed;
use crate::model::tensor::Tensor;
use serde::{Deserialize, Serialize};

/// Up to this many multiply-adds the check runs the full `f64` reference product;
/// beyond it, Freivalds' probes.
const FULL_CHECK_MACS: u128 = 1 << 27;

/// Multiplies a row-major `m × k` matrix by a row-major `k × n` matrix.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Matmul {
    /// Left operand, shape `[m, k]`.
    pub a: Tensor,
    /// Right operand, shape `[k, n]`.
    pub b: Tensor,
}

impl Matmul {
    /// The kind's name.
    pub const KIND_NAME: &'static str = "matmul";

    /// Synthetic operands with values in `[-1, 1)`.
    pub fn synthetic(m: usize, k: usize, n: usize, seed: u64) -> Self {
        Matmul {
            a: Tensor::synthetic(vec![m, k], derive_seed(seed, "a"), -1.0, 1.0),
            b: Tensor::synthetic(vec![k, n], derive_seed(seed, "b"), -1.0, 1.0),
        }
    }

    /// `(m, k, n)`; meaningful after [`Job::validate`].
    pub fn dims(&self) -> (usize, usize, usize) {
        let (a, b) = (self.a.shape(), self.b.shape());
        (
            a.first().copied().unwrap_or(0),
            a.get(1).copied().unwrap_or(0),
            b.get(1).copied().unwrap_or(0),
        )
    }
}

/// The product.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MatmulOutput {
    /// `A · B`, shape `[m, n]`.
    pub c: Tensor,
}

impl JobOutput for MatmulOutput {
    fn tensors_mut(&mut self) -> Vec<&mut Tensor> {
        vec![&mut self.c]
    }
    fn summary(&self) -> String {
        format!("c: {:?}", self.c.shape())
    }
}

impl Job for Matmul {
    const KIND: &'static str = Self::KIND_NAME;
    type Output = MatmulOutput;

    fn validate(&self, limits: &Limits) -> Result<(), ValidationError> {
        check_tensor(&self.a, "a", 2)?;
        check_tensor(&self.b, "b", 2)?;
        let (a, b) = (self.a.shape(), self.b.shape());
        if a[1] != b[0] {
            return Err(ValidationError::ShapeMismatch(format!(
                "matmul inner dimensions differ: a is {}x{}, b is {}x{}",
                a[0], a[1], b[0], b[1]
            )));
        }
        let (m, k, n) = (a[0] as u128, a[1] as u128, b[1] as u128);
        limits.check(
            f32_bytes(m * k + k * n + m * n),
            &format!("matmul {m}x{k}x{n} operands and product"),
        )
    }

    fn cost(&self) -> Cost {
        let (m, k, n) = self.dims();
        let (m, k, n) = (m as f64, k as f64, n as f64);
        let bytes = 4.0 * (m * k + k * n + m * n);
        Cost {
            flops: 2.0 * m * k * n,
            bytes,
            transfer_bytes: self.a.upload_bytes() + self.b.upload_bytes() + 4.0 * m * n,
            memory_bytes: bytes as u64,
            launches: 1,
        }
    }

    fn size_label(&self) -> String {
        let (m, k, n) = self.dims();
        format!("{m}x{k}x{n}")
    }

    fn tensors_mut(&mut self) -> Vec<&mut Tensor> {
        vec![&mut self.a, &mut self.b]
    }

    fn calibration_samples(quick: bool) -> Vec<Self> {
        let sizes: &[usize] = if quick {
            &[32, 128, 384]
        } else {
            &[32, 128, 256, 512, 1024, 2048]
        };
        sizes
            .iter()
            .map(|&n| Matmul {
                a: super::real(vec![n, n], 3, -1.0, 1.0),
                b: super::real(vec![n, n], 4, -1.0, 1.0),
            })
            .collect()
    }

    fn check(&self, output: &MatmulOutput) -> Option<Check> {
        let (m, k, n) = self.dims();
        let (a, b, c) = (
            self.a.values().ok()?,
            self.b.values().ok()?,
            output.c.values().ok()?,
        );
        if c.len() != m * n {
            return Some(Check::measured(f64::INFINITY, 1e-4, "output length"));
        }
        if (m as u128) * (k as u128) * (n as u128) <= FULL_CHECK_MACS {
            let reference = reference::matmul(&a, &b, m, k, n);
            Some(Check::measured(
                reference::rel_l2_error(&c, &reference),
                1e-4,
                "rel Frobenius",
            ))
        } else if [&a, &b, &c]
            .iter()
            .any(|v| v.iter().any(|x| !x.is_finite()))
        {
            // A random projection mixes every position: it cannot tell a correct NaN
            // or inf from a wrong one, and a full reference is too large to compute.
            Some(Check::skipped(format!(
                "the data holds NaN or inf and {m}x{k}x{n} is above the full check's \
                 {FULL_CHECK_MACS} multiply-adds; a random probe cannot judge non-finite values"
            )))
        } else {
            let error = reference::matmul_probe(&a, &b, &c, (m, k, n), 3, 0x5eed);
            Some(Check::measured(error, 1e-4, "rel Freivalds"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validation() {
        let l = Limits::with_max_bytes(1 << 30);
        assert!(Matmul::synthetic(3, 5, 7, 1).validate(&l).is_ok());
        let mut j = Matmul::synthetic(3, 5, 7, 1);
        j.b = Tensor::synthetic(vec![4, 7], 1, 0.0, 1.0);
        let e = j.validate(&l).unwrap_err();
        assert!(
            e.to_string().contains("3x5") && e.to_string().contains("4x7"),
            "{e}"
        );
        // 10⁶ × 10⁶ is refused by size before anything is allocated.
        let huge = Matmul::synthetic(1_000_000, 1_000_000, 1_000_000, 1);
        assert!(matches!(
            huge.validate(&l),
            Err(ValidationError::TooLarge { .. })
        ));
        assert_eq!(Matmul::synthetic(2, 3, 4, 0).cost().flops, 48.0);
    }
}
