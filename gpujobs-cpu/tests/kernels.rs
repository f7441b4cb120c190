//! The CPU kernels against the f64 reference implementations, over random shapes.

#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

use gpujobs_core::kinds::reference;
use gpujobs_core::model::synth;
use gpujobs_cpu::ops;
use gpujobs_cpu::simd::{Level, cap_level};
use proptest::prelude::*;

fn data(n: usize, seed: u64, lo: f32, hi: f32) -> Vec<f32> {
    (0..n as u64)
        .map(|i| synth::uniform(seed, i, lo, hi))
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn matmul_matches_reference(m in 1usize..70, k in 1usize..70, n in 1usize..70, seed in any::<u64>()) {
        let a = data(m * k, seed, -1.0, 1.0);
        let b = data(k * n, seed ^ 1, -1.0, 1.0);
        let c = ops::matmul(&a, &b, m, k, n);
        let r = reference::matmul(&a, &b, m, k, n);
        prop_assert!(reference::rel_l2_error(&c, &r) < 1e-5, "{}x{}x{}", m, k, n);
    }

    #[test]
    fn matmul_tall_and_skinny(m in 100usize..400, k in 1usize..4, n in 1usize..3, seed in any::<u64>()) {
        let a = data(m * k, seed, -1.0, 1.0);
        let b = data(k * n, seed ^ 1, -1.0, 1.0);
        let r = reference::matmul(&a, &b, m, k, n);
        prop_assert!(reference::rel_l2_error(&ops::matmul(&a, &b, m, k, n), &r) < 1e-5);
        let bt = data(n * m, seed ^ 2, -1.0, 1.0);
        let r = reference::matmul(&b, &bt, k, n, m);
        prop_assert!(reference::rel_l2_error(&ops::matmul(&b, &bt, k, n, m), &r) < 1e-5);
    }

    #[test]
    fn vector_add_is_exact(len in 1usize..300_000, seed in any::<u64>()) {
        let a = data(len, seed, -1.0, 1.0);
        let b = data(len, seed ^ 1, -1.0, 1.0);
        prop_assert_eq!(ops::vector_add(&a, &b), reference::vector_add(&a, &b));
    }

    #[test]
    fn blur_matches_reference(h in 1usize..48, w in 1usize..80, sigma in 0.05f32..6.0, seed in any::<u64>()) {
        let img = data(h * w, seed, 0.0, 1.0);
        let out = ops::gaussian_blur(&img, h, w, sigma);
        let r = reference::gaussian_blur(&img, h, w, f64::from(sigma));
        let err = reference::max_abs_diff(&out, &r);
        prop_assert!(err < 1e-5, "{}x{} sigma {}: {}", h, w, sigma, err);
    }

    #[test]
    fn sobel_matches_reference(h in 1usize..48, w in 1usize..80, seed in any::<u64>()) {
        let img = data(h * w, seed, 0.0, 1.0);
        let err = reference::max_abs_diff(&ops::sobel_magnitude(&img, h, w), &reference::sobel_magnitude(&img, h, w));
        prop_assert!(err < 1e-5, "{}x{}: {}", h, w, err);
    }
}

#[test]
fn tiny_images_where_borders_are_everything() {
    for (h, w) in [(1, 1), (1, 7), (7, 1), (2, 2), (2, 3), (3, 2)] {
        let img = data(h * w, 42, 0.0, 1.0);
        for sigma in [0.3f32, 1.0, 2.0, 5.0] {
            let err = reference::max_abs_diff(
                &ops::gaussian_blur(&img, h, w, sigma),
                &reference::gaussian_blur(&img, h, w, f64::from(sigma)),
            );
            assert!(err < 1e-5, "blur {h}x{w} sigma {sigma}: {err}");
        }
        let err = reference::max_abs_diff(
            &ops::sobel_magnitude(&img, h, w),
            &reference::sobel_magnitude(&img, h, w),
        );
        assert!(err < 1e-5, "sobel {h}x{w}: {err}");
    }
    // A 1×1 image is its own blur and has no gradient.
    assert_eq!(ops::sobel_magnitude(&[0.5], 1, 1), vec![0.0]);
    assert!((ops::gaussian_blur(&[0.5], 1, 1, 2.0)[0] - 0.5).abs() < 1e-6);
}

#[test]
fn every_instruction_set_level_gives_the_same_answers() {
    let (h, w) = (37, 101);
    let img = data(h * w, 7, 0.0, 1.0);
    let blur_ref = reference::gaussian_blur(&img, h, w, 1.7);
    let sobel_ref = reference::sobel_magnitude(&img, h, w);
    let a = data(5000, 1, -1.0, 1.0);
    let b = data(5000, 2, -1.0, 1.0);
    for level in [Level::Baseline, Level::Avx2, Level::Avx512] {
        cap_level(Some(level));
        assert!(
            reference::max_abs_diff(&ops::gaussian_blur(&img, h, w, 1.7), &blur_ref) < 1e-5,
            "{level:?}"
        );
        assert!(
            reference::max_abs_diff(&ops::sobel_magnitude(&img, h, w), &sobel_ref) < 1e-5,
            "{level:?}"
        );
        assert_eq!(
            ops::vector_add(&a, &b),
            reference::vector_add(&a, &b),
            "{level:?}"
        );
    }
    cap_level(None);
}
