//! The benchmark's cases: each kind at a ladder of sizes, with real random inputs.

use gpujobs_core::kinds::{
    FilterOp, ImageFilter, Matmul, MlpModel, MlpPredict, MlpTrain, VectorAdd,
};
use gpujobs_core::{Job, JobEnvelope, Tensor, synth};

/// Kinds as the benchmark names them (the image filter is split in two).
pub const KINDS: [&str; 6] = [
    "vector-add",
    "matmul",
    "gaussian-blur",
    "sobel",
    "mlp-train",
    "mlp-predict",
];
/// Size rungs, smallest first.
pub const SIZES: [&str; 5] = ["tiny", "small", "medium", "large", "xlarge"];

/// One case to run.
#[derive(Debug, Clone)]
pub struct Case {
    /// Benchmark kind name.
    pub kind: &'static str,
    /// Size rung.
    pub rung: &'static str,
    /// Human size label.
    pub label: String,
    /// A number that grows with the problem (elements, n, pixels, samples), for plots.
    pub x: f64,
    /// Work per run, in `unit`s.
    pub work: f64,
    /// Throughput unit (`GB/s`, `GFLOP/s`, `Mpix/s`, `samples/s`, `rows/s`).
    pub unit: &'static str,
    /// The job.
    pub envelope: JobEnvelope,
}

fn real(shape: Vec<usize>, seed: u64, lo: f32, hi: f32) -> Tensor {
    let mut v = vec![0f32; shape.iter().product()];
    synth::fill_uniform(&mut v, seed, 0, lo, hi);
    Tensor::from_values(shape, v).expect("shape matches")
}

fn case<J: Job>(
    kind: &'static str,
    rung: &'static str,
    job: J,
    x: f64,
    work: f64,
    unit: &'static str,
) -> Case {
    Case {
        kind,
        rung,
        label: job.size_label(),
        x,
        work,
        unit,
        envelope: JobEnvelope::new(job).expect("built-in jobs serialize"),
    }
}

/// The case of `kind` at `rung` (`None` for an unknown pair).
pub fn build(kind: &'static str, rung: &'static str, seed: u64) -> Option<Case> {
    let r = SIZES.iter().position(|s| *s == rung)?;
    Some(match kind {
        "vector-add" => {
            let n = [1_000, 100_000, 1_000_000, 10_000_000, 50_000_000][r];
            let job = VectorAdd {
                a: real(vec![n], seed, -1.0, 1.0),
                b: real(vec![n], seed + 1, -1.0, 1.0),
            };
            case(kind, rung, job, n as f64, 12.0 * n as f64 / 1e9, "GB/s")
        }
        "matmul" => {
            let n = [32, 128, 512, 1024, 2048][r];
            let job = Matmul {
                a: real(vec![n, n], seed, -1.0, 1.0),
                b: real(vec![n, n], seed + 1, -1.0, 1.0),
            };
            case(
                kind,
                rung,
                job,
                n as f64,
                2.0 * (n as f64).powi(3) / 1e9,
                "GFLOP/s",
            )
        }
        "gaussian-blur" | "sobel" => {
            let n = [64, 256, 1024, 2048, 4096][r];
            let filter = if kind == "sobel" {
                FilterOp::Sobel
            } else {
                FilterOp::GaussianBlur { sigma: 2.0 }
            };
            let job = ImageFilter {
                image: real(vec![n, n], seed, 0.0, 1.0),
                filter,
            };
            case(
                kind,
                rung,
                job,
                (n * n) as f64,
                (n * n) as f64 / 1e6,
                "Mpix/s",
            )
        }
        "mlp-train" => {
            let (samples, features, hidden, batch) = [
                (256, 16, 32, 64),
                (1024, 32, 64, 128),
                (4096, 64, 128, 256),
                (8192, 256, 512, 1024),
                (16_384, 784, 1024, 1024),
            ][r];
            let mut job = MlpTrain::synthetic(samples, features, 10, hidden, seed);
            job.epochs = 1;
            job.batch = batch;
            case(kind, rung, job, samples as f64, samples as f64, "samples/s")
        }
        "mlp-predict" => {
            let (rows, features, hidden) = [
                (256, 16, 32),
                (4096, 64, 128),
                (32_768, 128, 256),
                (65_536, 256, 512),
                (131_072, 784, 1024),
            ][r];
            let dims = [features, hidden, 10];
            let synthetic = MlpModel::synthetic(&dims, seed);
            let job = MlpPredict {
                model: MlpModel {
                    weights: (synthetic.weights.iter().enumerate())
                        .map(|(l, w)| real(w.shape().to_vec(), seed + 10 + l as u64, -0.1, 0.1))
                        .collect(),
                    biases: (synthetic.biases.iter().enumerate())
                        .map(|(l, b)| real(b.shape().to_vec(), seed + 20 + l as u64, -0.1, 0.1))
                        .collect(),
                },
                x: real(vec![rows, features], seed, -1.0, 1.0),
            };
            case(kind, rung, job, rows as f64, rows as f64, "rows/s")
        }
        _ => return None,
    })
}
