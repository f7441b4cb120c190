//! Plain reference implementations with `f64` accumulation.
//!
//! They favour obviousness over speed and exist to check every backend: tests compare a
//! backend's output with these, and [`crate::Job::check`] uses them to verify results.

mod image;
mod linear;
mod mlp;

pub use image::{gaussian_blur, sobel_magnitude};
pub use linear::{matmul, matmul_probe, vector_add};
pub use mlp::{MlpReference, mlp_evaluate, mlp_forward, mlp_train, softmax};

/// How two values at one position compare when either is not finite: `Some(true)` when
/// both are the same non-finite value (NaN and NaN, +inf and +inf: a correct result of
/// non-finite data, as numpy and OpenCV give it), `Some(false)` when only one is or
/// they differ, `None` when both are finite (compare the numbers).
fn non_finite_match(x: f32, y: f32) -> Option<bool> {
    match (x.is_finite(), y.is_finite()) {
        (true, true) => None,
        (false, false) => Some((x.is_nan() && y.is_nan()) || x == y),
        _ => Some(false),
    }
}

/// Largest absolute difference between two slices over the positions where both are
/// finite; infinite when lengths differ or a position is non-finite in one and not the
/// other (or NaN in one and ±inf in the other). Non-finite values are compared
/// position by position, so a correct result of data holding NaN or inf passes.
pub fn max_abs_diff(a: &[f32], b: &[f32]) -> f64 {
    if a.len() != b.len() {
        return f64::INFINITY;
    }
    let mut worst = 0.0f64;
    for (&x, &y) in a.iter().zip(b) {
        match non_finite_match(x, y) {
            Some(true) => {}
            Some(false) => return f64::INFINITY,
            None => worst = worst.max((f64::from(x) - f64::from(y)).abs()),
        }
    }
    worst
}

/// `‖a − b‖₂ / ‖b‖₂` (the relative Frobenius error for matrices) over the positions
/// where both are finite; non-finite values compared position by position as in
/// [`max_abs_diff`].
pub fn rel_l2_error(a: &[f32], b: &[f32]) -> f64 {
    if a.len() != b.len() {
        return f64::INFINITY;
    }
    let (mut num, mut den) = (0f64, 0f64);
    for (&x, &y) in a.iter().zip(b) {
        match non_finite_match(x, y) {
            Some(true) => {}
            Some(false) => return f64::INFINITY,
            None => {
                let d = f64::from(x) - f64::from(y);
                num += d * d;
                den += f64::from(y) * f64::from(y);
            }
        }
    }
    let r = num.sqrt() / den.sqrt().max(f64::MIN_POSITIVE);
    if r.is_nan() { f64::INFINITY } else { r }
}

#[cfg(test)]
mod non_finite_tests {
    use super::{max_abs_diff, rel_l2_error};

    #[test]
    fn non_finite_values_compare_position_by_position() {
        let (nan, inf) = (f32::NAN, f32::INFINITY);
        for f in [max_abs_diff, rel_l2_error] {
            assert_eq!(f(&[nan, 1.0, inf, -inf], &[nan, 1.0, inf, -inf]), 0.0);
            assert_eq!(
                f(&[1.0, 2.0], &[nan, 2.0]),
                f64::INFINITY,
                "NaN where 1 is due"
            );
            assert_eq!(
                f(&[nan, 2.0], &[1.0, 2.0]),
                f64::INFINITY,
                "1 where NaN is due"
            );
            assert_eq!(f(&[inf], &[-inf]), f64::INFINITY);
            assert_eq!(f(&[nan], &[inf]), f64::INFINITY);
            assert_eq!(f(&[1.0], &[1.0, 2.0]), f64::INFINITY, "lengths differ");
        }
        assert!((max_abs_diff(&[nan, 1.5], &[nan, 1.0]) - 0.5).abs() < 1e-12);
    }
}
