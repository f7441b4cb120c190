//! Times the CPU kernels the way `scripts/cpu_anchors.py` times numpy and OpenCV, so
//! `scripts/cpu-anchors.sh` can print ratios measured side by side in one run.
//!
//! Each case: inputs generated once, 2 warm-up calls, then the median of `reps` calls,
//! each call allocating its output (numpy's `a @ b`, `a + b` and `cv2.GaussianBlur`
//! allocate theirs too). Prints one JSON object per line: case, seconds, work units.

use gpujobs::cpu::ops;
use gpujobs::model::synth;
use std::hint::black_box;
use std::time::Instant;

fn data(n: usize, seed: u64, lo: f32, hi: f32) -> Vec<f32> {
    let mut v = vec![0f32; n];
    synth::fill_uniform(&mut v, seed, 0, lo, hi);
    v
}

fn median_secs(reps: usize, mut f: impl FnMut()) -> f64 {
    f();
    f();
    let mut t: Vec<f64> = (0..reps)
        .map(|_| {
            let s = Instant::now();
            f();
            s.elapsed().as_secs_f64()
        })
        .collect();
    t.sort_by(f64::total_cmp);
    t[t.len() / 2]
}

fn emit(case: &str, secs: f64, work: f64, unit: &str) {
    println!(
        "{{\"case\": \"{case}\", \"seconds\": {secs:.9}, \"work\": {work}, \"unit\": \"{unit}\"}}"
    );
}

fn main() {
    // `cargo bench` passes `--bench`; anything else selects cases by substring.
    let filter: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let wanted = |case: &str| filter.is_empty() || filter.iter().any(|f| case.contains(f.as_str()));
    for n in [1024usize, 2048] {
        let case = format!("matmul_{n}");
        if wanted(&case) {
            let (a, b) = (data(n * n, 1, -1.0, 1.0), data(n * n, 2, -1.0, 1.0));
            let s = median_secs(if n > 1024 { 7 } else { 15 }, || {
                black_box(ops::matmul(&a, &b, n, n, n));
            });
            emit(&case, s, 2.0 * (n as f64).powi(3), "flop");
        }
    }
    if wanted("vector_add_50m") {
        let n = 50_000_000;
        let (a, b) = (data(n, 3, -1.0, 1.0), data(n, 4, -1.0, 1.0));
        let s = median_secs(9, || {
            black_box(ops::vector_add(&a, &b));
        });
        emit("vector_add_50m", s, 12.0 * n as f64, "byte");
    }
    let n = 4096;
    let img = data(n * n, 5, 0.0, 1.0);
    if wanted("gaussian_blur_4096") {
        let s = median_secs(9, || {
            black_box(ops::gaussian_blur(&img, n, n, 2.0));
        });
        emit("gaussian_blur_4096", s, (n * n) as f64, "pixel");
    }
    if wanted("sobel_4096") {
        let s = median_secs(9, || {
            black_box(ops::sobel_magnitude(&img, n, n));
        });
        emit("sobel_4096", s, (n * n) as f64, "pixel");
    }
    // An MNIST-shaped classifier: rows of 784 features, 1024 hidden, 10 classes;
    // probabilities and labels, as numpy's forward pass + softmax + argmax. 131072 rows
    // is the xlarge rung of `gpujobs bench --kinds mlp-predict`.
    for rows in [16_384usize, 131_072] {
        let case = format!("mlp_predict_{rows}x784-h1024-10");
        if wanted(&case) {
            let dims = [784usize, 1024, 10];
            let job = gpujobs::kinds::MlpPredict::synthetic(rows, &dims, 6);
            let cancel = gpujobs::CancelFlag::new();
            let s = median_secs(if rows > 16_384 { 3 } else { 7 }, || {
                black_box(ops::mlp_predict(&job, &cancel).expect("predicts"));
            });
            let flop = 2.0 * rows as f64 * (784.0 * 1024.0 + 1024.0 * 10.0);
            emit(&case, s, flop, "flop");
        }
    }
}
