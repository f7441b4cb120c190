//! Each built-in kind on the CPU backend at three sizes (criterion).
//!
//! `cargo bench --bench cpu_kinds`. Names are `cpu_<kind>/<size>`; the CUDA benches use
//! the same names with a `cuda_` prefix, so the two can be compared line by line.
//! Inputs are generated before timing; each iteration allocates its output, like a job.

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use gpujobs::CancelFlag;
use gpujobs::cpu::ops;
use gpujobs::kinds::MlpTrain;
use gpujobs::model::synth;
use std::hint::black_box;
use std::time::Duration;

fn data(n: usize, seed: u64) -> Vec<f32> {
    let mut v = vec![0f32; n];
    synth::fill_uniform(&mut v, seed, 0, -1.0, 1.0);
    v
}

fn vector_add(c: &mut Criterion) {
    let mut g = c.benchmark_group("cpu_vector_add");
    for n in [1_000_000usize, 16_000_000, 50_000_000] {
        let (a, b) = (data(n, 1), data(n, 2));
        g.throughput(Throughput::Bytes(12 * n as u64));
        g.bench_with_input(BenchmarkId::from_parameter(n), &n, |bench, _| {
            bench.iter(|| black_box(ops::vector_add(&a, &b)))
        });
    }
    g.finish();
}

fn matmul(c: &mut Criterion) {
    let mut g = c.benchmark_group("cpu_matmul");
    for n in [256usize, 1024, 2048] {
        let (a, b) = (data(n * n, 1), data(n * n, 2));
        g.throughput(Throughput::Elements(2 * (n as u64).pow(3)));
        g.bench_with_input(BenchmarkId::from_parameter(n), &n, |bench, &n| {
            bench.iter(|| black_box(ops::matmul(&a, &b, n, n, n)))
        });
    }
    g.finish();
}

fn image_filters(c: &mut Criterion) {
    for (name, sobel) in [("cpu_gaussian_blur", false), ("cpu_sobel", true)] {
        let mut g = c.benchmark_group(name);
        for n in [1024usize, 2048, 4096] {
            let img = data(n * n, 3);
            g.throughput(Throughput::Elements((n * n) as u64));
            g.bench_with_input(BenchmarkId::from_parameter(n), &n, |bench, &n| {
                bench.iter(|| {
                    if sobel {
                        black_box(ops::sobel_magnitude(&img, n, n))
                    } else {
                        black_box(ops::gaussian_blur(&img, n, n, 2.0))
                    }
                })
            });
        }
        g.finish();
    }
}

fn mlp(c: &mut Criterion) {
    let mut g = c.benchmark_group("cpu_mlp_train_epoch");
    for (samples, features, hidden) in [
        (4096usize, 64usize, 128usize),
        (8192, 256, 512),
        (16384, 784, 1024),
    ] {
        let mut job = MlpTrain::synthetic(samples, features, 10, hidden, 1);
        job.epochs = 1;
        job.batch = 1024.min(samples);
        let data = job.dataset().expect("synthetic data");
        g.throughput(Throughput::Elements(samples as u64));
        let id = format!("{samples}x{features}-h{hidden}");
        g.bench_function(BenchmarkId::from_parameter(id), |bench| {
            bench.iter(|| {
                black_box(ops::mlp_train(&job, &data, None, &CancelFlag::new()).expect("trains"))
            })
        });
    }
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(10).warm_up_time(Duration::from_millis(500)).measurement_time(Duration::from_secs(3));
    targets = vector_add, matmul, image_filters, mlp
}
criterion_main!(benches);
