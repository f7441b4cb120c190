//! Reference Gaussian blur and Sobel magnitude, directly from their definitions.

use crate::kinds::filters::{gaussian_kernel_f32, reflect101};

/// `cv2.GaussianBlur(img, (0, 0), sigma)` for a row-major `h×w` image, as a separable
/// filter in `f64` (rows first, then columns), reflect-101 borders.
pub fn gaussian_blur(img: &[f32], h: usize, w: usize, sigma: f64) -> Vec<f32> {
    let k: Vec<f64> = gaussian_kernel_f32(sigma)
        .into_iter()
        .map(f64::from)
        .collect();
    let r = (k.len() / 2) as isize;
    let mut tmp = vec![0f64; h * w];
    for y in 0..h {
        for x in 0..w {
            tmp[y * w + x] = k
                .iter()
                .enumerate()
                .map(|(i, &kv)| {
                    kv * f64::from(img[y * w + reflect101(x as isize + i as isize - r, w)])
                })
                .sum();
        }
    }
    let mut out = vec![0f32; h * w];
    for y in 0..h {
        for x in 0..w {
            out[y * w + x] = k
                .iter()
                .enumerate()
                .map(|(i, &kv)| kv * tmp[reflect101(y as isize + i as isize - r, h) * w + x])
                .sum::<f64>() as f32;
        }
    }
    out
}

/// `sqrt(Sobel(img, dx=1)² + Sobel(img, dy=1)²)` with `ksize=3`, reflect-101 borders.
pub fn sobel_magnitude(img: &[f32], h: usize, w: usize) -> Vec<f32> {
    let at = |y: isize, x: isize| f64::from(img[reflect101(y, h) * w + reflect101(x, w)]);
    let mut out = vec![0f32; h * w];
    for y in 0..h as isize {
        for x in 0..w as isize {
            let gx = (at(y - 1, x + 1) - at(y - 1, x - 1))
                + 2.0 * (at(y, x + 1) - at(y, x - 1))
                + (at(y + 1, x + 1) - at(y + 1, x - 1));
            let gy = (at(y + 1, x - 1) - at(y - 1, x - 1))
                + 2.0 * (at(y + 1, x) - at(y - 1, x))
                + (at(y + 1, x + 1) - at(y - 1, x + 1));
            out[y as usize * w + x as usize] = (gx * gx + gy * gy).sqrt() as f32;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blur_keeps_constants() {
        let img = vec![0.25f32; 6 * 5];
        for v in gaussian_blur(&img, 6, 5, 1.3) {
            assert!((v - 0.25).abs() < 1e-6);
        }
    }

    #[test]
    fn sobel_of_a_ramp() {
        // f(y, x) = x: gx = 1·(1) + 2·(2)/2 ... = 8 inside, gy = 0.
        let (h, w) = (4, 6);
        let img: Vec<f32> = (0..h * w).map(|i| (i % w) as f32).collect();
        let out = sobel_magnitude(&img, h, w);
        assert_eq!(out[w + 2], 8.0);
        // At x = 0 reflect-101 mirrors x-1 to x+1: the gradient vanishes.
        assert_eq!(out[w], 0.0);
    }

    #[test]
    fn one_pixel_image() {
        assert_eq!(sobel_magnitude(&[3.0], 1, 1), vec![0.0]);
        assert!((gaussian_blur(&[3.0], 1, 1, 2.0)[0] - 3.0).abs() < 1e-6);
    }
}
