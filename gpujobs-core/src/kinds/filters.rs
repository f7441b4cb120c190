//! Image-filter definitions shared by every backend, with OpenCV's semantics.
//!
//! - Gaussian blur is `cv2.GaussianBlur(src, (0, 0), sigma)` on `float32` images: the
//!   kernel size is `cvRound(sigma * 4 * 2 + 1) | 1` (OpenCV uses 4 sigmas each side for
//!   non-8-bit depths, rounding half to even), the weights are `exp(-x² / 2σ²)` rounded
//!   to `f32`, normalised by their `f64` sum and rounded again (OpenCV's
//!   `getGaussianKernel` for `CV_32F`), the same in x and y.
//! - Sobel is `sqrt(Sobel(dx=1)² + Sobel(dy=1)²)` with `ksize=3`: the x kernel is
//!   `[1, 2, 1]ᵀ ⊗ [-1, 0, 1]`, applied as a correlation like `cv2.filter2D`.
//! - Borders are `BORDER_REFLECT_101` (`gfedcb|abcdefgh|gfedcba`), the default of both
//!   OpenCV functions, applied repeatedly when the kernel is wider than the image, and
//!   collapsing to the single pixel of a 1-pixel dimension.

/// Largest sigma accepted: kernels beyond ~8k taps are not a blur anyone means.
pub const MAX_SIGMA: f32 = 1024.0;

/// The kernel size OpenCV derives from `sigma` for `float32` images.
pub fn gaussian_ksize(sigma: f64) -> usize {
    let k = (sigma * 4.0 * 2.0 + 1.0).round_ties_even() as i64;
    (k | 1).max(1) as usize
}

/// The Gaussian weights OpenCV uses for `float32` images (length [`gaussian_ksize`]).
pub fn gaussian_kernel_f32(sigma: f64) -> Vec<f32> {
    let n = gaussian_ksize(sigma);
    let scale = -0.5 / (sigma * sigma);
    let mid = (n as f64 - 1.0) * 0.5;
    let mut w: Vec<f32> = (0..n)
        .map(|i| {
            let x = i as f64 - mid;
            (scale * x * x).exp() as f32
        })
        .collect();
    let sum: f64 = w.iter().map(|&v| f64::from(v)).sum();
    let inv = 1.0 / sum;
    for v in &mut w {
        *v = (f64::from(*v) * inv) as f32;
    }
    w
}

/// Maps a possibly out-of-range coordinate into `0..len` by reflect-101, OpenCV's
/// `borderInterpolate(p, len, BORDER_REFLECT_101)`.
#[inline]
pub fn reflect101(mut p: isize, len: usize) -> usize {
    let n = len as isize;
    if n == 1 {
        return 0;
    }
    while p < 0 || p >= n {
        if p < 0 {
            p = -p;
        } else {
            p = 2 * n - 2 - p;
        }
    }
    p as usize
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ksize_matches_opencv() {
        // Values of cv2.getGaussianKernel sizes as GaussianBlur picks them for CV_32F.
        assert_eq!(gaussian_ksize(2.0), 17);
        assert_eq!(gaussian_ksize(1.0), 9);
        assert_eq!(gaussian_ksize(0.5), 5);
        assert_eq!(gaussian_ksize(0.3125), 5); // 3.5 rounds to 4 (half to even), | 1
        assert_eq!(gaussian_ksize(0.01), 1);
        assert_eq!(gaussian_ksize(1.5), 13);
    }

    #[test]
    fn kernel_is_normalised_and_symmetric() {
        let w = gaussian_kernel_f32(2.0);
        let s: f64 = w.iter().map(|&v| f64::from(v)).sum();
        assert!((s - 1.0).abs() < 1e-6);
        for i in 0..w.len() {
            assert_eq!(w[i], w[w.len() - 1 - i]);
        }
        // cv2.getGaussianKernel(17, 2.0, cv2.CV_32F)[8] == 0.19947465 (OpenCV 5.0.0)
        assert!((w[8] - 0.199_474_65).abs() < 1e-7, "{}", w[8]);
    }

    #[test]
    fn reflect101_like_opencv() {
        let len = 5;
        let got: Vec<usize> = (-6..11).map(|p| reflect101(p, len)).collect();
        // gfedcb|abcdefgh|gfedcba with repeated reflection for far coordinates.
        assert_eq!(got, vec![2, 3, 4, 3, 2, 1, 0, 1, 2, 3, 4, 3, 2, 1, 0, 1, 2]);
        assert_eq!(reflect101(-3, 1), 0);
        assert_eq!(reflect101(5, 2), 1);
        assert_eq!(reflect101(-1, 2), 1);
    }
}
