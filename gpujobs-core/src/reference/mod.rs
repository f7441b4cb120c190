//! Plain reference implementations with `f64` accumulation.
//!
//! They favour obviousness over speed and exist to check every backend: tests compare a
//! backend's output with these, and [`crate::Job::check`] uses them to verify results.

mod image;
mod linear;
mod mlp;

pub use image::{gaussian_blur, sobel_magnitude};
pub use linear::{matmul, matmul_probe, vector_add};
pub use mlp::{MlpReference, mlp_train};

/// Largest absolute difference between two slices (infinite when lengths differ or a
/// value is NaN in one and not the other).
pub fn max_abs_diff(a: &[f32], b: &[f32]) -> f64 {
    if a.len() != b.len() {
        return f64::INFINITY;
    }
    a.iter().zip(b).fold(0.0f64, |m, (&x, &y)| {
        let d = (f64::from(x) - f64::from(y)).abs();
        if d.is_nan() { f64::INFINITY } else { m.max(d) }
    })
}

/// `‖a − b‖₂ / ‖b‖₂` (the relative Frobenius error for matrices).
pub fn rel_l2_error(a: &[f32], b: &[f32]) -> f64 {
    if a.len() != b.len() {
        return f64::INFINITY;
    }
    let (mut num, mut den) = (0f64, 0f64);
    for (&x, &y) in a.iter().zip(b) {
        let d = f64::from(x) - f64::from(y);
        num += d * d;
        den += f64::from(y) * f64::from(y);
    }
    let r = num.sqrt() / den.sqrt().max(f64::MIN_POSITIVE);
    if r.is_nan() { f64::INFINITY } else { r }
}
