//! Each built-in kind on the CUDA backend, at the sizes of `cpu_kinds` (criterion;
//! `cargo bench --features cuda --bench cuda_kinds` on a GPU machine).
//!
//! Two groups per kind: `cuda_<kind>` is the kernel alone, timed with CUDA events
//! around the launches (the device is synchronised before each time is read), and
//! `cuda_e2e_<kind>` is the whole executor run, host-to-device and device-to-host copies
//! included, on real (not synthetic) inputs. Compare them with `cpu_<kind>`.

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use gpujobs::kinds::{FilterOp, ImageFilter, Matmul, MlpTrain, VectorAdd};
use gpujobs::{
    DeviceClass, DynExecutor, ExecContext, Job, JobEnvelope, Limits, Registry, Tensor, synth,
};
use std::sync::Arc;
use std::time::Duration;

fn random(shape: Vec<usize>, seed: u64) -> Tensor {
    let mut v = vec![0f32; shape.iter().product()];
    synth::fill_uniform(&mut v, seed, 0, -1.0, 1.0);
    Tensor::from_values(shape, v).expect("shape matches")
}

struct Bench {
    rt: tokio::runtime::Runtime,
    registry: Registry,
}

impl Bench {
    fn new() -> Self {
        let exec = gpujobs::cuda::devices().expect("a CUDA device").remove(0);
        let mut registry = Registry::with_builtin_kinds();
        gpujobs::cuda::register(&mut registry, &exec);
        Bench {
            rt: tokio::runtime::Runtime::new().expect("runtime"),
            registry,
        }
    }

    /// Benchmarks `job` as `cuda_<group>/<id>` (kernel) and `cuda_e2e_<group>/<id>`.
    fn job<J: Job>(
        &self,
        c: &mut Criterion,
        group: &str,
        id: &str,
        job: J,
        throughput: Throughput,
    ) {
        let env = JobEnvelope::new(job).expect("serializes");
        let exec: Arc<dyn DynExecutor> = self
            .registry
            .executor(J::KIND, DeviceClass::Gpu)
            .expect("registered");
        let ctx = ExecContext::standalone(Limits::detect());
        let run = || {
            self.rt
                .block_on(exec.execute(&env.payload, &env.blobs, &ctx))
                .expect("runs")
        };
        run(); // warm-up (and SGEMM autotuning)
        for (prefix, kernel_only) in [("cuda_", true), ("cuda_e2e_", false)] {
            let mut g = c.benchmark_group(format!("{prefix}{group}"));
            g.throughput(throughput.clone());
            g.bench_function(BenchmarkId::from_parameter(id), |b| {
                b.iter_custom(|iters| {
                    (0..iters)
                        .map(|_| {
                            let t = run().timings;
                            Duration::from_secs_f64(if kernel_only { t.compute_s } else { t.run_s })
                        })
                        .sum()
                })
            });
            g.finish();
        }
    }
}

fn benches(c: &mut Criterion) {
    let b = Bench::new();
    for n in [1_000_000usize, 16_000_000, 50_000_000] {
        let job = VectorAdd {
            a: random(vec![n], 1),
            b: random(vec![n], 2),
        };
        b.job(
            c,
            "vector_add",
            &n.to_string(),
            job,
            Throughput::Bytes(12 * n as u64),
        );
    }
    for n in [256usize, 1024, 2048, 4096] {
        let job = Matmul {
            a: random(vec![n, n], 3),
            b: random(vec![n, n], 4),
        };
        b.job(
            c,
            "matmul",
            &n.to_string(),
            job,
            Throughput::Elements(2 * (n as u64).pow(3)),
        );
    }
    for n in [1024usize, 2048, 4096] {
        let img = random(vec![n, n], 5);
        let px = Throughput::Elements((n * n) as u64);
        b.job(
            c,
            "gaussian_blur",
            &n.to_string(),
            ImageFilter {
                image: img.clone(),
                filter: FilterOp::GaussianBlur { sigma: 2.0 },
            },
            px.clone(),
        );
        b.job(
            c,
            "sobel",
            &n.to_string(),
            ImageFilter {
                image: img,
                filter: FilterOp::Sobel,
            },
            px,
        );
    }
    for (samples, features, hidden) in [
        (4096usize, 64usize, 128usize),
        (8192, 256, 512),
        (16384, 784, 1024),
    ] {
        let mut job = MlpTrain::synthetic(samples, features, 10, hidden, 1);
        job.epochs = 1;
        job.batch = 1024.min(samples);
        b.job(
            c,
            "mlp_train_epoch",
            &format!("{samples}x{features}-h{hidden}"),
            job,
            Throughput::Elements(samples as u64),
        );
    }
}

criterion_group! {
    name = cuda;
    config = Criterion::default().sample_size(10).warm_up_time(Duration::from_millis(300)).measurement_time(Duration::from_secs(2));
    targets = benches
}
criterion_main!(cuda);
