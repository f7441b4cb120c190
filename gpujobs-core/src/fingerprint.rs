//! Fingerprints of job outputs, so results from different devices can be compared
//! without shipping the data.

use serde::{Deserialize, Serialize};

/// A summary of an output's numbers.
///
/// `hash` is exact (FNV-1a over the bits) and tells two runs on the same backend apart;
/// the statistics tolerate the rounding differences between a GPU and a CPU, and
/// [`Fingerprint::close_to`] compares them with a tolerance.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct Fingerprint {
    /// Number of values.
    pub len: u64,
    /// Sum of the values (f64 accumulation).
    pub sum: f64,
    /// Euclidean norm of the values.
    pub l2: f64,
    /// Smallest value.
    pub min: f32,
    /// Largest value.
    pub max: f32,
    /// Number of NaN or infinite values.
    pub non_finite: u64,
    /// FNV-1a 64 of the little-endian bits, as 16 hex digits.
    pub hash: u64,
}

impl Fingerprint {
    /// The fingerprint of a sequence of slices, as if they were one.
    pub fn of_slices<'a>(parts: impl IntoIterator<Item = &'a [f32]>) -> Self {
        let mut f = Fingerprint {
            min: f32::INFINITY,
            max: f32::NEG_INFINITY,
            hash: 0xcbf2_9ce4_8422_2325,
            ..Default::default()
        };
        let mut sq = 0f64;
        for part in parts {
            for &v in part {
                f.len += 1;
                if v.is_finite() {
                    f.sum += f64::from(v);
                    sq += f64::from(v) * f64::from(v);
                    f.min = f.min.min(v);
                    f.max = f.max.max(v);
                } else {
                    f.non_finite += 1;
                }
                for b in v.to_le_bytes() {
                    f.hash = (f.hash ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
                }
            }
        }
        f.l2 = sq.sqrt();
        if f.len == f.non_finite {
            f.min = 0.0;
            f.max = 0.0;
        }
        f
    }

    /// The fingerprint of one slice.
    pub fn of(values: &[f32]) -> Self {
        Self::of_slices([values])
    }

    /// Whether two fingerprints describe the same numbers up to a relative tolerance
    /// (scaled by the norm, the way GPU/CPU results are compared).
    pub fn close_to(&self, other: &Fingerprint, rtol: f64) -> bool {
        let scale = self.l2.max(other.l2).max(f64::MIN_POSITIVE);
        let n = (self.len as f64).sqrt().max(1.0);
        self.len == other.len
            && self.non_finite == other.non_finite
            && (self.l2 - other.l2).abs() <= rtol * scale
            && (self.sum - other.sum).abs() <= rtol * scale * n
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn close_but_not_identical() {
        let a: Vec<f32> = (0..1000).map(|i| i as f32 * 0.001).collect();
        let b: Vec<f32> = a.iter().map(|v| v * (1.0 + 1e-7)).collect();
        let (fa, fb) = (Fingerprint::of(&a), Fingerprint::of(&b));
        assert_ne!(fa.hash, fb.hash);
        assert!(fa.close_to(&fb, 1e-5));
        let c: Vec<f32> = a.iter().map(|v| v * 1.01).collect();
        assert!(!fa.close_to(&Fingerprint::of(&c), 1e-5));
    }

    #[test]
    fn split_equals_whole() {
        let a: Vec<f32> = (0..100).map(|i| i as f32).collect();
        assert_eq!(
            Fingerprint::of(&a),
            Fingerprint::of_slices([&a[..40], &a[40..]])
        );
    }
}
